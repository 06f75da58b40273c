package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/lineserver/lineserver/internal/problem"
)

func threeShards(t *testing.T) (*Router, []*fakeShard) {
	fs := fakes(3)
	m := testManifest(t, []string{fs[0].start(t)}, []string{fs[1].start(t)}, []string{fs[2].start(t)})
	return newRouter(t, m, Options{}), fs
}

func TestRouterAnswersItself(t *testing.T) {
	rt, fs := threeShards(t)
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"letters", "GET", "/lines/abc", 400},
		{"fraction", "GET", "/lines/1.5", 400},
		{"zero", "GET", "/lines/0", 400},
		{"minus zero", "GET", "/lines/-0", 400},
		{"plus sign", "GET", "/lines/+5", 400},
		{"empty", "GET", "/lines/", 400},
		{"too large for int64", "GET", "/lines/99999999999999999999", 400},
		{"beyond the end", "GET", "/lines/301", 413},
		{"far beyond the end", "GET", "/lines/9223372036854775807", 413},
		{"negative beyond the end", "GET", "/lines/-301", 413},
		{"HEAD beyond the end", "HEAD", "/lines/301", 413},
		{"unknown path", "GET", "/nope", 404},
		{"root", "GET", "/", 404},
		{"a segment more", "GET", "/lines/1/2", 404},
		{"a trailing slash", "GET", "/lines/1/", 404},
		{"no slash", "GET", "/lines", 404},
		{"POST", "POST", "/lines/1", 405},
		{"DELETE", "DELETE", "/lines/abc", 405},
		{"PUT healthz", "PUT", "/healthz", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(rt, tc.method, tc.path)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
			if tc.method != "HEAD" {
				var d problem.Details
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
				assert.Equal(t, tc.want, d.Status)
				assert.NotEmpty(t, d.Detail)
			}
			if tc.want == 405 {
				assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
			}
		})
	}
	for _, f := range fs {
		assert.Zero(t, f.hits.Load(), "%s was asked", f.name)
	}
}

func TestRouterProxies(t *testing.T) {
	rt, fs := threeShards(t)
	for _, tc := range []struct {
		name, path string
		shard      int
		want       string
	}{
		{"first line", "/lines/1", 0, "/lines/1"},
		{"last of the first shard", "/lines/100", 0, "/lines/100"},
		{"first of the second shard", "/lines/101", 1, "/lines/101"},
		{"leading zeros", "/lines/00150", 1, "/lines/150"},
		{"last line", "/lines/300", 2, "/lines/300"},
		{"minus one is the last line", "/lines/-1", 2, "/lines/300"},
		{"negative in the middle shard", "/lines/-150", 1, "/lines/151"},
		{"negative first line", "/lines/-300", 0, "/lines/1"},
		{"negative with zeros", "/lines/-0300", 0, "/lines/1"},
		{"escaped digit", "/lines/%35", 0, "/lines/5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(rt, tc.path)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			got := fs[tc.shard].last1()
			require.NotNil(t, got)
			assert.Equal(t, tc.want, got.URL.Path)
			assert.Equal(t, "line "+strings.TrimPrefix(tc.want, "/lines/")+" of "+fs[tc.shard].name+"\n", rec.Body.String())
			assert.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, "public, max-age=31536000, immutable", rec.Header().Get("Cache-Control"))
			assert.NotEmpty(t, rec.Header().Get("ETag"))
			assert.Equal(t, rec.Body.Len(), atoi(t, rec.Header().Get("Content-Length")))
		})
	}
}

