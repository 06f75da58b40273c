package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLongLineToASlowClient: a line far longer than the socket buffers,
// read slowly, takes longer in all than the server's WriteTimeout (300 ms
// here); it still arrives whole, because every write after the first
// gets a deadline of its own.
// A line that arrived cut would be a line the client takes for whole.
func TestLongLineToASlowClient(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcde\n"[:15]), 16<<20/15)
	long = append(long, '\n')
	fs := fakes(3)
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(long)))
		w.Write(long)
	}
	m := testManifest(t, []string{fs[0].start(t)}, []string{fs[1].start(t)}, []string{fs[2].start(t)})
	rt, err := New(m, Options{})
	require.NoError(t, err)
	at := serve(t, rt, &Server{WriteTimeout: 300 * time.Millisecond})

	for _, path := range []string{"/lines/1", "/lines/1?again"} {
		t.Run(path, func(t *testing.T) {
			c, err := net.Dial("tcp", at)
			require.NoError(t, err)
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: router.test\r\n\r\n", path)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			start := time.Now()
			var got []byte
			buf := make([]byte, 1<<20)
			for {
				n, err := io.ReadFull(resp.Body, buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
				time.Sleep(150 * time.Millisecond) // ~7 MB/s
			}
			took := time.Since(start)
			require.Greater(t, took, 900*time.Millisecond, "the client must read for longer than the write timeout")
			assert.Equal(t, len(long), len(got), "the whole line, after %v", took)
			assert.True(t, bytes.Equal(long, got))
		})
	}
}

// TestLongLineInConstantMemory: a line of 256 MiB streams through the
// router without the router holding it: the heap grows by far less than
// the line.
func TestLongLineInConstantMemory(t *testing.T) {
	const size = 256 << 20
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	fs := fakes(1)
	fs[0].handle = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	rt := newRouter(t, testManifest(t, []string{fs[0].start(t)}), Options{})
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := http.Get("http://" + addr(rt) + "/lines/1")
	require.NoError(t, err)
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if n%(32<<20) < int64(k) {
			runtime.ReadMemStats(&peak)
			assert.Less(t, peak.HeapInuse, before.HeapInuse+64<<20, "heap after %d bytes", n)
		}
		if err != nil {
			break
		}
	}
	assert.Equal(t, int64(size), n)
}
