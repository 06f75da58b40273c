package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves a Router on a listener. The common request, a plain GET or
// HEAD of /lines/{n} (see parseHead), is read and answered by a small
// HTTP/1.1 loop of its own, one goroutine per connection, without
// net/http's background read goroutine, context, parsed URL and header
// maps per request: 1 allocation a request instead of 23, and with the raw
// socket calls (rawio_linux.go) about 45 µs of CPU a request under load
// instead of 75 (lines bench, 2 CPUs). Every other
// request, from its first byte on, is for net/http: the connection is
// handed over to HTTP, with the bytes read so far, and HTTP owns it from
// then on. So /metrics, /readyz, a query string, HTTP/1.0, a body, a
// malformed request and every other edge case get net/http's behaviour,
// and only the plain request is answered here.
//
// The fast path keeps HTTP's timeouts: a new connection must send its
// first request head within ReadHeaderTimeout, a head that has started
// must end within ReadHeaderTimeout (ReadTimeout if zero, for both), a
// connection waiting for its next request is closed after IdleTimeout
// (ReadTimeout if zero), and writing a response must end within
// WriteTimeout of its request, each 32 KiB of a long body after the first
// within the Router's BodyWriteTimeout. (The idle and write deadlines are
// not set again for a request that comes within an eighth of the timeout,
// at most a second, of the last time they were: they may come that much
// early.)
// A head longer than the connection's read buffer (4 KiB) or than
// MaxHeaderBytes is handed over, and net/http applies MaxHeaderBytes to it.
// Connection: close is honoured.
//
// One difference with net/http: it notices a client that closes its
// connection while the router waits for the shard (its request's context
// ends), and counts the request as 499; the fast path notices only when
// writing the response fails, so such a request is counted with the
// shard's status, or as 499 only if the failed write comes first.
type Server struct {
	// Router answers the plain requests.
	Router *Router
	// HTTP serves the connections that are handed over; its Handler
	// should be Router. Its timeouts apply to the fast path too.
	HTTP *http.Server

	mu       sync.Mutex
	ln       net.Listener
	handoff  *handoffListener
	conns    map[*fastConn]struct{}
	shutdown atomic.Bool
	// handovers counts the connections handed over, for tests.
	handovers atomic.Int64
}

// readBufSize is the size of a connection's read buffer, and so the
// longest head the fast path answers.
const readBufSize = 4 << 10

// Serve accepts connections on ln and serves them until Shutdown or Close,
// and then returns http.ErrServerClosed; it returns another error when
// ln fails.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.handoff = newHandoffListener(ln.Addr())
	s.conns = make(map[*fastConn]struct{})
	s.mu.Unlock()
	go s.HTTP.Serve(s.handoff) // returns when Shutdown or Close closes s.handoff

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			// As net/http does: wait and try again when out of file
			// descriptors or after a connection aborted before accept.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.Router.log.Warn("accept failed; retrying", "error", err, "in", delay.String())
				time.Sleep(delay)
				continue
			}
			s.handoff.Close()
			return err
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// Shutdown stops accepting connections, closes those waiting for a
// request, lets the requests in flight finish (their connections close
// after them), and shuts HTTP down the same way, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.HTTP.Shutdown(ctx) }()
	wait := time.Millisecond
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	return <-httpDone
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.mu.Lock()
	ln := s.ln
	var conns []*fastConn
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.nc.Close()
	}
	return s.HTTP.Close()
}

// closeIdle closes the connections that wait for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

// Connection states, for Shutdown.
const (
	connIdle   int32 = iota // waiting for the first byte of a request
	connActive              // reading a request head or answering it
	connClosed              // closed by Shutdown
)

// fastConn is a client connection served by the fast path.
type fastConn struct {
	s     *Server
	nc    net.Conn
	bw    *bufio.Writer
	w     *fastResponse
	req   *http.Request
	state atomic.Int32

	// buf holds what was read of the requests; buf[r:n] is not consumed.
	buf  *[readBufSize]byte
	r, n int
	// fd is the socket to read from in step, or -1 to read nc.
	fd int
	// drained is set when the last read found the socket empty: the next
	// one waits for it to become readable first. waited is set while
	// step waits.
	drained, waited bool
	// first is set until the first request was answered.
	first bool
	// headDeadline is the end of the header timeout of the request being
	// read; zero until it starts, or when there is none.
	headDeadline time.Time
	// handOver is set when step ends with a request for net/http.
	handOver bool
	head     reqHead
	limit    int
	// The deadlines last set on nc.
	readDeadline, writeDeadline time.Time
}

