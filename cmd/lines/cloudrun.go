package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lineserver/lineserver/internal/deploy"
	"github.com/lineserver/lineserver/internal/manifest"
)

// runCloudRun writes one Cloud Run service file per shard of MANIFEST into
// --out, as NAME.yaml for `gcloud run services replace`, or prints them
// all to standard output as one YAML stream.
func runCloudRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cloudrun", flag.ContinueOnError)
	var opts deploy.CloudRunOptions
	fs.StringVar(&opts.Image, "image", "", "the shard function's image, as Cloud Run pulls it (required)")
	fs.IntVar(&opts.MinInstances, "min-instances", 0, "instances kept warm; 0 scales to zero")
	fs.IntVar(&opts.MaxInstances, "max-instances", 0, "the most instances; 0 is Cloud Run's default")
	fs.StringVar(&opts.CPU, "cpu", "1", "CPU limit")
	fs.StringVar(&opts.Memory, "memory", "512Mi", "memory limit")
	fs.IntVar(&opts.Concurrency, "concurrency", 1000, "requests one instance takes at once")
	fs.StringVar(&opts.GCSBucket, "gcs-bucket", "", "a Cloud Storage bucket holding the manifest's folder, mounted read-only at --data-dir")
	fs.StringVar(&opts.DataDir, "data-dir", "/data", "the folder in the container that holds the manifest's folder")
	out := fs.String("out", "", "write NAME.yaml per shard into this folder (default: standard output)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	const use = "lines cloudrun MANIFEST --image IMAGE [--out DIR] [--min-instances N] [--max-instances N] [--cpu CPU] [--memory MEM] [--concurrency N] [--gcs-bucket BUCKET] [--data-dir DIR]"
	switch {
	case len(pos) != 1:
		return fmt.Errorf("%w: %s: want one MANIFEST, got %d arguments", errUsage, use, len(pos))
	case opts.Image == "":
		return fmt.Errorf("%w: %s: --image is required: the shard function's image as Cloud Run pulls it, "+
			"for example europe-west1-docker.pkg.dev/PROJECT/REPOSITORY/lineserver:v1; build and push it with "+
			"docker build -t IMAGE . && docker push IMAGE (see \"Deploy to Cloud Run\" in the README)", errUsage, use)
	}
	m, err := manifest.Load(pos[0])
	if err != nil {
		return err
	}
	services, err := deploy.CloudRun(m, opts)
	if err != nil {
		return err
	}
	if *out == "" {
		for i, s := range services {
			if i > 0 {
				fmt.Fprintln(stdout, "---")
			}
			if _, err := stdout.Write(s.YAML); err != nil {
				return err
			}
		}
		return nil
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, s := range services {
		file := filepath.Join(*out, s.Name+".yaml")
		if err := os.WriteFile(file, s.YAML, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "wrote", file)
	}
	return nil
}
