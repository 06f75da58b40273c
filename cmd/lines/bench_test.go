package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// leftovers lists the processes whose command line mentions dir: what the
// harness started there and did not stop.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(dir)) {
			stat, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
			if !strings.Contains(string(stat), ") Z ") {
				found = append(found, p+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
		}
	}
	return found
}

// TestBenchSmoke runs the whole harness on a tiny file with short turns
// and few connections: every part runs once, and every process is gone
// afterwards. It asserts what was measured, never how fast.
func TestBenchSmoke(t *testing.T) {
	testenv.Command(t, "wrk")
	dir := t.TempDir()
	md := filepath.Join(dir, "out", "bench.md")
	var stdout, stderr bytes.Buffer
	err := runBench(context.Background(), []string{
		"--size", "3MB", "--dir", dir, "--duration", "1s", "--rounds", "1", "--warmup", "0",
		"--connections", "8", "--threads", "1", "--rate-duration", "1s", "--rate-connections", "4",
		"--cold-starts", "2", "--markdown", md, "--max-time", "8m",
	}, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	out := stdout.String()
	t.Logf("report:\n%s", out)
	for _, want := range []string{
		"command: lines bench --size 3MB", "data: 3MB: 3,000,000 bytes",
		"Maximum throughput", "shard (3MB)", "ceiling (constant 50 B)",
		"Fixed rate", "Cold start", "shard / ceiling", "Targets", "cold start, 3MB",
	} {
		assert.Contains(t, out, want)
	}
	// Issue 15: ranges against single lines, and the whole file as one
	// range, byte for byte.
	for _, want := range []string{
		"shard (3MB), 1,000-line ranges", "lines/s, 1,000-line ranges / single lines",
		"/lines/1..-1 of 3MB",
	} {
		assert.Contains(t, out, want)
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil || testenv.InCI() {
		assert.Contains(t, out, "nginx → shard")
		assert.Contains(t, out, "router / nginx (three shards)")
		// Issue 14: each front door before 3 shards and 1,000.
		assert.Contains(t, out, "nginx → 1,000 shards (on 3 processes)")
		assert.Contains(t, out, "nginx, 1,000 shards / 3 shards")
		assert.Contains(t, out, "router, 1,000 shards / 3 shards")
	}
	assert.Contains(t, stderr.String(), "stopping every process started")
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "### Load test")
	assert.Contains(t, string(b), "| shard (3MB) |")
	assert.Contains(t, string(b), "| range of 3MB byte-exact | yes | yes | met |")
	assert.Contains(t, string(b), "| /lines/1..-1 of 3MB | 3,000,000 | yes |")
	assert.Empty(t, leftovers(t, dir))
}

// cancelOn is a writer that cancels when what is written contains word,
// as Ctrl-C would at that moment.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	word   string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.word) {
		c.cancel()
	}
	return len(p), nil
}

// TestBenchStopsOnInterrupt cancels the run while wrk is loading the
// servers, as Ctrl-C does: it returns the cancellation and leaves no
// process behind.
func TestBenchStopsOnInterrupt(t *testing.T) {
	testenv.Command(t, "wrk")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOn{word: "warm-up:", cancel: cancel}
	err := runBench(ctx, []string{
		"--size", "1MB", "--dir", dir, "--duration", "60s", "--warmup", "60s", "--connections", "4", "--threads", "1",
		"--cold-starts", "0", "--targets", "shard,ceiling", "--max-time", "8m",
	}, &bytes.Buffer{}, stderr)
	require.ErrorIs(t, err, context.Canceled, "stderr:\n%s", stderr.buf.String())
	assert.Empty(t, leftovers(t, dir), "wrk and the servers are stopped")
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--size", "big"},
		{"--nonsense"},
		{"extra"},
	} {
		err := runBench(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		assert.ErrorIs(t, err, errUsage, "%q", args)
	}
	err := runBench(context.Background(), []string{"--targets", "shard,teapot", "--dir", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{})
	assert.ErrorContains(t, err, `unknown target "teapot"`)
}

func TestCommandLine(t *testing.T) {
	assert.Equal(t, "lines bench", commandLine(nil))
	assert.Equal(t, "lines bench --size 10GB --markdown 'a b.md' --dir ''", commandLine([]string{"--size", "10GB", "--markdown", "a b.md", "--dir", ""}))
	assert.Equal(t, `lines bench --x 'it'\''s'`, commandLine([]string{"--x", "it's"}))
}
