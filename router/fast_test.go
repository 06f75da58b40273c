package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastFixture is a Router over three fake shards served two ways: by a
// Server (the fast path, handing over to net/http) and, for reference, by
// a plain http.Server, as the router was served before the fast path.
type fastFixture struct {
	rt        *Router
	fakes     []*fakeShard
	srv       *Server
	addr      string // the Server's
	reference string // the plain http.Server's
}

// timeouts are the fixture's server timeouts; zero fields take those of
// cmd/router.
type timeouts struct {
	header, idle, write time.Duration
}

func newFastFixture(t *testing.T, to timeouts) *fastFixture {
	fs := fakes(3)
	m := testManifest(t, []string{fs[0].start(t)}, []string{fs[1].start(t)}, []string{fs[2].start(t)})
	return serveFast(t, newRouter(t, m, Options{}), fs, to)
}

// httpServer is an http.Server for rt with cmd/router's settings.
func httpServer(rt *Router, to timeouts) *http.Server {
	if to.header == 0 {
		to.header = 5 * time.Second
	}
	if to.idle == 0 {
		to.idle = 120 * time.Second
	}
	if to.write == 0 {
		to.write = 40 * time.Second
	}
	return &http.Server{
		Handler: rt, ReadHeaderTimeout: to.header, ReadTimeout: 10 * time.Second,
		WriteTimeout: to.write, IdleTimeout: to.idle, MaxHeaderBytes: 64 << 10,
	}
}

