package router

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHandleLine: one line through Handle from a fasthttp shard on
// loopback. Its allocation (1/op) is RequestCtx.Init's; the router adds none.
func BenchmarkHandleLine(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	body := []byte("line 7 of shard-1 with some text in it to look like a line\n")
	go fasthttp.Serve(ln, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("ETag", `"x-7"`)
		ctx.Response.Header.Set("Cache-Control", "public, max-age=31536000, immutable")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBody(body)
	})
	defer ln.Close()
	rt, err := New(testManifest(b, []string{"http://" + ln.Addr().String()}), Options{})
	if err != nil {
		b.Fatal(err)
	}
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/lines/7")
	req.Header.SetHost("router.test")
	req.Header.Set("Accept", "text/plain")
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx.Init(&req, nil, nil)
		rt.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatal(ctx.Response.StatusCode())
		}
		ctx.Response.Reset()
	}
}