func TestRouterForwardsOnlyWhatTheShardNeeds(t *testing.T) {
	rt, fs := threeShards(t)

	rec := get(rt, "/lines/7", "Accept", "application/json", "Cookie", "secret=1", "Authorization", "Bearer x", "X-Forwarded-Host", "evil.example")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"number":7}`, rec.Body.String())
	seen := fs[0].last1()
	assert.Equal(t, "application/json", seen.Header.Get("Accept"))
	for _, h := range []string{"Cookie", "Authorization", "X-Forwarded-Host", "Accept-Encoding"} {
		assert.Empty(t, seen.Header.Get(h), h)
	}

	etag := rec.Header().Get("ETag")
	rec = get(rt, "/lines/7", "If-None-Match", etag)
	assert.Equal(t, http.StatusNotModified, rec.Code)
	assert.Empty(t, rec.Body.String())
	assert.Equal(t, etag, fs[0].last1().Header.Get("If-None-Match"))

	rec = do(rt, "HEAD", "/lines/8")
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "HEAD", fs[0].last1().Method)
	assert.Equal(t, "18", rec.Header().Get("Content-Length")) // "line 8 of shard-1\n"
	assert.Empty(t, rec.Body.String())
}

func TestRouterIgnoresTheRequestedHost(t *testing.T) {
	rt, fs := threeShards(t)
	// An absolute-form request line names another host; the router still
	// asks only the manifest's replica.
	rec := get(rt, "http://evil.example/lines/5")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, int64(1), fs[0].hits.Load())
	assert.NotEqual(t, "evil.example", fs[0].last1().Host)
}

func TestRouterOperationalPaths(t *testing.T) {
	rt, _ := threeShards(t)
	assert.Equal(t, 200, get(rt, "/healthz").Code)
	assert.Equal(t, 200, get(rt, "/readyz").Code)
	assert.Equal(t, 200, get(rt, "/ready").Code, "as /readyz, for Cloud Run's front end")
	get(rt, "/lines/5")
	get(rt, "/lines/abc")
	rec := get(rt, "/metrics")
	require.Equal(t, 200, rec.Code)
	body := rec.Body.String()
	for _, want := range []string{
		`lineserver_router_requests_total{code="200",shard="shard-1"} 1`,
		`lineserver_router_requests_total{code="400",shard="-"} 1`,
		`lineserver_router_upstream_duration_seconds_count{shard="shard-1"} 1`,
		`lineserver_router_replica_healthy{replica="http://127.0.0.1:`,
		`lineserver_router_upstream_errors_total{`,
	} {
		assert.Contains(t, body, want)
	}

	rt.Drain()
	rec = get(rt, "/readyz")
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, 503, get(rt, "/ready").Code)
	assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	assert.Equal(t, 200, get(rt, "/healthz").Code, "alive while draining")
	assert.Equal(t, 200, get(rt, "/lines/5").Code, "serving while draining")
}

func TestRoundRobin(t *testing.T) {
	a, b := fakes(1)[0], fakes(1)[0]
	m := testManifest(t, []string{a.start(t), b.start(t)})
	rt := newRouter(t, m, Options{})
	for range 100 {
		require.Equal(t, 200, get(rt, "/lines/1").Code)
	}
	assert.Equal(t, int64(50), a.hits.Load())
	assert.Equal(t, int64(50), b.hits.Load())
}

// TestShardsOnOneServerShareIt: shards whose replicas are the same server
// share one pool of connections to it, as NGINX's upstreams are shared, so
// that the bounds on connections hold per server, and it is checked once,
// not once a shard. Twenty shards asked one after the other take one
// connection, not twenty.
func TestShardsOnOneServerShareIt(t *testing.T) {
	const shards = 20
	all := &fakeShard{name: "all", first: 1, last: 100 * shards}
	var opened, checks atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			checks.Add(1)
		}
		all.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	urls := make([][]string, shards)
	for i := range urls {
		urls[i] = []string{srv.URL}
	}
	rt := newRouter(t, testManifest(t, urls...), Options{})
	for i := range shards {
		require.Equal(t, 200, get(rt, "/lines/"+strconv.Itoa(100*i+1)).Code)
	}
	assert.Equal(t, int64(shards), all.hits.Load())
	assert.Equal(t, int64(1), opened.Load(), "connections opened to the one server")

	rt.CheckHealth(context.Background())
	assert.Equal(t, int64(1), checks.Load(), "checks of the one server")
	all.ready.Store(http.StatusServiceUnavailable)
	rt.CheckHealth(context.Background())
	for _, s := range rt.shards {
		assert.False(t, s.replicas[0].healthy.Load(), "%s is on the server that is not ready", s.name)
	}
	assert.Equal(t, 503, get(rt, "/readyz").Code)
}

func TestRetryOnRefusedConnection(t *testing.T) {
	live := fakes(1)[0]
	m := testManifest(t, []string{deadURL(t), live.start(t)})
	rt := newRouter(t, m, Options{})
	for range 10 {
		require.Equal(t, 200, get(rt, "/lines/1").Code)
	}
	assert.Equal(t, int64(10), live.hits.Load())
	assert.False(t, rt.shards[0].replicas[0].healthy.Load(), "the dead replica is ejected")
	assert.Equal(t, 200, get(rt, "/readyz").Code, "one healthy replica is enough")
	assert.Contains(t, get(rt, "/metrics").Body.String(), `reason="connect",replica="`+m.Shards[0].URLs[0]+`",shard="shard-1"} 1`)
}