func serveFast(t *testing.T, rt *Router, fs []*fakeShard, to timeouts) *fastFixture {
	f := &fastFixture{rt: rt, fakes: fs}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.srv = &Server{Router: rt, HTTP: httpServer(rt, to)}
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(ln) }()
	f.addr = ln.Addr().String()

	ref, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refSrv := httpServer(rt, to)
	go refSrv.Serve(ref)
	f.reference = ref.Addr().String()
	t.Cleanup(func() {
		f.srv.Close()
		refSrv.Close()
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return f
}

// answer is one response read off a connection.
type answer struct {
	status int
	header http.Header
	close  bool // Connection: close, which ReadResponse takes out of header
	body   string
	err    error
}

// exchange sends raw on a new connection to addr and reads n responses,
// the i-th to a request of methods[i] (GET when missing). After the
// last, it reports whether the server closed the connection within
// closeWait (0: do not check).
func exchange(t *testing.T, addr, raw string, n int, closeWait time.Duration, methods ...string) ([]answer, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var out []answer
	for i := range n {
		method := http.MethodGet
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			out = append(out, answer{err: err})
			return out, false
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Del("Date")
		out = append(out, answer{status: resp.StatusCode, header: resp.Header, close: resp.Close, body: string(body), err: err})
	}
	if closeWait == 0 {
		return out, false
	}
	c.SetReadDeadline(time.Now().Add(closeWait))
	_, err = br.ReadByte()
	return out, err == io.EOF
}

func (f *fastFixture) handovers() int64 { return f.srv.handovers.Load() }

// openConns is how many connections the fast path holds.
func (s *Server) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func get1(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: router.test\r\n\r\n" }

// TestFastPathAnswersLikeNetHTTP sends each raw request to the Server and
// to net/http serving the same Router, and wants the same answers (but
// for Date) from both, from the fast path for the plain requests and
// from net/http, behind the hand-over, for the others.
func TestFastPathAnswersLikeNetHTTP(t *testing.T) {
	f := newFastFixture(t, timeouts{})
	etag := `"shard-1-7"`
	for _, tc := range []struct {
		name    string
		raw     string
		n       int
		methods []string
		fast    bool // answered by the fast path, without a hand-over
	}{
		{"plain GET", get1("/lines/5"), 1, nil, true},
		{"HEAD", "HEAD /lines/8 HTTP/1.1\r\nHost: x\r\n\r\n", 1, []string{"HEAD"}, true},
		{"negative with zeros", get1("/lines/-0150"), 1, nil, true},
		{"Accept json", "GET /lines/7 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n", 1, nil, true},
		{"304", "GET /lines/7 HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag + "\r\n\r\n", 1, nil, true},
		{"304 for HEAD", "HEAD /lines/7 HTTP/1.1\r\nhost: x\r\nif-none-match: " + etag + "\r\n\r\n", 1, []string{"HEAD"}, true},
		{"many fields, odd case and spacing", "GET /lines/3 HTTP/1.1\r\nUser-Agent: t\r\nHOST:x\r\nAccept:\t*/* \r\nConnection: keep-alive\r\nContent-Length: 0\r\nCookie: a=b\r\n\r\n", 1, nil, true},
		{"zero is 400", get1("/lines/0"), 1, nil, true},
		{"too large for int64 is 400", get1("/lines/99999999999999999999"), 1, nil, true},
		{"beyond the end is 413", get1("/lines/301"), 1, nil, true},
		{"HEAD beyond the end", "HEAD /lines/-301 HTTP/1.1\r\nHost: x\r\n\r\n", 1, []string{"HEAD"}, true},
		{"pipelined plain", get1("/lines/1") + get1("/lines/150") + "HEAD /lines/300 HTTP/1.1\r\nHost: x\r\n\r\n", 3, []string{"GET", "GET", "HEAD"}, true},

		{"query string", get1("/lines/5?x=1"), 1, nil, false},
		{"percent-encoded digit", get1("/lines/%35"), 1, nil, false},
		{"healthz", get1("/healthz"), 1, nil, false},
		{"readyz", get1("/readyz"), 1, nil, false},
		{"unknown path", get1("/nope"), 1, nil, false},
		{"a segment more", get1("/lines/1/2"), 1, nil, false},
		{"no digits", get1("/lines/"), 1, nil, false},
		{"a lone minus", get1("/lines/-"), 1, nil, false},
		{"POST", "POST /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 1, nil, false},
		{"lower-case get", "get /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", 1, nil, false},
		{"HTTP/1.0", "GET /lines/1 HTTP/1.0\r\n\r\n", 1, nil, false},
		{"HTTP/1.1 without Host", "GET /lines/1 HTTP/1.1\r\n\r\n", 1, nil, false},
		{"two Hosts", "GET /lines/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1, nil, false},
		{"odd Host", "GET /lines/1 HTTP/1.1\r\nHost: a b\r\n\r\n", 1, nil, false},
		{"absolute form", "GET http://evil.test/lines/1 HTTP/1.1\r\nHost: evil.test\r\n\r\n", 1, nil, false},
		{"body on GET", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + get1("/lines/2"), 2, nil, false},
		{"chunked body", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, nil, false},
		{"Expect", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", 1, nil, false},
		{"Upgrade", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 1, nil, false},
		{"space before colon", "GET /lines/1 HTTP/1.1\r\nHost : x\r\n\r\n", 1, nil, false},
		{"folded field", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 1, nil, false},
		{"NUL in a value", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 1, nil, false},
		{"bare LF", "GET /lines/1 HTTP/1.1\nHost: x\n\n", 1, nil, false},
		{"TLS hello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + strings.Repeat("\x00", 32) + "\r\n\r\n", 1, nil, false},
		{"head of 8 KiB", "GET /lines/2 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 1, nil, false},
		{"five Accept fields", "GET /lines/2 HTTP/1.1\r\nHost: x" + strings.Repeat("\r\nAccept: */*", 5) + "\r\n\r\n", 1, nil, false},
		{"pipelined mix", get1("/lines/1") + get1("/lines/2?q") + get1("/lines/3") + "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + get1("/lines/4"),
			5, []string{"GET", "GET", "GET", "HEAD", "GET"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.handovers()
			got, _ := exchange(t, f.addr, tc.raw, tc.n, 0, tc.methods...)
			want, _ := exchange(t, f.reference, tc.raw, tc.n, 0, tc.methods...)
			require.Len(t, got, len(want))
			for i := range want {
				require.NoError(t, want[i].err, "reference answer %d", i+1)
				require.NoError(t, got[i].err, "answer %d", i+1)
				assert.Equal(t, want[i].status, got[i].status, "answer %d", i+1)
				assert.Equal(t, want[i].header, got[i].header, "answer %d", i+1)
				assert.Equal(t, want[i].close, got[i].close, "answer %d: Connection: close", i+1)
				assert.Equal(t, want[i].body, got[i].body, "answer %d", i+1)
			}
			if tc.fast {
				assert.Equal(t, before, f.handovers(), "handed over")
			} else {
				assert.Equal(t, before+1, f.handovers(), "not handed over")
			}
		})
	}
}

func TestFastPathDate(t *testing.T) {
	f := newFastFixture(t, timeouts{})
	c, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, get1("/lines/1"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	date, err := http.ParseTime(resp.Header.Get("Date"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), date, 2*time.Second)
	assert.Zero(t, f.handovers())
}

func TestFastPathConnectionClose(t *testing.T) {
	f := newFastFixture(t, timeouts{})
	for _, v := range []string{"close", "Close", "keep-alive, close"} {
		t.Run(v, func(t *testing.T) {
			raw := "GET /lines/1 HTTP/1.1\r\nHost: x\r\nConnection: " + v + "\r\n\r\n" + get1("/lines/2")
			got, closed := exchange(t, f.addr, raw, 1, time.Second)
			require.NoError(t, got[0].err)
			assert.Equal(t, 200, got[0].status)
			assert.True(t, got[0].close, "no Connection: close")
			assert.True(t, closed, "the connection stays open; the request after is answered")
		})
	}
	got, closed := exchange(t, f.addr, get1("/lines/1"), 1, 200*time.Millisecond)
	require.NoError(t, got[0].err)
	assert.False(t, got[0].close)
	assert.False(t, closed, "a keep-alive connection was closed")
	assert.Zero(t, f.handovers())
}

// TestFastPathRelaysReplicaBodies has a replica answer in each framing a
// server may use; the router's answer must be what net/http makes of it.
func TestFastPathRelaysReplicaBodies(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 400) // 6,400 bytes, more than is held back
	for _, tc := range []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		body   string
	}{
		{"chunked, short", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "short\n")
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}, "short\n"},
		{"chunked, long", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, long[:100])
			w.(http.Flusher).Flush()
			io.WriteString(w, long[100:])
		}, long},
		{"no Content-Type", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil // no sniffing at the replica
			io.WriteString(w, "<html><body>x</body></html>")
		}, "<html><body>x</body></html>"},
		{"empty", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Extra", "a")
			w.Header().Add("X-Extra", "b")
		}, ""},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, ""},
		{"status without text", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(299)
			io.WriteString(w, "odd\n")
		}, "odd\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := fakes(1)
			fs[0].handle = tc.handle
			rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{})
			f := serveFast(t, rt, fs, timeouts{})
			for _, method := range []string{"GET", "HEAD"} {
				raw := method + " /lines/5 HTTP/1.1\r\nHost: x\r\n\r\n" + get1("/lines/6")
				got, _ := exchange(t, f.addr, raw, 2, 0, method)
				want, _ := exchange(t, f.reference, raw, 2, 0, method)
				for i := range want {
					require.NoError(t, want[i].err)
					require.NoError(t, got[i].err, "%s answer %d", method, i+1)
					assert.Equal(t, want[i].status, got[i].status, "%s answer %d", method, i+1)
					assert.Equal(t, want[i].header, got[i].header, "%s answer %d", method, i+1)
					assert.Equal(t, want[i].close, got[i].close, "%s answer %d", method, i+1)
					assert.Equal(t, want[i].body, got[i].body, "%s answer %d", method, i+1)
				}
				if method == "GET" {
					assert.Equal(t, tc.body, got[0].body)
				}
			}
			assert.Zero(t, f.handovers())
		})
	}
}

