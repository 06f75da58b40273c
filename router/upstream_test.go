package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawReplica is a replica written by hand, to send what net/http would
// not: each accepted connection is handed to serve.
type rawReplica struct {
	url   string
	conns atomic.Int64
}

func startRaw(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawReplica {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	r := &rawReplica{url: "http://" + l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return r
}

// readRequest reads one request and returns its request line and headers.
func readRequest(br *bufio.Reader) (string, http.Header, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", nil, err
	}
	return req.Method + " " + req.URL.RequestURI(), req.Header, nil
}

func TestRelayReusesConnections(t *testing.T) {
	var seen []string
	raw := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		for {
			line, h, err := readRequest(br)
			if err != nil {
				return
			}
			seen = append(seen, line+" accept="+h.Get("Accept"))
			switch {
			case strings.HasPrefix(line, "HEAD"):
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nEtag: \"x\"\r\n\r\n")
			case h.Get("If-None-Match") == `"x"`:
				fmt.Fprint(c, "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 7\r\n\r\n")
			default:
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Type: text/plain; charset=utf-8\r\n"+
					"Etag: \"x\"\r\nVary: Accept\r\nX-Extra: a\r\nX-Extra: b\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nServer: shard\r\n\r\nline 1\n")
			}
		}
	})
	rt := newRouter(t, testManifest(t, []string{raw.url}), Options{})

	rec := get(rt, "/lines/1", "Accept", "text/plain")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "line 1\n", rec.Body.String())
	assert.NotEqual(t, "Mon, 01 Jan 2001 00:00:00 GMT", rec.Header().Get("Date"))
	rec.Header().Del("Date")
	assert.Equal(t, http.Header{
		"Content-Length": {"7"}, "Content-Type": {"text/plain; charset=utf-8"}, "Etag": {`"x"`},
		"Vary": {"Accept"}, "X-Extra": {"a", "b"},
	}, rec.Header(), "Date and Server are the router's own")

	rec = do(rt, "HEAD", "/lines/1")
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "7", rec.Header().Get("Content-Length"))
	assert.Empty(t, rec.Body.String())

	rec = get(rt, "/lines/1", "If-None-Match", `"x"`)
	assert.Equal(t, 304, rec.Code)
	assert.Empty(t, rec.Body.String())

	rec = get(rt, "/lines/-100")
	assert.Equal(t, "line 1\n", rec.Body.String())
	assert.Equal(t, int64(1), raw.conns.Load(), "one keep-alive connection carried every request")
	assert.Equal(t, []string{
		"GET /lines/1 accept=text/plain", "HEAD /lines/1 accept=", "GET /lines/1 accept=", "GET /lines/1 accept=",
	}, seen)
}

func TestRelayRetriesAStaleConnection(t *testing.T) {
	// The replica closes each connection after one answer without saying
	// so: the next request on the pooled connection finds it closed and
	// goes again on a new one, without ejecting the replica.
	raw := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err == nil {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
		}
	})
	rt := newRouter(t, testManifest(t, []string{raw.url}), Options{})
	for range 5 {
		rec := get(rt, "/lines/1")
		require.Equal(t, 200, rec.Code, rec.Body.String())
		assert.Equal(t, "ok\n", rec.Body.String())
		time.Sleep(5 * time.Millisecond) // let the close arrive
	}
	assert.True(t, rt.shards[0].replicas[0].healthy.Load())
	assert.Equal(t, int64(5), raw.conns.Load())
}

func TestRelayBodies(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) + "\n" // 1 MiB and a bit
	for _, tc := range []struct {
		name, response, want string
		wantLength           string
	}{
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nline\r\n2\r\n 1\r\n1\r\n\n\r\n0\r\n\r\n", "line 1\n", ""},
		{"until the end", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nline 1\n", "line 1\n", ""},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nline 1\n", "line 1\n", "7"},
		{"long", "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big, big, fmt.Sprint(len(big))},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", "0"},
		{"after an interim response", "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nline 1\n", "line 1\n", "7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := startRaw(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					io.WriteString(c, tc.response)
					if !strings.Contains(tc.response, "Content-Length") || strings.HasPrefix(tc.response, "HTTP/1.0") {
						return
					}
				}
			})
			rt := newRouter(t, testManifest(t, []string{raw.url}), Options{})
			for range 3 {
				rec := get(rt, "/lines/1")
				require.Equal(t, 200, rec.Code)
				assert.Equal(t, tc.want, rec.Body.String())
				assert.Equal(t, tc.wantLength, rec.Header().Get("Content-Length"))
				assert.Empty(t, rec.Header().Get("Transfer-Encoding"))
			}
			assert.True(t, rt.shards[0].replicas[0].healthy.Load())
		})
	}
}

func TestRelayBrokenResponses(t *testing.T) {
	for _, tc := range []struct{ name, response string }{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n"},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"bad header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"cut in the headers", "HTTP/1.1 200 OK\r\nContent-Le"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := startRaw(t, func(c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err == nil {
					io.WriteString(c, tc.response)
				}
			})
			rt := newRouter(t, testManifest(t, []string{raw.url}), Options{})
			rec := get(rt, "/lines/1")
			assert.Equal(t, http.StatusBadGateway, rec.Code)
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		})
	}
}

func TestRelayBodyCutShort(t *testing.T) {
	raw := startRaw(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
		}
	})
	rt := newRouter(t, testManifest(t, []string{raw.url}), Options{})
	resp, err := http.Get("http://" + addr(rt) + "/lines/1")
	if err == nil { // the headers went out before the cut
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	assert.Error(t, err, "the client sees the cut, never a short line as a whole one")
}

func TestReplicaAddress(t *testing.T) {
	for raw, want := range map[string]string{
		"http://shard": "shard:80", "http://shard:8080": "shard:8080", "http://[::1]": "[::1]:80",
		"http://[::1]:81/": "[::1]:81", "https://b.run.app": "b.run.app:443",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		m, err := newMetrics(prometheus.NewRegistry())
		require.NoError(t, err)
		rep := newReplica("s", u, newServer(u, Options{}), m, Options{})
		assert.Equal(t, want, rep.server.client.Addr, raw)
		assert.Equal(t, u.Host, rep.host, raw)
		assert.Equal(t, u.Scheme == "https", rep.server.client.IsTLS, raw)
	}
}

// TestHTTPSReplica: an https replica (Cloud Run) gets TLS and its own
// Host, whatever Host the client sent.
func TestHTTPSReplica(t *testing.T) {
	f := fakes(1)[0]
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	rt := newRouter(t, testManifest(t, []string{srv.URL}), Options{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	rec := get(rt, "/lines/3")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, "line 3 of shard-1\n", rec.Body.String())
	assert.Equal(t, strings.TrimPrefix(srv.URL, "https://"), f.last1().Host)
	rt.CheckHealth(t.Context())
	assert.True(t, rt.shards[0].replicas[0].healthy.Load())
}

func TestPatientDialTimeout(t *testing.T) {
	assert.Greater(t, patientDialTimeout, time.Second, "must outlast the kernel's SYN resend")
}