var (
	bufPool    = sync.Pool{New: func() any { return new([readBufSize]byte) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// errWouldBlock is rawRead's report of a socket with nothing to read.
var errWouldBlock = errors.New("the socket has nothing to read")

// plainLoop is readLoop with plain, blocking reads: step never waits.
func plainLoop(step func(fd int) bool) error {
	for !step(-1) {
	}
	return nil
}

// newConn registers a new connection, or returns nil when the server is
// shutting down.
func (s *Server) newConn(nc net.Conn) *fastConn {
	c := &fastConn{s: s, nc: nc}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return nil
	}
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) forget(c *fastConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serve reads requests and answers the plain ones until the connection
// ends or a request is not plain; then it hands the connection over.
func (c *fastConn) serve() {
	s := c.s
	raw := newRawConn(c.nc)
	c.buf = bufPool.Get().(*[readBufSize]byte)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(raw)
	ctx, cancel := context.WithCancel(context.Background())
	// The client is gone when a write to it fails: the request's context
	// ends, as net/http's does, and the proxy counts it as 499.
	c.w = newFastResponse(c.bw, cancel)
	c.w.draining = &s.shutdown
	c.w.extendWrite = func(t time.Time) {
		if t.After(c.writeDeadline) {
			c.writeDeadline = t
			c.nc.SetWriteDeadline(t)
		}
	}
	c.req = (&http.Request{
		Method: http.MethodGet, URL: &url.URL{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 2),
	}).WithContext(ctx)
	c.first = true
	c.limit = readBufSize
	if m := s.HTTP.MaxHeaderBytes; m > 0 && m < readBufSize {
		c.limit = m
	}
	if d := s.headerTimeout(); d > 0 {
		c.headDeadline = time.Now().Add(d)
		c.setReadDeadline(c.headDeadline)
	}

	err := readLoop(c.nc, c.step)
	if c.r < c.n && (err != nil || c.handOver) {
		// A request that is not plain, or one that a read error or a
		// timeout cut short: net/http answers it (or not) as it would
		// have without the fast path, and owns the connection from now.
		c.handOver = true
		if c.bw.Buffered() > 0 {
			c.w.flush()
		}
		if c.w.err == nil {
			// The buffer goes with the connection; the count comes first,
			// before net/http can answer.
			pending := c.buf[c.r:c.n]
			s.handovers.Add(1)
			c.handOver = s.handoff.hand(&handoffConn{Conn: c.nc, pending: pending, headDeadline: c.headDeadline})
			if !c.handOver {
				s.handovers.Add(-1)
			}
		} else {
			c.handOver = false
		}
	}
	cancel()
	if !c.handOver {
		c.bw.Flush()
		c.nc.Close()
		bufPool.Put(c.buf)
	}
	c.buf = nil
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	s.forget(c)
}

// step reads and answers requests as far as it can without waiting. It
// returns false to wait until the socket is readable, true when the
// connection is done, with c.handOver set if net/http is to take it.
func (c *fastConn) step(fd int) bool {
	s := c.s
	c.fd = fd
	if c.waited {
		c.waited, c.drained = false, false
	}
	for {
		switch parseHead(c.buf[c.r:c.n], &c.head) {
		case headPlain:
			if !c.serveRequest(&c.head) {
				return true
			}
			c.first = false
			c.headDeadline = time.Time{}
			if c.r == c.n {
				c.r, c.n = 0, 0
			}
			continue
		case headOther:
			c.handOver = true
			return true
		}
		// The head is not all here.
		if c.n-c.r >= c.limit {
			c.handOver = true // too long for the fast path
			return true
		}
		if c.drained {
			// Wait for more. Answers to earlier pipelined requests go
			// out first.
			if c.bw.Buffered() > 0 {
				if c.w.flush(); c.w.err != nil {
					return true
				}
			}
			if c.r == c.n {
				if !c.first {
					c.renewReadDeadline(s.idleTimeout())
				}
				c.state.Store(connIdle)
				if s.shutdown.Load() {
					return true
				}
			} else if c.headDeadline.IsZero() {
				if d := s.headerTimeout(); d > 0 {
					c.headDeadline = time.Now().Add(d)
					c.setReadDeadline(c.headDeadline)
				}
			}
			c.waited = true
			return false
		}
		if c.r == c.n && c.bw.Buffered() > 0 {
			// The answer goes out before the read that looks for the next
			// request, so that read costs the client no time.
			if c.w.flush(); c.w.err != nil {
				return true
			}
		}
		if c.r > 0 && c.n == len(c.buf) {
			c.n = copy(c.buf[:], c.buf[c.r:c.n])
			c.r = 0
		}
		space := c.buf[c.n:]
		var n int
		var err error
		if c.fd >= 0 {
			n, err = rawRead(c.fd, space)
		} else {
			n, err = c.nc.Read(space)
		}
		if err == errWouldBlock {
			c.drained = true
			continue
		}
		if n > 0 && c.r == c.n {
			// The first bytes of a request.
			if !c.state.CompareAndSwap(connIdle, connActive) && c.state.Load() == connClosed {
				return true // Shutdown closed it
			}
			c.state.Store(connActive)
			if !c.first {
				c.headDeadline = time.Time{} // set when the head does not come at once
			}
		}
		c.n += n
		if err != nil {
			return true
		}
		// A short read says the socket is empty, and saves the read that
		// would return EAGAIN, but for the read that brings a connection's
		// first request: a FIN that came with it (a client that half-closes
		// once it has sent its request) raises no new edge for the poller,
		// and the connection would wait for the idle timeout. That one read
		// more per connection, not per request, sees it.
		c.drained = n < len(space) && !c.first
	}
}

// serveRequest answers the plain request whose head h describes, and
// reports whether the connection may carry another.
func (c *fastConn) serveRequest(h *reqHead) (reuse bool) {
	s := c.s
	buf := c.buf[c.r:c.n]
	if d := s.HTTP.WriteTimeout; d > 0 {
		c.renewWriteDeadline(d)
	}
	if c.bw.Buffered() > 0 {
		// Answers to earlier pipelined requests go out before this one
		// waits for its shard. Only pipelined requests pay this write.
		if c.w.flush(); c.w.err != nil {
			return false
		}
	}
	r := c.req
	r.Method = http.MethodGet
	if h.head {
		r.Method = http.MethodHead
	}
	clear(r.Header)
	if h.nAccept > 0 {
		r.Header["Accept"] = values(buf, h.accept[:h.nAccept])
	}
	if h.nINM > 0 {
		r.Header["If-None-Match"] = values(buf, h.inm[:h.nINM])
	}
	raw := string(h.line.of(buf))
	c.r += h.size
	c.w.begin(h.head, h.close)

	defer func() {
		if p := recover(); p != nil {
			// As net/http: a handler that panics ends its connection; a
			// panic other than ErrAbortHandler is logged with its stack.
			if p != http.ErrAbortHandler {
				stack := make([]byte, 64<<10)
				stack = stack[:runtime.Stack(stack, false)]
				s.Router.log.Error("panic serving a request", "panic", fmt.Sprint(p), "stack", string(stack))
			}
			reuse = false
		}
	}()
	s.Router.serveLine(c.w, r, raw)
	return c.w.finish() && !s.shutdown.Load()
}

// values are the header values at the spans of buf, in a new slice: the
// request's header may outlive the request in a Transport's write.
func values(buf []byte, spans []span) []string {
	vv := make([]string, len(spans))
	for i, sp := range spans {
		vv[i] = commonValue(sp.of(buf))
	}
	return vv
}

// commonValue is string(b), without allocating for values that clients
// often send.
func commonValue(b []byte) string {
	switch string(b) {
	case "*/*":
		return "*/*"
	case "application/json":
		return "application/json"
	case "text/plain":
		return "text/plain"
	}
	return string(b)
}

// headerTimeout bounds the reading of a request head, as net/http's
// ReadHeaderTimeout, or its ReadTimeout if that is zero.
func (s *Server) headerTimeout() time.Duration {
	if s.HTTP.ReadHeaderTimeout > 0 {
		return s.HTTP.ReadHeaderTimeout
	}
	return s.HTTP.ReadTimeout
}

// idleTimeout bounds the wait for the next request, as net/http's
// IdleTimeout, or its ReadTimeout if that is zero.
func (s *Server) idleTimeout() time.Duration {
	if s.HTTP.IdleTimeout > 0 {
		return s.HTTP.IdleTimeout
	}
	return s.HTTP.ReadTimeout
}

func (c *fastConn) setReadDeadline(t time.Time) {
	c.readDeadline = t
	c.nc.SetReadDeadline(t)
}

// renewReadDeadline sets the read deadline d from now, unless the one set
// is at most slack(d) earlier than that, or d is 0.
func (c *fastConn) renewReadDeadline(d time.Duration) {
	if d <= 0 {
		if !c.readDeadline.IsZero() {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	if t := time.Now().Add(d); c.readDeadline.Before(t.Add(-slack(d))) {
		c.setReadDeadline(t)
	}
}

// renewWriteDeadline is renewReadDeadline for writes.
func (c *fastConn) renewWriteDeadline(d time.Duration) {
	if t := time.Now().Add(d); c.writeDeadline.Before(t.Add(-slack(d))) {
		c.writeDeadline = t
		c.nc.SetWriteDeadline(t)
	}
}

// slack is how much earlier than asked a deadline of d may come, so that
// it need not be set again for every request.
func slack(d time.Duration) time.Duration { return min(d/8, time.Second) }

// handoffListener is the listener net/http serves: it accepts the
// connections that the fast path hands over.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// hand gives c to net/http, or reports false when the listener is closed.
func (l *handoffListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// handoffConn is a connection handed over to net/http: its reads return
// the bytes the fast path read ahead first.
type handoffConn struct {
	net.Conn
	pending []byte
	// headDeadline, when set, is the end of the header timeout of the
	// request that the fast path started reading: net/http's first
	// deadline does not extend it.
	headDeadline time.Time
}

func (c *handoffConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *handoffConn) SetReadDeadline(t time.Time) error {
	if !c.headDeadline.IsZero() {
		if t.IsZero() || t.After(c.headDeadline) {
			t = c.headDeadline
		}
		c.headDeadline = time.Time{}
	}
	return c.Conn.SetReadDeadline(t)
}

// CloseWrite lets net/http half-close the connection, as it does a
// *net.TCPConn.
func (c *handoffConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
