package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestCloudRunCommand(t *testing.T) {
	manifestPath := filepath.Join("..", "..", "testdata", "sample-manifest.json")

	t.Run("--out writes one file per shard", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "services")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"cloudrun", manifestPath, "--image", "img:2", "--out", dir,
			"--min-instances", "1", "--max-instances", "4", "--cpu", "2", "--memory", "1Gi",
			"--concurrency", "250", "--gcs-bucket", "bkt", "--data-dir", "/lines"}, &stdout, &stderr)
		require.NoError(t, err, stderr.String())
		for _, name := range []string{"shard-1", "shard-2", "shard-3"} {
			b, err := os.ReadFile(filepath.Join(dir, name+".yaml"))
			require.NoError(t, err)
			var s struct {
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
				Spec struct {
					Template struct {
						Metadata struct {
							Annotations map[string]string `yaml:"annotations"`
						} `yaml:"metadata"`
						Spec struct {
							ContainerConcurrency int `yaml:"containerConcurrency"`
							Containers           []struct {
								Image string `yaml:"image"`
								Env   []struct {
									Name, Value string
								} `yaml:"env"`
								Resources struct {
									Limits map[string]string `yaml:"limits"`
								} `yaml:"resources"`
							} `yaml:"containers"`
							Volumes []struct {
								CSI struct {
									VolumeAttributes map[string]string `yaml:"volumeAttributes"`
								} `yaml:"csi"`
							} `yaml:"volumes"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			require.NoError(t, yaml.Unmarshal(b, &s))
			assert.Equal(t, name, s.Metadata.Name)
			tmpl := s.Spec.Template
			assert.Equal(t, "1", tmpl.Metadata.Annotations["autoscaling.knative.dev/minScale"])
			assert.Equal(t, "4", tmpl.Metadata.Annotations["autoscaling.knative.dev/maxScale"])
			assert.Equal(t, 250, tmpl.Spec.ContainerConcurrency)
			c := tmpl.Spec.Containers[0]
			assert.Equal(t, "img:2", c.Image)
			assert.Equal(t, map[string]string{"cpu": "2", "memory": "1Gi"}, c.Resources.Limits)
			assert.Equal(t, "/lines/sample.txt", c.Env[0].Value)
			assert.Equal(t, "bkt", tmpl.Spec.Volumes[0].CSI.VolumeAttributes["bucketName"])
			assert.Contains(t, stderr.String(), filepath.Join(dir, name+".yaml"))
		}
	})

	t.Run("standard output, one YAML stream", func(t *testing.T) {
		var stdout bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"cloudrun", "--image", "img", manifestPath}, &stdout, &bytes.Buffer{}))
		dec := yaml.NewDecoder(strings.NewReader(stdout.String()))
		var names []string
		for {
			var s struct {
				Metadata struct{ Name string } `yaml:"metadata"`
			}
			if err := dec.Decode(&s); err != nil {
				break
			}
			names = append(names, s.Metadata.Name)
		}
		assert.Equal(t, []string{"shard-1", "shard-2", "shard-3"}, names)
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no image", []string{"cloudrun", manifestPath}, "--image is required: the shard function's image as Cloud Run pulls it, " +
			"for example europe-west1-docker.pkg.dev/PROJECT/REPOSITORY/lineserver:v1; build and push it with docker build -t IMAGE . && docker push IMAGE"},
		{"no manifest", []string{"cloudrun", "--image", "img"}, "want one MANIFEST, got 0 arguments"},
		{"bad number", []string{"cloudrun", manifestPath, "--image", "img", "--min-instances", "x"}, "min-instances"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			assert.ErrorIs(t, err, errUsage)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("a --no-split manifest away from its data", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "big.txt")
		require.NoError(t, os.WriteFile(data, []byte("a\nb\nc\n"), 0o644))
		out := filepath.Join(dir, "plan")
		_, _, err := callLines("shard", data, "--shards", "3", "--no-split", "--out", out)
		require.NoError(t, err)
		err = run(context.Background(), []string{"cloudrun", filepath.Join(out, "manifest.json"), "--image", "img"}, &bytes.Buffer{}, &bytes.Buffer{})
		require.Error(t, err)
		assert.Equal(t, `shard shard-1: cannot render: the data is outside the manifest's folder: "../big.txt": `+
			`Cloud Run sees only the manifest's folder (in the image, or the bucket of --gcs-bucket, at --data-dir). `+
			`Write a --no-split manifest beside its data file (lines shard FILE --no-split --out "$(dirname FILE)"), `+
			`or cut the file into slices in one folder (lines shard FILE --shards N --out DIR)`, err.Error())
	})
	t.Run("options Cloud Run refuses", func(t *testing.T) {
		err := run(context.Background(), []string{"cloudrun", manifestPath, "--image", "img", "--concurrency", "5000"}, &bytes.Buffer{}, &bytes.Buffer{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "1000")
	})
}
