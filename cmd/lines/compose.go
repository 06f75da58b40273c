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

// runCompose prints the compose file of the sharded set of MANIFEST, or
// writes it to --out, with host paths relative to the file's folder.
func runCompose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	var opts deploy.ComposeOptions
	fs.StringVar(&opts.Image, "image", "lineserver", "the shard function's image")
	fs.StringVar(&opts.RouterImage, "router-image", "lineserver-router", "the router's image")
	fs.StringVar(&opts.NginxImage, "nginx-image", "lineserver-nginx", "the NGINX image (the Dockerfile's nginx target)")
	fs.StringVar(&opts.NginxPort, "nginx-port", "8080", "where the host publishes NGINX, [IP:]PORT")
	fs.StringVar(&opts.RouterPort, "router-port", "8081", "where the host publishes the router, [IP:]PORT")
	out := fs.String("out", "", "write the compose file here (default: standard output, paths relative to the manifest's folder)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: lines compose MANIFEST [--out FILE] [--image IMAGE] [--router-image IMAGE] [--nginx-image IMAGE] [--nginx-port [IP:]PORT] [--router-port [IP:]PORT]", errUsage)
	}
	m, err := manifest.Load(pos[0])
	if err != nil {
		return err
	}
	opts.ManifestFile = pos[0]
	if *out != "" {
		opts.Dir = filepath.Dir(*out)
	}
	b, err := deploy.Compose(m, opts)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}
