package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    config
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--manifest", "m.json"},
			want: config{Manifest: "m.json", Listen: ":8080", ResponseTimeout: 10 * time.Second, ConnectTimeout: 300 * time.Millisecond, HealthPath: "/readyz"},
		},
		{
			name: "environment",
			env:  map[string]string{"ROUTER_MANIFEST": "e.json", "PORT": "9000", "ROUTER_RESPONSE_TIMEOUT": "2s", "ROUTER_CONNECT_TIMEOUT": "1s", "LOG_LEVEL": "debug", "LOG_FORMAT": "text", "ROUTER_HEALTH_PATH": "/ready", "ROUTER_DRAIN_DELAY": "3s"},
			want: config{Manifest: "e.json", Port: "9000", Listen: ":9000", ResponseTimeout: 2 * time.Second, ConnectTimeout: time.Second, HealthPath: "/ready", DrainDelay: 3 * time.Second, LogLevel: slog.LevelDebug, LogFormat: "text"},
		},
		{
			name: "flags win",
			env:  map[string]string{"ROUTER_MANIFEST": "e.json", "PORT": "9000", "LOG_LEVEL": "debug"},
			args: []string{"-manifest=f.json", "--listen", "127.0.0.1:7000", "--response-timeout", "3s", "--connect-timeout", "50ms", "--log-level", "warn", "--health-path", "/ready"},
			want: config{Manifest: "f.json", Port: "9000", Listen: "127.0.0.1:7000", ResponseTimeout: 3 * time.Second, ConnectTimeout: 50 * time.Millisecond, HealthPath: "/ready", LogLevel: slog.LevelWarn},
		},
		{name: "no manifest", wantErr: "ROUTER_MANIFEST is required"},
		{name: "a stray argument", args: []string{"--manifest", "m", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
		{name: "bad timeout", env: map[string]string{"ROUTER_RESPONSE_TIMEOUT": "soon"}, args: []string{"--manifest", "m"}, wantErr: "ROUTER_RESPONSE_TIMEOUT"},
		{name: "zero timeout", args: []string{"--manifest", "m", "--response-timeout", "0s"}, wantErr: "must be above 0"},
		{name: "negative connect timeout", args: []string{"--manifest", "m", "--connect-timeout", "-1s"}, wantErr: "--connect-timeout -1s"},
		{name: "bad level", args: []string{"--manifest", "m", "--log-level", "loud"}, wantErr: "log-level"},
		{name: "drain delay past the grace period", args: []string{"--manifest", "m", "--drain-delay", "10s"}, wantErr: "--drain-delay 10s"},
		{name: "negative drain delay", env: map[string]string{"ROUTER_DRAIN_DELAY": "-1s"}, args: []string{"--manifest", "m"}, wantErr: "--drain-delay -1s"},
		{name: "health path without /", args: []string{"--manifest", "m", "--health-path", "ready"}, wantErr: `--health-path "ready"`},
		{name: "health path with a query", env: map[string]string{"ROUTER_HEALTH_PATH": "/ready?x"}, args: []string{"--manifest", "m"}, wantErr: "must be a path"},
		{name: "bad format", args: []string{"--manifest", "m", "--log-format", "xml"}, wantErr: "json or text"},
		{name: "help", args: []string{"--help"}, wantErr: "--listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadConfig(context.Background(), tc.args, envconfig.MapLookuper(tc.env))
			if tc.wantErr != "" {
				require.Error(t, err)
				var help helpError
				assert.True(t, errors.Is(err, errUsage) || errors.As(err, &help), "%v", err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, *got)
		})
	}
}

func TestRunRefusesABadManifest(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "m.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"total_lines": 5, "shards": []}`), 0o644))
	var stderr bytes.Buffer
	for _, path := range []string{bad, filepath.Join(dir, "missing.json")} {
		err := run(context.Background(), []string{"--manifest", path, "--listen", "127.0.0.1:0"}, io.Discard, &stderr)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "manifest")
	}
}

// shardServer answers like a shard, slowly when the line is 2.
func shardServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/lines/2" {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintf(w, "%s\n", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestServeDrains(t *testing.T) {
	m := &manifest.Manifest{TotalLines: 10, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 10, Data: "d", URLs: []string{shardServer(t)}},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	var logs testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, &config{ResponseTimeout: time.Second}, m, ln, slog.New(slog.NewJSONHandler(&logs, nil)))
	}()
	testenv.WaitHTTP(t, base+"/readyz", 5*time.Second, nil)

	resp, err := http.Get(base + "/lines/-10")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "/lines/1\n", string(body))

	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/lines/2")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	assert.Equal(t, 200, <-slow, "the request in flight finishes")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after the drain")
	}
	assert.Contains(t, logs.String(), "router draining")
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/router")
	dir := t.TempDir()
	path := filepath.Join(dir, "manifest.json")
	m := &manifest.Manifest{TotalLines: 10, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 10, Data: "d", URLs: []string{shardServer(t)}},
	}}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, m.Write(f))
	require.NoError(t, f.Close())

	port := testenv.FreePort(t)
	p := testenv.Start(t, bin, []string{"--manifest", path}, fmt.Sprintf("PORT=%d", port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 10*time.Second, p)
	resp, err := http.Get(testenv.URL(port) + "/lines/007")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "/lines/7\n", string(body))

	require.NoError(t, p.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.Wait(5*time.Second))
	var first map[string]any
	line, _, _ := strings.Cut(p.Output(), "\n")
	require.NoError(t, json.Unmarshal([]byte(line), &first), p.Output())
	assert.Equal(t, "INFO", first["severity"])
	assert.Equal(t, "router listening", first["message"])

	p = testenv.Start(t, bin, nil)
	assert.Equal(t, 2, p.Wait(5*time.Second), "a usage error exits 2")
	assert.Contains(t, p.Output(), "ROUTER_MANIFEST")
}

// TestServeDrainDelay: after the signal, the router goes on serving for
// the drain delay with /readyz at 503, so that a load balancer can take
// it out of rotation before it stops accepting.
func TestServeDrainDelay(t *testing.T) {
	m := &manifest.Manifest{TotalLines: 10, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 10, Data: "d", URLs: []string{shardServer(t)}},
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, &config{ResponseTimeout: time.Second, DrainDelay: 2 * time.Second}, m, ln, slog.New(slog.DiscardHandler))
	}()
	testenv.WaitHTTP(t, base+"/readyz", 5*time.Second, nil)
	cancel()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, time.Second, 10*time.Millisecond, "/readyz turns 503 and is still answered")
	resp, err := http.Get(base + "/lines/1")
	require.NoError(t, err, "lines are still served during the delay")
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after the delay")
	}
}

// TestHelp: --help prints the whole usage to stdout and succeeds.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"--help"}, &stdout, &stderr))
	for _, flag := range []string{"--manifest", "--listen", "--response-timeout", "--connect-timeout", "--health-path", "--drain-delay", "--log-level", "--log-format"} {
		assert.Contains(t, stdout.String(), flag)
	}
	assert.Empty(t, stderr.String())
}