// TestFastPathBrokenBody has a replica break off in the middle of a body:
// the client must see a broken response, never a complete one.
func TestFastPathBrokenBody(t *testing.T) {
	fs := fakes(1)
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only part")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{})
	f := serveFast(t, rt, fs, timeouts{})
	got, _ := exchange(t, f.addr, get1("/lines/5"), 1, 0)
	assert.Error(t, got[0].err, "a short body passed for a whole one")
}

// TestFastPathTimeouts: a slow client is cut by the header timeout, on a
// new connection and in the middle of a later head, and an idle one by
// the idle timeout; others are served meanwhile.
func TestFastPathTimeouts(t *testing.T) {
	f := newFastFixture(t, timeouts{header: 300 * time.Millisecond, idle: 600 * time.Millisecond})
	cut := func(t *testing.T, c net.Conn) time.Duration {
		start := time.Now()
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c)
		require.NoError(t, err, "not closed")
		return time.Since(start)
	}
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", f.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("nothing sent", func(t *testing.T) {
		took := cut(t, dial(t))
		assert.InDelta(t, 300, took.Milliseconds(), 250)
	})
	t.Run("half a head", func(t *testing.T) {
		c := dial(t)
		io.WriteString(c, "GET /lines/1 HTTP/1.1\r\nHost: x\r\n")
		took := cut(t, c)
		assert.InDelta(t, 300, took.Milliseconds(), 250)
	})
	t.Run("a trickled head", func(t *testing.T) {
		c := dial(t)
		start := time.Now()
		go func() {
			io.WriteString(c, "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			for range 20 {
				time.Sleep(50 * time.Millisecond)
				if _, err := io.WriteString(c, "a"); err != nil {
					return
				}
			}
		}()
		cut(t, c)
		assert.Less(t, time.Since(start), 800*time.Millisecond)
	})
	t.Run("half a head after an answer", func(t *testing.T) {
		c := dial(t)
		io.WriteString(c, get1("/lines/1")+"GET /lines/2 HTTP/1.1\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		assert.Equal(t, 200, resp.StatusCode)
		start := time.Now()
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err = io.Copy(io.Discard, br)
		require.NoError(t, err)
		assert.InDelta(t, 300, time.Since(start).Milliseconds(), 250)
	})
	t.Run("idle after an answer", func(t *testing.T) {
		c := dial(t)
		io.WriteString(c, get1("/lines/1"))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		start := time.Now()
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err = io.Copy(io.Discard, br)
		require.NoError(t, err)
		assert.InDelta(t, 600, time.Since(start).Milliseconds(), 300)
	})
	got, _ := exchange(t, f.addr, get1("/lines/9"), 1, 0)
	assert.Equal(t, 200, got[0].status)
}

