package router

import (
	"bufio"
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
)

// exchange sends raw on a new connection to addr and reads n responses,
// the i-th to a request of methods[i] (GET when missing), then reports
// whether the server closed the connection within closeWait (0: no check).
func exchange(t *testing.T, addr, raw string, n int, closeWait time.Duration, methods ...string) ([]*http.Response, []string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for i := range n {
		method := http.MethodGet
		if i < len(methods) {
			method = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		require.NoError(t, err, "answer %d", i)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resps, bodies = append(resps, resp), append(bodies, string(body))
	}
	if closeWait == 0 {
		return resps, bodies, false
	}
	c.SetReadDeadline(time.Now().Add(closeWait))
	_, err = br.ReadByte()
	return resps, bodies, err == io.EOF
}

func get1(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: router.test\r\n\r\n" }

// TestHalfClosedConnectionClosesAtOnce: a client that sends its requests
// and shuts its side gets its answers and then the end of the connection,
// at once, not after the idle timeout (120 s, above the 20 s wait here).
func TestHalfClosedConnectionClosesAtOnce(t *testing.T) {
	rt, _ := threeShards(t)
	c, err := net.Dial("tcp", addr(rt))
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, get1("/lines/1")+get1("/lines/2"))
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	all, err := io.ReadAll(c)
	require.NoError(t, err, "the router closes the connection")
	assert.Equal(t, 2, strings.Count(string(all), "200 OK"), "%s", all)
	assert.Contains(t, string(all), "line 2 of shard-1\n")
}

// TestContentLengthWithChunked: a request framed both ways is refused with
// 400 and its connection closed (RFC 9112 section 6.1), so that nothing
// after it is read as a request.
func TestContentLengthWithChunked(t *testing.T) {
	rt, fs := threeShards(t)
	smuggled := get1("/lines/3")
	raw := "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
	resps, _, closed := exchange(t, addr(rt), raw, 1, 10*time.Second)
	assert.Equal(t, http.StatusBadRequest, resps[0].StatusCode)
	assert.True(t, closed, "the connection is closed after the 400")
	assert.Zero(t, fs[0].hits.Load())

	// Chunked alone, with Connection: close, is a request like any other.
	raw = "GET /lines/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	resps, bodies, closed := exchange(t, addr(rt), raw, 1, 10*time.Second)
	assert.Equal(t, http.StatusOK, resps[0].StatusCode)
	assert.Equal(t, "line 1 of shard-1\n", bodies[0])
	assert.True(t, closed)
}

// TestClientLeavesCancelsTheShardRequest: clients that send a request to a
// stalled shard and go away end their requests to the shard too, well
// before the response timeout (a minute here), as NGINX does.
func TestClientLeavesCancelsTheShardRequest(t *testing.T) {
	var started, ended atomic.Int64
	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		started.Add(1)
		defer ended.Add(1)
		select {
		case <-r.Context().Done(): // the router closed the connection
		case <-release:
		}
	}))
	defer stalled.Close()
	defer close(release)
	rt := newRouter(t, testManifest(t, []string{stalled.URL}), Options{ResponseHeaderTimeout: time.Minute})

	const clients = 50
	var conns []net.Conn
	for i := range clients {
		c, err := net.Dial("tcp", addr(rt))
		require.NoError(t, err)
		io.WriteString(c, get1("/lines/"+strconv.Itoa(i+1)))
		conns = append(conns, c)
	}
	require.Eventually(t, func() bool { return started.Load() == clients }, 20*time.Second, 10*time.Millisecond)
	assert.Zero(t, ended.Load())
	for i, c := range conns {
		if i%2 == 0 {
			c.(*net.TCPConn).SetLinger(0) // a reset rather than a close
		}
		c.Close()
	}
	require.Eventually(t, func() bool { return ended.Load() == clients }, 20*time.Second, 10*time.Millisecond,
		"every request to the shard ends with its client")
	assert.True(t, rt.shards[0].replicas[0].healthy.Load(), "a client that leaves says nothing of the replica")
	// The router counts a request once its exchange with the shard ends,
	// which may be a moment after the shard saw it end.
	assert.Eventually(t, func() bool {
		return strings.Contains(get(rt, "/metrics").Body.String(), `lineserver_router_requests_total{code="499",shard="shard-1"} 50`)
	}, time.Minute, 10*time.Millisecond)
}
