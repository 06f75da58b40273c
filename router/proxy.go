package router

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/lineserver/lineserver/internal/problem"
)

// noFailure marks a request that got a usable response.
const noFailure = numFailures

// statusClientClosed counts requests whose client left before the answer,
// as NGINX does.
const statusClientClosed = 499

// proxy sends the request for line n to a healthy replica of s, retries
// once on another replica when the first could not answer (on the same
// one if it is alone and only slow to connect), and relays the response.
//
// It is a small hand-written proxy rather than httputil.ReverseProxy: the
// request it makes is fixed (method, path, Accept, If-None-Match), so it
// needs none of the cloning and header scrubbing of a general proxy, and
// for plain-http replicas it speaks HTTP/1.1 itself (see connPool).
func (rt *Router) proxy(w http.ResponseWriter, r *http.Request, s *shard, n int64) {
	var buf [32]byte
	path := string(strconv.AppendInt(append(buf[:0], "/lines/"...), n, 10))

	rep := s.pick(nil)
	if rep == nil {
		s.counts.inc(http.StatusServiceUnavailable)
		w.Header().Set("Retry-After", "1")
		problem.WriteError(w, problem.ErrUnavailable)
		rt.log.Debug("no healthy replica", "shard", s.name, "line", n)
		return
	}
	relayed, fail, err := rt.forward(w, r, s, rep, path, true)
	if !relayed && fail != failTimeout && r.Context().Err() == nil {
		next := s.pick(rep)
		if next == nil && fail == failConnect && isTimeout(err) {
			// A lone replica too busy to accept at once (a full backlog
			// drops the SYN) gets a second chance; one that refused does not.
			// The second dial outlasts the kernel's resend of the SYN (1 s),
			// or a dropped one would time out again.
			next = rep
			r = r.WithContext(withPatientDial(r.Context()))
		}
		if next != nil {
			rt.log.Debug("retrying", "shard", s.name, "replica", rep.name, "next", next.name, "reason", fail.String())
			rep = next
			relayed, fail, err = rt.forward(w, r, s, rep, path, false)
		}
	}
	switch {
	case relayed:
	case r.Context().Err() != nil:
		s.counts.inc(statusClientClosed)
	case fail == failTimeout:
		s.counts.inc(http.StatusGatewayTimeout)
		rt.log.Warn("replica timed out", "shard", s.name, "replica", rep.name, "line", n, "error", err)
		problem.WriteError(w, fmt.Errorf("shard %s: %w", s.name, problem.ErrGatewayTimeout))
	default:
		s.counts.inc(http.StatusBadGateway)
		rt.log.Warn("replica failed", "shard", s.name, "replica", rep.name, "line", n, "error", err)
		problem.WriteError(w, fmt.Errorf("shard %s: %w", s.name, problem.ErrBadGateway))
	}
	if rt.log.Enabled(r.Context(), slog.LevelDebug) {
		rt.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("method", r.Method),
			slog.Int64("line", n), slog.String("shard", s.name), slog.String("replica", rep.name))
	}
}

// forward makes one attempt at rep and relays its response, unless the
// attempt failed before a response or, when first is set and another
// replica could answer, the replica answered 502 or 503; then it returns
// why, for a retry. A failure that shows the replica down ejects it until
// a health check passes.
func (rt *Router) forward(w http.ResponseWriter, r *http.Request, s *shard, rep *replica, path string, first bool) (relayed bool, fail failure, err error) {
	if rep.pool != nil {
		return rt.forwardRaw(w, r, s, rep, path, first)
	}
	header := make(http.Header, 2)
	if v := r.Header["Accept"]; len(v) > 0 {
		header["Accept"] = v
	}
	if v := r.Header["If-None-Match"]; len(v) > 0 {
		header["If-None-Match"] = v
	}
	resp, fail, err := rt.send(r, s, rep, path, header)
	if resp == nil {
		return false, fail, err
	}
	if fail == failStatus && first && s.pick(rep) != nil {
		discard(resp)
		return false, fail, nil
	}
	rt.relay(w, r, s, resp)
	return true, noFailure, nil
}

// forwardRaw is forward over rep's own connection pool. A pooled
// connection that fails before the first byte of a response (the replica
// closed it while it was idle) is retried at once on a new one.
func (rt *Router) forwardRaw(w http.ResponseWriter, r *http.Request, s *shard, rep *replica, path string, first bool) (bool, failure, error) {
	p := rep.pool
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(r.Context(), attempt > 0)
		if err != nil {
			return false, rt.failed(rep, r, failConnect, err), err
		}
		start := time.Now()
		c.SetDeadline(start.Add(p.timeout))
		c.req = appendRequest(c.req[:0], r.Method, path, p.host, r.Header["Accept"], r.Header["If-None-Match"])
		var h head
		err = c.send(c.req)
		if err == nil {
			err = readFinalStatus(c.br, &h)
		}
		if err != nil {
			c.Close()
			if reused && attempt == 0 && !isTimeout(err) && r.Context().Err() == nil {
				continue
			}
			return false, rt.failed(rep, r, classify(err), err), err
		}
		s.latency.Observe(time.Since(start).Seconds())
		if rep.slowChecks.Load() != 0 {
			rep.slowChecks.Store(0)
		}

		if (h.status == http.StatusBadGateway || h.status == http.StatusServiceUnavailable) && first && s.pick(rep) != nil {
			rep.errs[failStatus].Inc()
			if err := readHeaders(c.br, &h, nil); err != nil || h.bodyless(r.Method) {
				p.release(c, err == nil && !h.close)
			} else {
				ok, _ := p.copyBodyFrom(io.Discard, c, &h)
				p.release(c, ok)
			}
			return false, failStatus, nil
		}
		dst, isSink := w.(headerSink)
		if !isSink {
			dst = mapSink(w.Header())
		}
		if err := readHeaders(c.br, &h, dst); err != nil {
			c.Close()
			dst.reset()
			return false, rt.failed(rep, r, classify(err), err), err
		}
		if h.status == http.StatusBadGateway || h.status == http.StatusServiceUnavailable {
			rep.errs[failStatus].Inc()
		}
		w.WriteHeader(h.status)
		s.counts.inc(h.status)
		if h.bodyless(r.Method) {
			p.release(c, !h.close)
			return true, noFailure, nil
		}
		ok, err := p.copyBodyFrom(w, c, &h)
		if err != nil {
			c.Close()
			if r.Context().Err() == nil {
				rt.log.Warn("body broke off", "shard", s.name, "replica", rep.name, "error", err)
			}
			panic(http.ErrAbortHandler)
		}
		p.release(c, ok)
		return true, noFailure, nil
	}
}

