package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// measures the router rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) reset()                      { clear(d.h); d.code = 200 }

// staticTransport answers every request with the same short line, without
// a network, for a serial benchmark.
type staticTransport struct {
	resp http.Response
	body strings.Reader
}

func newStaticTransport() *staticTransport {
	s := &staticTransport{}
	s.resp = http.Response{StatusCode: 200, Header: http.Header{
		"Content-Type":   {"text/plain; charset=utf-8"},
		"Content-Length": {"12"},
		"Etag":           {`"abc"`},
	}, ContentLength: 12, Body: io.NopCloser(&s.body)}
	return s
}

func (s *staticTransport) RoundTrip(*http.Request) (*http.Response, error) {
	s.body.Reset("line 150 ok\n")
	return &s.resp, nil
}

func benchServe(b *testing.B, h http.Handler, path string, want int) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
		if w.code != want {
			b.Fatalf("status %d, want %d", w.code, want)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkRouter measures the routing path: the router's own answers, the
// proxy without a network (the router's share of the allocations), and the
// proxy over loopback (the replica's allocations included) with its lean
// client, with an http.Transport (as for https replicas), and the same
// request made by httputil's ReverseProxy, which the proxy replaces.
func BenchmarkRouter(b *testing.B) {
	m := testManifest(b, []string{"http://127.0.0.1:1"}, []string{"http://127.0.0.1:2"}, []string{"http://127.0.0.1:3"})
	b.Run("own-413", func(b *testing.B) {
		benchServe(b, newRouter(b, m, Options{Transport: newStaticTransport()}), "/lines/-301", 413)
	})
	b.Run("proxy-no-network", func(b *testing.B) {
		benchServe(b, newRouter(b, m, Options{Transport: newStaticTransport()}), "/lines/-150", 200)
	})

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		w.Header()["Content-Length"] = []string{"12"}
		io.WriteString(w, "line 150 ok\n")
	}))
	b.Cleanup(backend.Close)
	backendURL := backend.URL
	lm := testManifest(b, []string{deadURL(b)}, []string{backendURL})
	b.Run("proxy-loopback", func(b *testing.B) {
		benchServe(b, newRouter(b, lm, Options{}), "/lines/150", 200)
	})
	b.Run("transport-loopback", func(b *testing.B) {
		benchServe(b, newRouter(b, lm, viaTransport(Options{})), "/lines/150", 200)
	})
	b.Run("reverseproxy-loopback", func(b *testing.B) {
		target, _ := url.Parse(backendURL)
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header = http.Header{"Accept": pr.In.Header["Accept"]}
			},
			Transport: NewTransport(300*time.Millisecond, 10*time.Second, 1024),
		}
		benchServe(b, rp, "/lines/150", 200)
	})
}
