package router

import (
	"cmp"
	"fmt"
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
	return rt
}

func get(rt http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	return do(rt, http.MethodGet, path, header...)
}

func do(rt http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", nil)
	req.URL.Path = path
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	return rec
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// mode makes the Options of one way the router talks to replicas.
type mode func(Options) Options

// lean is the default: the router's own client for http replicas.
func lean(o Options) Options { return o }

// viaTransport makes the router use an http.Transport for every replica,
// as it does for https ones.
func viaTransport(o Options) Options {
	o.Transport = NewTransport(cmp.Or(o.ConnectTimeout, DefaultConnectTimeout), cmp.Or(o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout), 64)
	return o
}

// bothModes runs test with the lean client and with a Transport.
func bothModes(t *testing.T, test func(t *testing.T, mode mode)) {
	t.Run("lean", func(t *testing.T) { test(t, lean) })
	t.Run("transport", func(t *testing.T) { test(t, viaTransport) })
}
