package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestComposeCommand(t *testing.T) {
	manifestPath := filepath.Join("..", "..", "testdata", "sample-manifest.json")

	t.Run("standard output, paths relative to the manifest", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"compose", manifestPath, "--image", "img:1", "--nginx-port", "127.0.0.1:9080"}, &stdout, &stderr)
		require.NoError(t, err, stderr.String())
		var f struct {
			Services map[string]struct {
				Image   string   `yaml:"image"`
				Volumes []string `yaml:"volumes"`
				Ports   []string `yaml:"ports"`
			} `yaml:"services"`
		}
		require.NoError(t, yaml.Unmarshal(stdout.Bytes(), &f))
		assert.Len(t, f.Services, 6, "three shards, shard-3's replica shard-3b, nginx, router")
		assert.Equal(t, "img:1", f.Services["shard-2"].Image)
		assert.Equal(t, "./sample.txt:/data/sample.txt:ro", f.Services["shard-2"].Volumes[0])
		assert.Equal(t, []string{"127.0.0.1:9080:8080"}, f.Services["nginx"].Ports)
		assert.Equal(t, []string{"8081:8080"}, f.Services["router"].Ports)
		assert.Equal(t, "./sample-manifest.json:/etc/lineserver/manifest.json:ro", f.Services["router"].Volumes[0])
	})

	t.Run("--out, paths relative to the file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "compose.yaml")
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"compose", "--out", out, manifestPath}, &stdout, &stderr))
		assert.Empty(t, stdout.String())
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		abs, err := filepath.Abs(filepath.Join("..", "..", "testdata"))
		require.NoError(t, err)
		rel, err := filepath.Rel(filepath.Dir(out), abs)
		require.NoError(t, err)
		assert.Contains(t, string(b), "- "+filepath.ToSlash(rel)+"/sample.txt:/data/sample.txt:ro")
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no manifest", []string{"compose"}},
		{"two manifests", []string{"compose", "a.json", "b.json"}},
		{"unknown flag", []string{"compose", manifestPath, "--nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			assert.ErrorIs(t, err, errUsage)
		})
	}
	t.Run("missing manifest", func(t *testing.T) {
		err := run(context.Background(), []string{"compose", filepath.Join(t.TempDir(), "none.json")}, &bytes.Buffer{}, &bytes.Buffer{})
		require.Error(t, err)
		assert.NotErrorIs(t, err, errUsage)
	})
}
