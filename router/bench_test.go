package router

import (
	"bufio"
	"bytes"
	"io"
	"net"
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

// rawBackend is a replica that answers every request with the same
// response, reading and writing raw bytes without allocating, so that a
// benchmark over it counts the router's allocations alone.
func rawBackend(b *testing.B, response string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	resp := []byte(response)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if err := skipHead(br); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// skipHead reads up to the end of a request or response head.
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// readResponse reads a response head and its Content-Length body from br into
// buf, and returns the status.
func readResponse(br *bufio.Reader, buf []byte) (int, error) {
	status, length := 0, 0
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first && len(line) > 12 {
			status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			for _, c := range bytes.TrimSpace(v) {
				length = length*10 + int(c-'0')
			}
		}
	}
	_, err := io.ReadFull(br, buf[:length])
	return status, err
}

// BenchmarkServer measures a whole request over loopback, client and
// replica included: the fast path of Server, and net/http serving the
// same Router as before it. Its allocations are the router's alone (the
// client and the replica allocate nothing); its time includes about six
// system calls, three for each side.
func BenchmarkServer(b *testing.B) {
	backend := rawBackend(b, "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=31536000, immutable\r\n"+
		"Content-Length: 12\r\nContent-Type: text/plain; charset=utf-8\r\nEtag: \"abc-150\"\r\nVary: Accept\r\n\r\nline 150 ok\n")
	m := testManifest(b, []string{deadURL(b)}, []string{backend})
	for _, tc := range []struct {
		name  string
		serve func(rt *Router, ln net.Listener) func()
	}{
		{"fast", func(rt *Router, ln net.Listener) func() {
			s := &Server{Router: rt, HTTP: &http.Server{Handler: rt}}
			go s.Serve(ln)
			return func() { s.Close() }
		}},
		{"net-http", func(rt *Router, ln net.Listener) func() {
			s := &http.Server{Handler: rt}
			go s.Serve(ln)
			return func() { s.Close() }
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rt := newRouter(b, m, Options{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer tc.serve(rt, ln)()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET /lines/150 HTTP/1.1\r\nHost: router.test\r\nUser-Agent: bench\r\n\r\n")
			body := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				status, err := readResponse(br, body)
				if err != nil || status != 200 {
					b.Fatalf("status %d, %v", status, err)
				}
			}
		})
	}
}

// BenchmarkServerParallel is BenchmarkServer/fast with 64 client
// connections at once: its time per request is the CPU of the router,
// the client and the replica together, divided by the two cores' worth.
func BenchmarkServerParallel(b *testing.B) {
	backend := rawBackend(b, "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=31536000, immutable\r\n"+
		"Content-Length: 12\r\nContent-Type: text/plain; charset=utf-8\r\nEtag: \"abc-150\"\r\nVary: Accept\r\n\r\nline 150 ok\n")
	m := testManifest(b, []string{deadURL(b)}, []string{backend})
	rt := newRouter(b, m, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{Router: rt, HTTP: &http.Server{Handler: rt}}
	go s.Serve(ln)
	defer s.Close()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req := []byte("GET /lines/150 HTTP/1.1\r\nHost: router.test\r\n\r\n")
		body := make([]byte, 64)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if status, err := readResponse(br, body); err != nil || status != 200 {
				b.Errorf("status %d, %v", status, err)
				return
			}
		}
	})
}