// failed counts a failed attempt at rep, ejects rep when the failure shows
// it down, and returns f.
func (rt *Router) failed(rep *replica, r *http.Request, f failure, err error) failure {
	if r.Context().Err() != nil {
		return failBroken // the client left; not the replica's fault
	}
	rep.errs[f].Inc()
	if ejects(f, err) {
		rt.setHealth(rep, false, err.Error())
	}
	return f
}

// send makes one request to rep. A failure that is the replica's fault
// (no connection, a broken one) ejects it until a health check passes;
// a 502 or 503 it answers comes back with failStatus for a retry.
func (rt *Router) send(r *http.Request, s *shard, rep *replica, path string, h http.Header) (*http.Response, failure, error) {
	out := rep.tmpl.WithContext(r.Context())
	out.Method = r.Method
	out.URL = &url.URL{Scheme: rep.scheme, Host: rep.host, Path: path}
	out.Header = h
	start := time.Now()
	resp, err := rt.transport.RoundTrip(out)
	if err != nil {
		return nil, rt.failed(rep, r, classify(err), err), err
	}
	s.latency.Observe(time.Since(start).Seconds())
	if rep.slowChecks.Load() != 0 { // read first: a store on every request would bounce the cache line
		rep.slowChecks.Store(0)
	}
	if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable {
		rep.errs[failStatus].Inc()
		return resp, failStatus, nil
	}
	return resp, noFailure, nil
}

// classify tells a failed connection from a broken one and a timeout. The
// request has no body, so in the first two cases the replica sent no byte
// of a response and a retry elsewhere is safe.
func classify(err error) failure {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return failConnect
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	return failBroken
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ejects reports whether a failure shows the replica down: a refused or
// broken connection does; a timeout, connecting or waiting for headers,
// may be load, and is left to the health checks.
func ejects(f failure, err error) bool {
	return f == failBroken || f == failConnect && !isTimeout(err)
}

// relay passes the replica's status, headers and body through unchanged,
// but for the hop-by-hop headers, and Date and Server, which the router's
// server sets, as NGINX does. A body that breaks off midway aborts the
// client's connection, so a partial line is never taken for a whole one.
func (rt *Router) relay(w http.ResponseWriter, r *http.Request, s *shard, resp *http.Response) {
	defer resp.Body.Close()
	dst := w.Header()
	for k, vv := range resp.Header {
		if !hopByHop(k) && k != "Date" && k != "Server" {
			dst[k] = vv
		}
	}
	w.WriteHeader(resp.StatusCode)
	s.counts.inc(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if err := copyBody(w, resp.Body, rt.opts.BodyWriteTimeout); err != nil {
		if r.Context().Err() == nil {
			rt.log.Warn("body broke off", "shard", s.name, "error", err)
		}
		panic(http.ErrAbortHandler)
	}
}

// copyBufs holds the buffers that bodies are streamed through.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// writeDeadliner is a response writer whose write deadline can be moved:
// net/http's (as http.ResponseController finds it) and the fast path's.
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// keepWriting gives the next write to w, of a long body, d from now; 0
// leaves the deadline alone.
func keepWriting(w io.Writer, d time.Duration) {
	if wd, ok := w.(writeDeadliner); ok && d > 0 {
		wd.SetWriteDeadline(time.Now().Add(d))
	}
}

// copyBody streams body to w through a pooled buffer. It does not use
// io.Copy, whose path through the server's ReadFrom and the TCP
// connection's generic ReadFrom allocates a fresh 32 KiB buffer for every
// line longer than 512 bytes. Every write after the first gets timeout
// (Options.BodyWriteTimeout) from its start, so the server's WriteTimeout,
// counted from the request, does not cut a long line short.
func copyBody(w io.Writer, body io.Reader, timeout time.Duration) error {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	for first := true; ; first = false {
		n, err := body.Read(buf[:])
		if n > 0 {
			if !first {
				keepWriting(w, timeout)
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// discard drops a response that is not relayed, keeping its connection
// for reuse when the body is small.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// hopByHop reports the headers that belong to one connection (RFC 9110
// section 7.6.1), in canonical form.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
