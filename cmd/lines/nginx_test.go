package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
	"github.com/lineserver/lineserver/nginx"
)

func TestNginxCommand(t *testing.T) {
	sample := filepath.Join("..", "..", "testdata", "sample-manifest.json")
	m, err := manifest.Load(sample)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		args []string
		opts nginx.Options
	}{
		{"default listen", []string{"nginx", sample}, nginx.Options{}},
		{"--listen after", []string{"nginx", sample, "--listen", "127.0.0.1:9000"}, nginx.Options{Listen: "127.0.0.1:9000"}},
		{"-listen= before", []string{"nginx", "-listen=[::1]:9001", sample}, nginx.Options{Listen: "[::1]:9001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(context.Background(), tc.args, &stdout, &stderr))
			var want bytes.Buffer
			require.NoError(t, nginx.Render(&want, m, tc.opts))
			assert.Equal(t, want.String(), stdout.String())
			assert.Empty(t, stderr.String())
		})
	}

	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
	}{
		{"no manifest", []string{"nginx"}, true},
		{"two manifests", []string{"nginx", sample, sample}, true},
		{"bad listen", []string{"nginx", sample, "--listen", "nowhere"}, true},
		{"unknown flag", []string{"nginx", sample, "--port", "1"}, true},
		{"missing manifest", []string{"nginx", filepath.Join(t.TempDir(), "none.json")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &bytes.Buffer{})
			require.Error(t, err)
			assert.Equal(t, tc.usage, errors.Is(err, errUsage), "%v", err)
			assert.Empty(t, stdout.String(), "nothing half-written")
		})
	}
}

// TestNginxCommandOutputRuns checks what a user pipes into a file: nginx -t
// accepts it as it is.
func TestNginxCommandOutputRuns(t *testing.T) {
	bin := testenv.Command(t, "nginx")
	dir := t.TempDir()
	m := manifest.Manifest{TotalLines: 3, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 2, Data: "d", URLs: []string{"http://127.0.0.1:9"}},
		{Name: "b", First: 3, Last: 3, Data: "d", URLs: []string{"http://127.0.0.1:10", "http://[::1]:10"}},
	}}
	path := filepath.Join(dir, "manifest.json")
	var mb bytes.Buffer
	require.NoError(t, m.Write(&mb))
	require.NoError(t, os.WriteFile(path, mb.Bytes(), 0o644))
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"nginx", path, "--listen", "127.0.0.1:1"}, &stdout, &bytes.Buffer{}))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), stdout.Bytes(), 0o644))
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off; pid nginx.pid;").CombinedOutput()
	require.NoError(t, err, "%s", out)
}
