package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		{"--open-files", []string{"nginx", sample, "--open-files", "4096"}, nginx.Options{OpenFiles: 4096}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(context.Background(), tc.args, &stdout, &stderr))
			var want bytes.Buffer
			if tc.opts.OpenFiles == 0 {
				tc.opts.OpenFiles = min(hardOpenFiles(), nginx.DefaultOpenFiles)
			}
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
		{"too few open files", []string{"nginx", sample, "--open-files", "100"}, true},
		{"negative open files", []string{"nginx", sample, "--open-files", "-1"}, true},
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

// TestNginxCommandFitsTheOpenFileLimit runs `lines nginx` and NGINX where
// the hard limit of open files is 20,000, below the 32,768 NGINX's workers
// used to ask for: the config asks for what the limit allows, and NGINX
// starts without an [alert] (or a [warn]). With --open-files above the
// limit, NGINX's workers cannot set it and say so, which shows the check
// would see the alert.
func TestNginxCommandFitsTheOpenFileLimit(t *testing.T) {
	nginxBin := testenv.Command(t, "nginx")
	prlimit := testenv.Command(t, "prlimit")
	lines := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lines")
	dir := t.TempDir()
	m := manifest.Manifest{TotalLines: 3, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 3, Data: "d", URLs: []string{"http://127.0.0.1:9"}},
	}}
	path := filepath.Join(dir, "manifest.json")
	var mb bytes.Buffer
	require.NoError(t, m.Write(&mb))
	require.NoError(t, os.WriteFile(path, mb.Bytes(), 0o644))

	for name, extra := range map[string][]string{"sized to the limit": nil, "--open-files above it": {"--open-files", "32768"}} {
		t.Run(name, func(t *testing.T) {
			prefix := t.TempDir()
			port := testenv.FreePort(t)
			script := `"$1" nginx "$2" --listen "$3" ` + strings.Join(extra, " ") + ` >"$4/nginx.conf" && exec "$5" -p "$4" -c nginx.conf -e stderr -g 'daemon off; pid nginx.pid;'`
			p := testenv.Start(t, prlimit, []string{"--nofile=20000:20000", "--", "sh", "-c", script, "sh",
				lines, path, testenv.Addr(port), prefix, nginxBin})
			testenv.WaitHTTP(t, testenv.URL(port)+"/healthz", 20*time.Second, p)
			conf, err := os.ReadFile(filepath.Join(prefix, "nginx.conf"))
			require.NoError(t, err)
			if extra == nil {
				assert.Contains(t, string(conf), "worker_rlimit_nofile 20000;")
				assert.Contains(t, string(conf), "worker_connections 10000;")
				// The workers set their limit as they start; give them time.
				time.Sleep(time.Second)
				assert.NotContains(t, p.Output(), "[alert]")
				assert.NotContains(t, p.Output(), "[warn]")
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(p.Output(), "[alert]") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			assert.Contains(t, p.Output(), "setrlimit(RLIMIT_NOFILE, 32768) failed")
		})
	}
}