// TestFastPathWriteTimeout: a client that does not read a long answer is
// cut by the write timeouts.
func TestFastPathWriteTimeout(t *testing.T) {
	fs := fakes(1)
	long := strings.Repeat("x", 64<<20)
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, long)
	}
	rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{BodyWriteTimeout: 300 * time.Millisecond})
	f := serveFast(t, rt, fs, timeouts{write: 300 * time.Millisecond})
	c, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer c.Close()
	io.WriteString(c, get1("/lines/1"))
	require.Eventually(t, func() bool { return fs[0].hits.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	// The client reads nothing: the router gives up on it.
	start := time.Now()
	require.Eventually(t, func() bool { return f.srv.openConns() == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Less(t, time.Since(start), 2*time.Second)
}

// TestFastPathDrain: Shutdown lets a request in flight finish, with
// Connection: close, closes idle connections, hands no more over, and
// returns once all are done.
func TestFastPathDrain(t *testing.T) {
	fs := fakes(1)
	release := make(chan struct{})
	var started atomic.Int32
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release
		io.WriteString(w, "slow\n")
	}
	rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{})
	f := serveFast(t, rt, fs, timeouts{})

	idle, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer idle.Close()
	busy, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer busy.Close()
	_, err = io.WriteString(busy, get1("/lines/1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return started.Load() == 1 }, 5*time.Second, 5*time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(context.Background()) }()
	// The idle connection is closed at once.
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
	select {
	case <-done:
		t.Fatal("Shutdown returned with a request in flight")
	case <-time.After(100 * time.Millisecond):
	}
	_, err = net.DialTimeout("tcp", f.addr, time.Second)
	assert.Error(t, err, "still accepting")

	close(release)
	br := bufio.NewReader(busy)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "slow\n", string(body))
	assert.True(t, resp.Close, "no Connection: close")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// TestFastPathShutdownGivesUp: Shutdown returns the context's error when a
// request is still in flight at its end, and Close ends it.
func TestFastPathShutdownGivesUp(t *testing.T) {
	fs := fakes(1)
	release := make(chan struct{})
	defer close(release)
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{})
	f := serveFast(t, rt, fs, timeouts{})
	c, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer c.Close()
	io.WriteString(c, get1("/lines/1"))
	require.Eventually(t, func() bool { return fs[0].hits.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, f.srv.Shutdown(ctx), context.DeadlineExceeded)
	require.NoError(t, f.srv.Close())
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = io.Copy(io.Discard, c)
	assert.NoError(t, err, "not closed")
}

// TestFastPathManyPipelined sends 300 requests in one write, more than the
// read buffer holds, and wants every answer in order.
func TestFastPathManyPipelined(t *testing.T) {
	f := newFastFixture(t, timeouts{})
	var raw strings.Builder
	for i := 1; i <= 300; i++ {
		raw.WriteString(get1("/lines/" + strconv.Itoa(i)))
	}
	got, _ := exchange(t, f.addr, raw.String(), 300, 0)
	for i, a := range got {
		require.NoError(t, a.err, "answer %d", i+1)
		assert.Equal(t, fmt.Sprintf("line %d of shard-%d\n", i+1, i/100+1), a.body)
	}
	assert.Zero(t, f.handovers())
}

// TestFastPathClientGone: a client that leaves before its answer does not
// break the server, and the next one is served.
func TestFastPathClientGone(t *testing.T) {
	fs := fakes(1)
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, strings.Repeat("y", 1<<20))
	}
	rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{})
	f := serveFast(t, rt, fs, timeouts{})
	for range 3 {
		c, err := net.Dial("tcp", f.addr)
		require.NoError(t, err)
		io.WriteString(c, get1("/lines/1"))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	got, _ := exchange(t, f.addr, get1("/lines/1"), 1, 0)
	require.NoError(t, got[0].err)
	assert.Equal(t, 1<<20, len(got[0].body))
}

func TestFastPathServeAfterShutdown(t *testing.T) {
	s := &Server{Router: newRouter(t, testManifest(t, []string{"http://127.0.0.1:1"}), Options{}), HTTP: &http.Server{}}
	require.NoError(t, s.Shutdown(context.Background()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.ErrorIs(t, s.Serve(ln), http.ErrServerClosed)
}

// TestFastPathRelaysOddFields has a hand-written replica send fields that
// net/http's own response writer would clean up: the fast path must send
// what net/http sends for the same Router.
func TestFastPathRelaysOddFields(t *testing.T) {
	raw := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-Odd: a\rb\r\nx-dup: 1\r\nX-Dup: 2\r\n"+
				"Keep-Alive: timeout=5\r\nServer: replica\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nEtag:   \"sp\"  \r\n"+
				"Content-Length: 3\r\n\r\nok\n")
		}
	})
	rt := newRouter(t, testManifest(t, []string{raw.url}), Options{})
	f := serveFast(t, rt, nil, timeouts{})
	got, _ := exchange(t, f.addr, get1("/lines/1"), 1, 0)
	want, _ := exchange(t, f.reference, get1("/lines/1"), 1, 0)
	require.NoError(t, got[0].err)
	require.NoError(t, want[0].err)
	assert.Equal(t, want[0].header, got[0].header)
	assert.Equal(t, "ok\n", got[0].body)
	assert.Equal(t, []string{"a b"}, got[0].header["X-Odd"])
	assert.Equal(t, []string{"1", "2"}, got[0].header["X-Dup"])
	assert.Empty(t, got[0].header["Server"])
	assert.Zero(t, f.handovers())
}

