package router

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// noFailure marks a request that got a usable response; noReplica one
// that found no healthy replica to ask.
const (
	noFailure = numFailures
	noReplica = numFailures + 1
)

// statusClientClosed counts requests whose client left before the answer,
// as NGINX does.
const statusClientClosed = 499

// maxBufferedBody is the longest body read whole before it is relayed, so
// that its connection to the replica is free again at once; a longer one,
// or one of unknown length, is streamed through.
const maxBufferedBody = 64 << 10

// call is one request for a line on its way to a replica.
type call struct {
	rt    *Router
	ctx   *fasthttp.RequestCtx
	req   fasthttp.Request
	resp  *fasthttp.Response // nil once handed to a stream
	watch *clientConn        // nil when the client's connection cannot be watched
	head  bool
	up    upstream
	// lines is the number of lines of a range relayed with status 200,
	// counted in the metrics once its body is relayed whole.
	lines int64
}

// calls keeps calls for reuse, so that a request allocates nothing of its
// own on its way through.
var calls = sync.Pool{New: func() any { return new(call) }}

// proxy sends the request for uri (a line, or a range of lines that s
// serves whole) to a healthy replica of s, retries once on another replica
// when the first could not answer (on the same one if it is alone and only
// slow to connect), and relays the response. The request it makes is
// fixed: method, path, Host, and the client's Accept and If-None-Match.
// lines is the number of lines of a range, 0 for a single line.
func (rt *Router) proxy(ctx *fasthttp.RequestCtx, s *shard, uri []byte, lines int64) {
	c := rt.newCall(ctx.Method(), uri)
	defer c.release()
	c.ctx = ctx
	for _, name := range [...]string{fasthttp.HeaderAccept, fasthttp.HeaderIfNoneMatch} {
		for _, v := range ctx.Request.Header.PeekAll(name) {
			c.req.Header.AddBytesV(name, v)
		}
	}
	if cc, ok := ctx.Conn().(*clientConn); ok {
		c.watch = cc.watch()
		defer c.watch.stop()
	}
	rep, fail, err := c.exchange(s)
	if fail == noFailure {
		status := c.resp.StatusCode()
		if lines > 0 {
			if why := rangeDisagrees(status, c.resp.Header.Peek("Link")); why != "" {
				c.up.close(false)
				rt.disagree(ctx, s, rep, uri, why)
				return
			}
		}
		s.counts.inc(status)
		if status == fasthttp.StatusOK && !c.head {
			c.lines = lines
		}
		c.relay(status)
	} else {
		rt.writeFailure(ctx, s, rep, fail, err, c.gone())
	}
	if rt.log.Enabled(ctx, slog.LevelDebug) {
		rt.log.Debug("request", "method", string(ctx.Method()), "path", string(uri), "shard", s.name, "replica", rep)
	}
}

// newCall returns a call, ready for exchange, that asks for uri with
// method and no header but Host.
func (rt *Router) newCall(method, uri []byte) *call {
	c := calls.Get().(*call)
	c.rt, c.head = rt, string(method) == fasthttp.MethodHead
	if c.resp == nil {
		c.resp = fasthttp.AcquireResponse()
	}
	c.req.Header.SetMethodBytes(method)
	c.req.SetRequestURIBytes(uri)
	return c
}

// exchange sends the call's request to a healthy replica of s and reads
// the response headers, retrying as proxy says. On success it returns
// noFailure, and c.up holds the response with its body unread, for the
// caller to relay or read and then close; otherwise it returns why, and
// the replica it tried last (nil when none was healthy).
func (c *call) exchange(s *shard) (*replica, failure, error) {
	rep := s.pick(nil)
	if rep == nil {
		return nil, noReplica, nil
	}
	fail, err := c.attempt(s, rep, rep.server.client, true)
	if fail != noFailure && fail != failTimeout && !c.gone() {
		next, client := s.pick(rep), rep.server.client
		if next == nil && fail == failConnect && isTimeout(err) {
			// A lone replica too busy to accept at once (a full backlog
			// drops the SYN) gets a second chance; one that refused does not.
			// The second dial outlasts the kernel's resend of the SYN (1 s),
			// or a dropped one would time out again.
			next, client = rep, rep.server.patient
		} else if next != nil {
			client = next.server.client
		}
		if next != nil {
			c.rt.log.Debug("retrying", "shard", s.name, "replica", rep.name, "next", next.name, "reason", fail.String())
			rep = next
			fail, err = c.attempt(s, rep, client, false)
		}
	}
	return rep, fail, err
}

// writeFailure answers a request whose exchange with s failed, and counts
// it; a client that left gets nothing.
func (rt *Router) writeFailure(ctx *fasthttp.RequestCtx, s *shard, rep *replica, fail failure, err error, gone bool) {
	switch {
	case fail == noReplica:
		rt.log.Debug("no healthy replica", "shard", s.name, "path", string(ctx.Path()))
		s.answer(ctx, fasthttp.StatusServiceUnavailable, "no healthy replica of shard "+s.name)
	case gone:
		s.counts.inc(statusClientClosed)
	case fail == failTimeout:
		rt.log.Warn("replica timed out", "shard", s.name, "replica", rep.name, "path", string(ctx.Path()), "error", err)
		s.answer(ctx, fasthttp.StatusGatewayTimeout, "shard "+s.name+" did not answer in time")
	default:
		rt.log.Warn("replica failed", "shard", s.name, "replica", rep.name, "path", string(ctx.Path()), "error", err)
		s.answer(ctx, fasthttp.StatusBadGateway, "no replica of shard "+s.name+" answered")
	}
}

// answer counts a failure of s and answers it with a problem; a 503 says
// when to try again.
func (s *shard) answer(ctx *fasthttp.RequestCtx, status int, detail string) {
	s.counts.inc(status)
	if status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	writeProblem(ctx, status, detail)
}

