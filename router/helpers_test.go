package router

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
)

// fakeShard serves "line N of NAME\n" for its range like a shard does and
// remembers what it was asked.
type fakeShard struct {
	name        string
	first, last int64
	hits        atomic.Int64
	ready       atomic.Int32 // status of /readyz; 0 means 200
	mu          sync.Mutex
	seen        []*http.Request
	// handle, when set, answers /lines/ requests instead.
	handle func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeShard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		status := int(f.ready.Load())
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		return
	}
	f.hits.Add(1)
	f.mu.Lock()
	f.seen = append(f.seen, r.Clone(r.Context()))
	f.mu.Unlock()
	if f.handle != nil {
		f.handle(w, r)
		return
	}
	raw, ok := strings.CutPrefix(r.URL.Path, "/lines/")
	n, err := strconv.ParseInt(raw, 10, 64)
	if !ok || err != nil || lineno.Within(n, f.first, f.last) != nil {
		http.Error(w, "misdirected", http.StatusMisdirectedRequest)
		return
	}
	body := fmt.Sprintf("line %d of %s\n", n, f.name)
	etag := fmt.Sprintf(`"%s-%d"`, f.name, n)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Header.Get("Accept") == "application/json" {
		h.Set("Content-Type", "application/json")
		body = fmt.Sprintf("{\"number\":%d}\n", n)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}

func (f *fakeShard) last1() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return nil
	}
	return f.seen[len(f.seen)-1]
}

// start serves f on a new test server and returns its URL.
func (f *fakeShard) start(t testing.TB) string {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

// deadURL is the URL of a port where nothing listens.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// testManifest makes a manifest of 300 lines in three shards of 100 with
// the given URLs.
func testManifest(t testing.TB, urls ...[]string) *manifest.Manifest {
	m := &manifest.Manifest{TotalLines: int64(100 * len(urls))}
	for i, u := range urls {
		m.Shards = append(m.Shards, manifest.Shard{
			Name:  fmt.Sprintf("shard-%d", i+1),
			First: int64(100*i + 1), Last: int64(100*i + 100),
			Data: "data.txt", URLs: u,
		})
	}
	require.NoError(t, m.Validate())
	return m
}

// fakes makes one fake shard per range of 100 lines.
func fakes(n int) []*fakeShard {
	var fs []*fakeShard
	for i := range n {
		fs = append(fs, &fakeShard{name: fmt.Sprintf("shard-%d", i+1), first: int64(100*i + 1), last: int64(100*i + 100)})
	}
	return fs
}

func newRouter(t testing.TB, m *manifest.Manifest, opts Options) *Router {
	rt, err := New(m, opts)
	require.NoError(t, err)
	serve(t, rt, &Server{})
	return rt
}

// servers holds the address each test router is served on.
var servers sync.Map // *Router -> string

// serve serves rt with srv on a new loopback listener until the test ends.
func serve(t testing.TB, rt *Router, srv *Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv.Router = rt
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	servers.Store(rt, ln.Addr().String())
	return ln.Addr().String()
}

// addr is where rt is served.
func addr(rt *Router) string {
	a, _ := servers.Load(rt)
	return a.(string)
}

// client asks the test routers, one connection per request, so that
// tests do not depend on each other's connections.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}, Timeout: 30 * time.Second}

func get(rt *Router, path string, header ...string) *httptest.ResponseRecorder {
	return do(rt, http.MethodGet, path, header...)
}

// do asks rt for path, as it is spelled, over HTTP, and records the answer.
func do(rt *Router, method, path string, header ...string) *httptest.ResponseRecorder {
	req, err := http.NewRequest(method, "http://"+addr(rt)+"/", nil)
	if err != nil {
		panic(err)
	}
	req.URL.Opaque = path
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	resp, err := client.Do(req)
	if err != nil {
		rec.WriteHeader(599)
		fmt.Fprint(rec, err)
		return rec
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		rec.Header()[k] = v
	}
	rec.WriteHeader(resp.StatusCode)
	io.Copy(rec, resp.Body)
	return rec
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}