func TestRetryOnBrokenConnection(t *testing.T) {
	broken := fakes(1)[0]
	broken.handle = func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0) // a reset, not a clean close
			conn.Close()
		}
	}
	live := fakes(1)[0]
	m := testManifest(t, []string{broken.start(t), live.start(t)})
	rt := newRouter(t, m, Options{})
	for range 10 {
		require.Equal(t, 200, get(rt, "/lines/1").Code)
	}
	assert.GreaterOrEqual(t, broken.hits.Load(), int64(1))
	assert.LessOrEqual(t, broken.hits.Load(), int64(2), "ejected after failing")
}

func TestRetryOnReplica503(t *testing.T) {
	busy := fakes(1)[0]
	busy.handle = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) }
	live := fakes(1)[0]
	m := testManifest(t, []string{busy.start(t), live.start(t)})
	rt := newRouter(t, m, Options{})
	for range 10 {
		require.Equal(t, 200, get(rt, "/lines/1").Code)
	}
	assert.Equal(t, int64(5), busy.hits.Load(), "not ejected: it answers")
}

func TestLoneReplica503PassesThrough(t *testing.T) {
	busy := fakes(1)[0]
	busy.handle = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) }
	rt := newRouter(t, testManifest(t, []string{busy.start(t)}), (Options{}))
	rec := get(rt, "/lines/1")
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, "busy\n", rec.Body.String())
}

func TestDeadShard(t *testing.T) {
	fs := fakes(2)
	m := testManifest(t, []string{deadURL(t)}, []string{fs[1].start(t)})
	rt := newRouter(t, m, Options{})

	rec := get(rt, "/lines/1")
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	assert.Contains(t, problemDetail(t, rec), "shard-1")

	rec = get(rt, "/lines/2")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "ejected, so no replica is healthy")
	assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Equal(t, "no healthy replica of shard shard-1", problemDetail(t, rec), "the 503 names the shard")

	assert.Equal(t, 200, get(rt, "/lines/101").Code, "the other shard still answers")
	rec = get(rt, "/readyz")
	assert.Equal(t, 503, rec.Code)
	assert.Contains(t, rec.Body.String(), "shard-1")
}

func TestHealthChecks(t *testing.T) {
	a, b := fakes(1)[0], fakes(1)[0]
	m := testManifest(t, []string{a.start(t), b.start(t)})
	rt := newRouter(t, m, Options{})
	ctx := context.Background()

	a.ready.Store(503)
	rt.CheckHealth(ctx)
	assert.False(t, rt.shards[0].replicas[0].healthy.Load())
	for range 4 {
		get(rt, "/lines/1")
	}
	assert.Zero(t, a.hits.Load(), "an unready replica gets no requests")
	assert.Equal(t, 200, get(rt, "/readyz").Code)

	b.ready.Store(500)
	rt.CheckHealth(ctx)
	assert.Equal(t, 503, get(rt, "/readyz").Code)
	assert.Equal(t, 503, get(rt, "/lines/1").Code)

	a.ready.Store(0)
	rt.CheckHealth(ctx)
	assert.Equal(t, 200, get(rt, "/readyz").Code)
	assert.Equal(t, 200, get(rt, "/lines/1").Code)
}

func TestRunRecoversAnEjectedReplica(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	// The full round is an hour away: only the recheck of ejected
	// replicas can bring this one back.
	rt := newRouter(t, testManifest(t, []string{"http://" + addr}), Options{HealthInterval: time.Hour, RecheckInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rt.Run(ctx)

	assert.Contains(t, []int{502, 503}, get(rt, "/lines/1").Code)
	assert.Equal(t, 503, get(rt, "/lines/1").Code)

	l, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: fakes(1)[0]}}
	srv.Start()
	defer srv.Close()
	require.Eventually(t, func() bool { return get(rt, "/lines/1").Code == 200 }, time.Second, 10*time.Millisecond)
}