func (c *call) gone() bool { return c.watch != nil && c.watch.clientGone() }

// release makes the call ready for reuse; a response handed to a stream
// is the stream's to release.
func (c *call) release() {
	c.req.Reset()
	c.rt, c.ctx, c.watch, c.up, c.lines = nil, nil, nil, upstream{}, 0
	calls.Put(c)
}

// attempt makes one request to rep through client and reads its response
// headers into c.up, unless it failed before an answer or, when first is
// set and another replica could answer, the replica answered 502 or 503;
// then it returns why, for a retry. A pooled connection that breaks
// before an answer (the replica closed it while it was idle) is tried
// once more on another.
func (c *call) attempt(s *shard, rep *replica, client *fasthttp.HostClient, first bool) (failure, error) {
	timeout := c.rt.opts.ResponseHeaderTimeout
	c.req.Header.SetHost(rep.host)
	for try := 0; ; try++ {
		start := time.Now()
		cc, err := client.AcquireConn(timeout, false)
		if err != nil {
			return c.failed(rep, err), err
		}
		nc := cc.Conn()
		if !c.attach(nc) {
			client.CloseConn(cc)
			return failBroken, errClientGone
		}
		// The request is small, on a connection with no other in flight:
		// its write fits in the socket's buffer, and only reads wait.
		nc.SetReadDeadline(start.Add(timeout))
		_, err = c.req.WriteTo(nc)
		br := client.AcquireReader(nc)
		if err == nil {
			c.resp.Reset()
			c.resp.SkipBody = c.head
			c.resp.Header.SetNoDefaultContentType(true)
			c.resp.StreamBody = true
			err = c.resp.ReadLimitBody(br, 0)
		}
		c.attach(nil)
		c.up = upstream{rt: c.rt, resp: c.resp, conn: nc, pool: client, br: br, cc: cc}
		up := &c.up
		if err != nil {
			up.close(false)
			if try == 0 && !isTimeout(err) && !c.gone() {
				continue
			}
			return c.failed(rep, err), err
		}
		s.latency.Observe(time.Since(start).Seconds())
		if rep.slowChecks.Load() != 0 { // read first: a store on every request would bounce the cache line
			rep.slowChecks.Store(0)
		}
		status := c.resp.StatusCode()
		if status == fasthttp.StatusBadGateway || status == fasthttp.StatusServiceUnavailable {
			rep.errs[failStatus].Inc()
			if first && s.pick(rep) != nil {
				up.close(up.drain())
				return failStatus, nil
			}
		}
		return noFailure, nil
	}
}

// errClientGone ends an attempt whose client left.
var errClientGone = errors.New("the client closed its connection")

func (c *call) attach(nc net.Conn) bool { return c.watch == nil || c.watch.attach(nc) }

// failed counts a failed attempt at rep, ejects rep when the failure shows
// it down, and returns why it failed.
func (c *call) failed(rep *replica, err error) failure {
	if c.gone() {
		return failBroken // the client left; not the replica's fault
	}
	f := classify(err)
	rep.errs[f].Inc()
	if ejects(f, err) {
		c.rt.setHealth(rep, false, err.Error())
	}
	return f
}

// ejects reports whether a failure shows the replica down: a refused or
// broken connection does; a timeout, connecting or waiting for headers,
// may be load, and is left to the health checks.
func ejects(f failure, err error) bool {
	return f == failBroken || f == failConnect && !isTimeout(err)
}

// classify tells a failed connection from a broken one and a timeout. The
// request has no body, so in the first two cases the replica sent no byte
// of a response and a retry elsewhere is safe.
func classify(err error) failure {
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "dial": // net.Dialer's errors
		return failConnect
	case isTimeout(err):
		return failTimeout
	}
	return failBroken
}

// relay passes the replica's status, headers and body through unchanged,
// but for the hop-by-hop headers, and Date and Server, which the router's
// server sets, as NGINX does. A short body is read whole and the
// connection to the replica freed; a long one streams through with
// constant memory, and if it breaks off midway, so does the client's
// connection, so a partial line is never taken for a whole one.
func (c *call) relay(status int) {
	up := &c.up
	dst := &c.ctx.Response.Header
	for k, v := range c.resp.Header.All() {
		if !skipHeader(string(k)) {
			dst.AddBytesKV(k, v)
		}
	}
	c.ctx.SetStatusCode(status)
	length := c.resp.Header.ContentLength()
	if c.head || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		if length >= 0 {
			dst.SetContentLength(length)
		}
		up.close(true)
		return
	}
	if length >= 0 && length <= maxBufferedBody {
		// Read straight into the client's response body, in its own
		// pooled buffer.
		b := c.ctx.Response.SwapBody(nil)
		b = slices.Grow(b[:0], length)[:length]
		_, err := io.ReadFull(up.resp.BodyStream(), b)
		c.ctx.Response.SwapBody(b)
		up.close(err == nil)
		if err != nil {
			c.rt.log.Warn("body broke off", "error", err)
			c.ctx.Response.ResetBody()
			c.ctx.SetBodyStream(brokenBody{err}, length) // fails, and closes the connection
			return
		}
		c.rt.metrics.rangeServed(c.lines)
		return
	}
	// The response now belongs to the stream, which releases it.
	st := *up
	st.client, st.lines = c.ctx.Conn(), c.lines
	c.resp = nil
	c.ctx.SetBodyStream(&st, length)
}

// skipHeader reports the headers the router does not relay: those of one
// connection (RFC 9110 section 7.6.1), those its server sets, and the
// length, which it sets from the body.
func skipHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Date", "Server", "Content-Length":
		return true
	}
	return false
}
