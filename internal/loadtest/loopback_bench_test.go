package loadtest

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/lineserver/lineserver"
)

// BenchmarkLoopback measures the shard's handler against the ceiling's
// constant body, each behind a real net/http server on 127.0.0.1 with
// keep-alive clients, in one process: the load test's main comparison in
// a form that `go test -cpuprofile` can profile. Both lack the Functions
// Framework's wrapper, which costs them alike. It reports requests/s and
// the allocations per request of server and client together.
func BenchmarkLoopback(b *testing.B) {
	dir := b.TempDir()
	d, err := ensureData(context.Background(), dir, 64e6, 1, nil)
	require.NoError(b, err)
	srv, err := lineserver.Open(context.Background(), envconfig.MapLookuper(map[string]string{
		"FILE_REPOSITORY_FILE_PATH": d.Data, "INDEX_FILE_PATH": d.Index,
	}), io.Discard)
	require.NoError(b, err)
	defer srv.Shard().Close()
	body := []byte("a constant body of fifty bytes for the ceiling...\n")
	ceiling := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		w.Header()["Content-Length"] = []string{"50"}
		w.Write(body)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"shard", srv}, {"ceiling", ceiling}} {
		b.Run(tc.name, func(b *testing.B) { benchLoopback(b, tc.h, d.Lines) })
	}
}

func benchLoopback(b *testing.B, h http.Handler, lines int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	defer hs.Close()
	addr := l.Addr().String()
	client := &fasthttp.HostClient{Addr: addr}
	var seed atomic.Uint64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 7))
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetHost(addr)
		path := make([]byte, 0, 32)
		for pb.Next() {
			path = strconv.AppendInt(append(path[:0], "/lines/"...), 1+r.Int64N(lines), 10)
			req.SetRequestURIBytes(path)
			err := client.DoTimeout(req, resp, 5*time.Second)
			if err != nil || resp.StatusCode() != http.StatusOK {
				b.Errorf("GET %s: %d %v", path, resp.StatusCode(), err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
