package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
)

// checkingTransport answers every request itself and records a violation
// when a request goes anywhere but a replica of the manifest, or asks a
// replica for anything but a positive line number of its own shard.
type checkingTransport struct {
	owner map[string]manifest.Shard // replica host -> its shard
	mu    sync.Mutex
	bad   []string
}

func newCheckingTransport(m *manifest.Manifest) *checkingTransport {
	c := &checkingTransport{owner: make(map[string]manifest.Shard)}
	for _, s := range m.Shards {
		for _, u := range s.URLs {
			c.owner[strings.TrimPrefix(u, "http://")] = s
		}
	}
	return c
}

func (c *checkingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := c.check(r); err != nil {
		c.mu.Lock()
		c.bad = append(c.bad, err.Error())
		c.mu.Unlock()
	}
	body := "line\n"
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Length": {strconv.Itoa(len(body))}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

func (c *checkingTransport) check(r *http.Request) error {
	s, ok := c.owner[r.URL.Host]
	if !ok || r.URL.Scheme != "http" || r.Host != r.URL.Host {
		return fmt.Errorf("contacted %s (Host %q), not a replica", r.URL, r.Host)
	}
	if r.URL.Path == "/readyz" {
		return nil
	}
	raw, ok := strings.CutPrefix(r.URL.Path, "/lines/")
	n, err := strconv.ParseInt(raw, 10, 64)
	if !ok || err != nil || strconv.FormatInt(n, 10) != raw || r.URL.RawQuery != "" {
		return fmt.Errorf("asked %s for %q", r.URL.Host, r.URL.String())
	}
	if lineno.Within(n, s.First, s.Last) != nil {
		return fmt.Errorf("asked %s (%d-%d) for line %d", s.Name, s.First, s.Last, n)
	}
	return nil
}

// FuzzServeHTTP sends arbitrary paths and methods: nothing panics, every
// answer is one the API allows, and only the manifest's replicas are asked,
// only for their own lines.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []string{
		"/lines/1", "/lines/-1", "/lines/0", "/lines/007", "/lines/300", "/lines/301",
		"/lines/-300", "/lines/-301", "/lines/", "/lines/abc", "/lines/1/2", "//evil/lines/1",
		"/lines/99999999999999999999", "/lines/-9223372036854775808", "/lines/%2F1",
		"/lines/1?x=http://evil", "/healthz", "/readyz", "/nope", "", "/lines/\x00",
	} {
		f.Add("GET", seed)
	}
	f.Add("HEAD", "/lines/5")
	f.Add("POST", "/lines/5")
	m := &manifest.Manifest{TotalLines: 300, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 100, Data: "d", URLs: []string{"http://a.test:1"}},
		{Name: "b", First: 101, Last: 250, Data: "d", URLs: []string{"http://b.test:2", "http://b2.test:3"}},
		{Name: "c", First: 251, Last: 300, Data: "d", URLs: []string{"http://c.test:4"}},
	}}
	tr := newCheckingTransport(m)
	rt, err := New(m, Options{Transport: tr})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method = method
		req.URL.Path = path
		if i := strings.IndexByte(path, '?'); i >= 0 {
			req.URL.Path, req.URL.RawQuery = path[:i], path[i+1:]
		}
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 404, 405, 413:
		case 503:
			if req.URL.Path != "/readyz" {
				t.Errorf("%s %q: 503", method, path)
			}
		default:
			t.Errorf("%s %q: status %d", method, path, rec.Code)
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if len(tr.bad) > 0 {
			t.Fatalf("%s %q: %s", method, path, strings.Join(tr.bad, "; "))
		}
	})
}

// nopConn is a net.Conn whose deadlines do nothing, for reading a canned
// response.
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error { return nil }
func (nopConn) Close() error                    { return nil }

// FuzzLeanResponse feeds arbitrary bytes to the lean client's response
// parser: it never panics, and a response it accepts with a
// Content-Length yields exactly that many bytes of body.
func FuzzLeanResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nEtag: \"x\"\r\n\r\nab\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\n\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"))
	p := &connPool{timeout: time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &upConn{Conn: nopConn{}, br: bufio.NewReaderSize(bytes.NewReader(data), 64)}
		var h head
		if readStatus(c.br, &h) != nil {
			return
		}
		dst := http.Header{}
		if readHeaders(c.br, &h, mapSink(dst)) != nil {
			return
		}
		if h.status < 100 || h.status > 999 {
			t.Fatalf("status %d", h.status)
		}
		var body bytes.Buffer
		_, err := p.copyBodyFrom(&body, c, &h)
		if err == nil && !h.chunked && h.contentLength >= 0 && int64(body.Len()) != h.contentLength {
			t.Fatalf("body of %d bytes, Content-Length %d", body.Len(), h.contentLength)
		}
	})
}
