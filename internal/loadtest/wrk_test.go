package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

func TestScriptLua(t *testing.T) {
	lua := luaScript{Lines: 4_567_890, Seed: 42}.lua()
	for _, want := range []string{
		"local lines, pool, seed = 4567890, 100000, 42",
		"function setup(thread)", "function init(args)", "function request()", "function done(summary, latency, requests)",
		`"GET /lines/" .. math.random(1, lines) .. tail`, `wrk.headers["Host"]`,
		"latency:percentile(99.9)", resultPrefix,
	} {
		assert.Contains(t, lua, want)
	}
	assert.Contains(t, luaScript{}.lua(), "local lines, pool, seed = 1, ", "at least one line")
}

// TestWrkRunsTheScript runs the real wrk with the script against a test
// server: every request asks for a line in range, the threads ask for
// different lines, and the result line parses.
func TestWrkRunsTheScript(t *testing.T) {
	bin := testenv.Command(t, "wrk")
	var mu sync.Mutex
	seen := map[int64]int{}
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/lines/"), 10, 64)
		mu.Lock()
		if err != nil || n < 1 || n > 1000 || !strings.HasPrefix(r.URL.Path, "/lines/") {
			bad = append(bad, r.URL.Path)
		}
		seen[n]++
		mu.Unlock()
		w.Write([]byte("a line\n"))
	}))
	defer srv.Close()
	script := filepath.Join(t.TempDir(), "s.lua")
	require.NoError(t, os.WriteFile(script, []byte(luaScript{Lines: 1000, Seed: 1}.lua()), 0o644))
	w := wrkCmd{Path: bin, Threads: 2, Connections: 4, Timeout: 2 * time.Second, Script: script}
	r, cpu, err := w.run(context.Background(), srv.URL, time.Second)
	require.NoError(t, err)
	assert.Positive(t, cpu, "wrk's CPU time")
	assert.Positive(t, r.Requests)
	assert.Zero(t, r.errors())
	assert.Positive(t, r.P999)
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, bad, "paths out of range")
	assert.Greater(t, len(seen), 500, "many different lines asked for")
}

const wrkOutput = `Running 10s test @ http://127.0.0.1:8080
  2 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    21.05ms   10.10ms 312.00ms   90.00%
    Req/Sec    24.10k     2.00k   30.00k    70.00%
  480000 requests in 10.00s, 150.00MB read
Requests/sec:  48000.00
Transfer/sec:     15.00MB
@@lines-bench {"requests":480000,"duration":10000000000,"bytes":157286400,"connect":0,"read":3,"write":0,"status":12,"timeout":5,"p50":19000000,"p99":61000000,"p999":150000000}
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	require.NoError(t, err)
	assert.Equal(t, int64(480000), r.Requests)
	assert.Equal(t, 10*time.Second, r.Duration)
	assert.InDelta(t, 48000, r.rps(), 0.001)
	assert.Equal(t, int64(157286400), r.Bytes)
	assert.Equal(t, int64(12), r.Status)
	assert.Equal(t, int64(3), r.Read)
	assert.Equal(t, int64(5), r.Timeout)
	assert.Equal(t, int64(20), r.errors())
	assert.Equal(t, 19*time.Millisecond, r.P50)
	assert.Equal(t, 61*time.Millisecond, r.P99)
	assert.Equal(t, 150*time.Millisecond, r.P999)
}

func TestParseWrkErrors(t *testing.T) {
	_, err := parseWrk("Running 10s test\nRequests/sec: 1.00\n")
	assert.ErrorIs(t, err, errNoResult)
	_, err = parseWrk(strings.Replace(wrkOutput, `"status":12`, `"status":x`, 1))
	assert.ErrorContains(t, err, `"status":x`)
	var zero result
	assert.Zero(t, zero.rps(), "no division by a zero duration")
}

func TestWrkArgs(t *testing.T) {
	w := wrkCmd{Path: "wrk", Threads: 2, Connections: 1000, Timeout: 2 * time.Second, Script: "/s.lua"}
	assert.Equal(t, []string{"-t", "2", "-c", "1000", "-d", "10s", "--timeout", "2s", "-s", "/s.lua", "http://127.0.0.1:1"},
		w.args("http://127.0.0.1:1", 10*time.Second))
	// wrk takes whole seconds; a part of one rounds up.
	assert.Contains(t, w.args("u", 1500*time.Millisecond), "2s")
	assert.Contains(t, w.args("u", 100*time.Millisecond), "1s")
	// Never fewer connections than threads.
	assert.Equal(t, "4", wrkCmd{Threads: 4, Connections: 1}.args("u", time.Second)[3])
}

func TestWrkLoadsOnlyLoopback(t *testing.T) {
	_, _, err := wrkCmd{Path: "/bin/false"}.run(context.Background(), "http://10.0.0.1:80", time.Second)
	assert.ErrorContains(t, err, "127.0.0.1 only")
	_, err = fixedRate{Rate: 1, Duration: time.Second}.run(context.Background(), "http://example.com")
	assert.ErrorContains(t, err, "127.0.0.1 only")
}

func TestScriptLuaRanges(t *testing.T) {
	lua := luaScript{Lines: 4_567_890, Span: 1000, Seed: 42}.lua()
	for _, want := range []string{
		"local span = 1000", "local lines, pool, seed = 4567890, 100000, 42",
		"local a = math.random(1, lines - span + 1)", `"GET /lines/" .. a .. ".." .. (a + span - 1) .. tail`,
	} {
		assert.Contains(t, lua, want)
	}
	assert.NotContains(t, luaScript{Lines: 10, Span: 1}.lua(), "span", "a span of one line is a single line")
	assert.Contains(t, luaScript{Lines: 10, Span: 50}.lua(), "local span = 10", "no longer than the file")
}

// TestWrkRunsTheRangeScript runs the real wrk with a range script: every
// request asks for Span lines within the file.
func TestWrkRunsTheRangeScript(t *testing.T) {
	bin := testenv.Command(t, "wrk")
	var mu sync.Mutex
	var bad []string
	firsts := map[int64]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, b, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/lines/"), "..")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		mu.Lock()
		if !ok || err1 != nil || err2 != nil || first < 1 || last > 5000 || last-first+1 != 1000 {
			bad = append(bad, r.URL.Path)
		}
		firsts[first] = true
		mu.Unlock()
		w.Write([]byte("lines\n"))
	}))
	defer srv.Close()
	script := filepath.Join(t.TempDir(), "s.lua")
	require.NoError(t, os.WriteFile(script, []byte(luaScript{Lines: 5000, Span: 1000, Seed: 1}.lua()), 0o644))
	w := wrkCmd{Path: bin, Threads: 1, Connections: 2, Timeout: 2 * time.Second, Script: script}
	r, _, err := w.run(context.Background(), srv.URL, time.Second)
	require.NoError(t, err)
	assert.Positive(t, r.Requests)
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, bad, "ranges not of 1,000 lines within 1..5000")
	assert.Greater(t, len(firsts), 100, "many different first lines")
}