func TestTimeout(t *testing.T) {
	slow := fakes(1)[0]
	release := make(chan struct{})
	slow.handle = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	url := slow.start(t)
	defer close(release)
	rt := newRouter(t, testManifest(t, []string{url}), (Options{ResponseHeaderTimeout: 200 * time.Millisecond}))
	var rec *httptest.ResponseRecorder
	took := timed(func() { rec = get(rt, "/lines/1") })
	assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
	assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	assert.Less(t, took, time.Second)
	assert.Equal(t, int64(1), slow.hits.Load(), "a timeout is not retried")
	assert.True(t, rt.shards[0].replicas[0].healthy.Load(), "a slow replica is left to the health checks")
}

func TestConnectTimeout(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is never routed: connecting either hangs
	// until the connect timeout or fails at once as unreachable. A
	// lone replica slow to connect is tried twice.
	rt := newRouter(t, testManifest(t, []string{"http://192.0.2.1:81"}), (Options{ConnectTimeout: 100 * time.Millisecond}))
	var rec *httptest.ResponseRecorder
	took := timed(func() { rec = get(rt, "/lines/1") })
	assert.Equal(t, 502, rec.Code)
	assert.Less(t, took, time.Second)
}

func TestNewRefusesAnInvalidManifest(t *testing.T) {
	m := testManifest(t, []string{"http://a:1"})
	m.TotalLines = 7
	_, err := New(m, Options{})
	assert.Error(t, err)
}

func atoi(t *testing.T, s string) int {
	var n int
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', s)
		n = n*10 + int(c-'0')
	}
	return n
}

func TestSlowHealthChecksEjectOnlyInARow(t *testing.T) {
	slow := fakes(1)[0]
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			return
		}
		slow.ServeHTTP(w, r)
	}))
	defer srv.Close()
	rt := newRouter(t, testManifest(t, []string{srv.URL}), Options{HealthTimeout: 20 * time.Millisecond})
	rep := rt.shards[0].replicas[0]
	ctx := context.Background()

	rt.CheckHealth(ctx)
	rt.CheckHealth(ctx)
	assert.True(t, rep.healthy.Load(), "two slow checks keep it")
	require.Equal(t, 200, get(rt, "/lines/1").Code)
	rt.CheckHealth(ctx)
	rt.CheckHealth(ctx)
	assert.True(t, rep.healthy.Load(), "an answered request starts the count again")
	rt.CheckHealth(ctx)
	assert.False(t, rep.healthy.Load(), "three slow checks in a row eject it")
}

func TestEjects(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: &timeoutError{}}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	for _, tc := range []struct {
		name  string
		err   error
		fail  failure
		eject bool
	}{
		{"refused", refused, failConnect, true},
		{"connect timeout", timeout, failConnect, false},
		{"reset", reset, failBroken, true},
		{"EOF", io.ErrUnexpectedEOF, failBroken, true},
		{"header timeout", &net.OpError{Op: "read", Err: &timeoutError{}}, failTimeout, false},
		{"fasthttp timeout", fasthttp.ErrTimeout, failTimeout, false},
		{"no free connection", fasthttp.ErrNoFreeConns, failTimeout, false},
		{"closed before an answer", fasthttp.ErrConnectionClosed, failBroken, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := classify(fmt.Errorf("wrapped: %w", tc.err))
			assert.Equal(t, tc.fail, f)
			assert.Equal(t, tc.eject, ejects(f, tc.err))
		})
	}
}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "i/o timeout" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

// TestHealthPath: behind Cloud Run's front end, which answers some paths
// ending in z itself, replicas are checked on /ready instead of /readyz.
func TestHealthPath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			return
		}
		http.NotFound(w, r) // as Google's front end answers /readyz
	}))
	defer srv.Close()
	for path, healthy := range map[string]bool{"": false, "/readyz": false, "/ready": true} {
		rt := newRouter(t, testManifest(t, []string{srv.URL}), Options{HealthPath: path})
		rt.CheckHealth(context.Background())
		assert.Equal(t, healthy, rt.shards[0].replicas[0].healthy.Load(), "health path %q", path)
	}
	_, err := New(testManifest(t, []string{srv.URL}), Options{HealthPath: "ready"})
	assert.ErrorContains(t, err, "must start with /")
}

// problemDetail returns the detail of a problem+json answer.
func problemDetail(t *testing.T, rec *httptest.ResponseRecorder) string {
	var d problem.Details
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d), rec.Body.String())
	assert.Equal(t, rec.Code, d.Status)
	return d.Detail
}