// TestFastPathPipelinedAnswerGoesOutFirst: of two pipelined requests, the
// second waits on a shard that answers only once the client has the first
// answer. The first must not wait in the buffer for the second.
func TestFastPathPipelinedAnswerGoesOutFirst(t *testing.T) {
	fs := fakes(3)
	release := make(chan struct{})
	fs[1].handle = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte("slow\n"))
	}
	m := testManifest(t, []string{fs[0].start(t)}, []string{fs[1].start(t)}, []string{fs[2].start(t)})
	f := serveFast(t, newRouter(t, m, Options{}), fs, timeouts{})

	c, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, get1("/lines/1")+get1("/lines/150"))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "the first answer must come while the second waits")
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "line 1 of shard-1\n", string(body))
	close(release)
	resp, err = http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	assert.Equal(t, "slow\n", string(body))
	assert.Zero(t, f.handovers())
}

// TestFastPathHalfClose: a client that half-closes its connection in the
// same moment as it sends its requests (one, or a pipelined batch) gets
// its answers, and then the connection is closed, as net/http and NGINX
// close it, rather than kept until the idle timeout.
func TestFastPathHalfClose(t *testing.T) {
	f := newFastFixture(t, timeouts{})
	for _, n := range []int{1, 3} {
		var raw strings.Builder
		for i := 1; i <= n; i++ {
			raw.WriteString(get1("/lines/" + strconv.Itoa(i)))
		}
		for try := range 10 {
			c, err := net.Dial("tcp", f.addr)
			require.NoError(t, err)
			_, err = io.WriteString(c, raw.String())
			require.NoError(t, err)
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			for i := 1; i <= n; i++ {
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err, "%d requests, try %d", n, try)
				body, _ := io.ReadAll(resp.Body)
				assert.Equal(t, fmt.Sprintf("line %d of shard-1\n", i), string(body))
			}
			_, err = br.ReadByte()
			assert.ErrorIs(t, err, io.EOF, "%d requests, try %d: the router must close it, not wait for the idle timeout", n, try)
			c.Close()
		}
	}
	assert.Zero(t, f.handovers())
	require.Eventually(t, func() bool { return f.srv.openConns() == 0 }, 5*time.Second, 10*time.Millisecond)
}
