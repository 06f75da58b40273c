package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver"
	"github.com/lineserver/lineserver/internal/manifest"
	shardfile "github.com/lineserver/lineserver/internal/shard"
	"github.com/lineserver/lineserver/internal/testenv"
)

// TestLiveDifferential sends the same mutated requests to a real shard,
// asked directly, and to the router in front of it, and wants the same
// answers: status, body and the headers a client caches by. The requests
// vary the line number's spelling, the method, Accept and If-None-Match;
// they stay clear of the two known differences of the front doors (dot
// segments, which the shard's mux redirects, and an escaped minus sign,
// which the shard does not resolve), listed in internal/reliability.
func TestLiveDifferential(t *testing.T) {
	data := testenv.Varied(500)
	total := int64(len(testenv.Lines(data)))
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	sh, err := shardfile.Open(shardfile.Options{DataPath: path, IndexPath: path + "_index.txt"})
	require.NoError(t, err)
	srv := httptest.NewServer(lineserver.NewServer(sh, "0", slog.New(slog.DiscardHandler)))
	defer srv.Close()
	m := &manifest.Manifest{TotalLines: total, Shards: []manifest.Shard{{Name: "all", First: 1, Last: total, Data: "data.txt", URLs: []string{srv.URL}}}}
	rt := newRouter(t, m, Options{})
	shardAddr := strings.TrimPrefix(srv.URL, "http://")

	rng := rand.New(rand.NewPCG(13, uint64(total)))
	etags := []string{`"nope"`, "*", ""}
	for i := range 400 {
		method, target, header := mutate(rng, total, etags)
		raw := method + " " + target + " HTTP/1.1\r\nHost: lines.test\r\n" + header + "\r\n"
		want := ask(t, shardAddr, raw, method)
		got := ask(t, addr(rt), raw, method)
		require.Equal(t, want, got, "request %d: %q", i, raw)
		if et := want.etag; et != "" && len(etags) < 50 {
			etags = append(etags, et)
		}
	}
}

// mutate makes a request for a line: a number spelled in one of the ways
// a client may spell it, a method, and header fields.
func mutate(rng *rand.Rand, total int64, etags []string) (method, target, header string) {
	n := rng.Int64N(total+2) - 1 // 0..total+1 and -1
	num := strconv.FormatInt(n, 10)
	switch rng.IntN(12) {
	case 0:
		num = "-" + strconv.FormatInt(rng.Int64N(total+2), 10)
	case 1:
		num = strings.Repeat("0", rng.IntN(30)) + num
	case 2:
		num = fmt.Sprintf("%%%X", num[0]) + num[1:] // an escaped first digit
	case 3:
		num += []string{"/", "a", "%2F", " ", "?x=1", "?x#y", "#f", ";p", ".5", "%00", "e3"}[rng.IntN(11)]
	case 4:
		num = []string{"", "+1", "--1", "0x10", "99999999999999999999", "9223372036854775807", "-9223372036854775808", "\u0661"}[rng.IntN(8)]
	}
	method = []string{"GET", "GET", "GET", "HEAD", "POST", "DELETE", "get"}[rng.IntN(7)]
	if rng.IntN(3) == 0 {
		header += "Accept: " + []string{"application/json", "text/plain", "*/*", "text/html", "application/json;q=0, text/plain"}[rng.IntN(5)] + "\r\n"
	}
	if rng.IntN(3) == 0 {
		if et := etags[rng.IntN(len(etags))]; et != "" {
			header += "If-None-Match: " + et + "\r\n"
		}
	}
	return method, "/lines/" + num, header
}

// answer is what the differential test compares.
type answer struct {
	status                            int
	contentType, etag, cache, problem string
	body                              string
}

// ask sends raw on a new connection and reads the answer.
func ask(t *testing.T, addr, raw, method string) answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	require.NoError(t, err, "%s: %q", addr, raw)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), etag: resp.Header.Get("ETag"), cache: resp.Header.Get("Cache-Control")}
	if a.contentType == "application/problem+json" && method != http.MethodHead {
		var d struct{ Type string }
		require.NoError(t, json.NewDecoder(bytes.NewReader(body)).Decode(&d))
		a.problem = d.Type // the detail words the same error each its own way
	} else if a.status < 400 {
		a.body = string(body)
	} // else an HTTP parser's own refusal, in its own words
	return a
}
