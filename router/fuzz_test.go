package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
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

// FuzzParseHead feeds arbitrary bytes to the fast path's request-head
// parser: it never panics; a head it calls plain is one net/http reads the
// same way (method, path, version, one Host, no body, the Accept and
// If-None-Match values, Connection: close); and its verdict on a prefix
// holds for the whole (plain stays plain with the same size, other stays
// other), so that reading a head in pieces cannot change the answer.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"GET /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /lines/-007 HTTP/1.1\r\nhost:a.b:80\r\nAccept: application/json\r\nIf-None-Match: \"e\"\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
		"GET /lines/1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
		"GET /lines/1?x HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /lines/1 HTTP/1.0\r\n\r\n",
		"GET /lines/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /lines/1 HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"POST /lines/1 HTTP/1.1\r\n",
		"GET /lines/1 HTTP/1.1\nHost: x\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h reqHead
		v := parseHead(b, &h)
		for k := 0; k < len(b); k++ {
			var hp reqHead
			switch parseHead(b[:k], &hp) {
			case headOther:
				if v != headOther {
					t.Fatalf("prefix of %d bytes is other, the whole %v: %q", k, v, b)
				}
			case headPlain:
				if v != headPlain || hp.size != h.size {
					t.Fatalf("prefix of %d bytes is plain, the whole %v: %q", k, v, b)
				}
			}
		}
		if v != headPlain {
			return
		}
		head := b[:h.size]
		if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			t.Fatalf("plain head %q does not end with a blank line", head)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("net/http refuses the plain head %q: %v", head, err)
		}
		wantMethod := "GET"
		if h.head {
			wantMethod = "HEAD"
		}
		line := string(h.line.of(b))
		switch {
		case req.Method != wantMethod, req.URL.Path != "/lines/"+line, req.URL.RawQuery != "", req.Proto != "HTTP/1.1":
			t.Fatalf("%q: net/http reads %s %s %s", head, req.Method, req.URL, req.Proto)
		case req.ContentLength != 0, len(req.TransferEncoding) > 0:
			t.Fatalf("%q: net/http sees a body", head)
		case req.Close != h.close:
			t.Fatalf("%q: close %v, net/http %v", head, h.close, req.Close)
		case req.Host == "" || len(req.Header["Host"]) > 0:
			t.Fatalf("%q: net/http's Host %q", head, req.Host)
		}
		for _, c := range []struct {
			key   string
			spans []span
		}{{"Accept", h.accept[:h.nAccept]}, {"If-None-Match", h.inm[:h.nINM]}} {
			var got []string
			for _, sp := range c.spans {
				got = append(got, string(sp.of(b)))
			}
			if want := req.Header[c.key]; !slices.Equal(got, want) {
				t.Fatalf("%q: %s %q, net/http %q", head, c.key, got, want)
			}
		}
	})
}
