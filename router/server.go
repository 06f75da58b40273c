package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// The Server's timeouts of reading a request and of waiting for the next.
const (
	// headerTimeout is NGINX's client_header_timeout: on a
	// CPU-starved machine a client that sent its request at once can
	// still be read late, and a shorter bound cut such clients in bursts.
	// It bounds the wait for a new connection's first request and the
	// reading of every request from its first byte.
	headerTimeout = 10 * time.Second
	// idleTimeout bounds the wait for the next request on a kept-alive
	// connection.
	idleTimeout = 120 * time.Second
)

// maxHeaderBytes bounds a request's line and headers, as net/http's
// default MaxHeaderBytes with its slack does; a longer head is answered 431.
const maxHeaderBytes = 64<<10 + 4<<10

// Server serves a Router over HTTP/1.1 with fasthttp's server. Set its
// fields before Serve.
type Server struct {
	Router *Router
	// WriteTimeout bounds writing a response, but for a long body, whose
	// writes after the first each get bodyWriteTimeout. 0 leaves 30 s to
	// write a response after the shard's headers came within the
	// Router's response timeout.
	WriteTimeout time.Duration

	once  sync.Once
	srv   *fasthttp.Server
	mu    sync.Mutex
	ln    net.Listener
	conns map[*clientConn]struct{}
}

func (s *Server) init() {
	s.once.Do(func() {
		setDefault(&s.WriteTimeout, s.Router.opts.ResponseHeaderTimeout+30*time.Second)
		s.srv = &fasthttp.Server{
			Handler:                      s.Router.Handle,
			ReadTimeout:                  headerTimeout,
			IdleTimeout:                  idleTimeout,
			WriteTimeout:                 s.WriteTimeout,
			ReadBufferSize:               maxHeaderBytes,
			NoDefaultServerHeader:        true,
			NoDefaultContentType:         true,
			DisablePreParseMultipartForm: true,
			CloseOnShutdown:              true,
			Logger:                       fastLogger{s.Router.log},
		}
		s.conns = make(map[*clientConn]struct{})
	})
}

// Serve accepts connections on ln and serves them until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return s.srv.Serve(&listener{Listener: ln, s: s})
}

// Shutdown stops accepting connections, closes the idle ones, and waits
// for the requests in flight, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	return s.srv.ShutdownWithContext(ctx)
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Conn.Close()
	}
	if s.ln == nil {
		return nil
	}
	return s.ln.Close()
}

// listener hands the server each connection as a clientConn.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &clientConn{Conn: nc, s: l.s}
	l.s.mu.Lock()
	l.s.conns[c] = struct{}{}
	l.s.mu.Unlock()
	return c, nil
}

// clientConn is a client's connection. While its request waits for a
// shard, it can be watched: if the client closes or resets it, the
// connection to the shard is closed, which ends the request there too, as
// NGINX does. One request at a time uses the watch and its one timer, so
// that a request starts no goroutine and allocates nothing unless it
// waits watchDelay. The timer is not reset and stopped for every request,
// which costs more than most of the request's own work at the router: it
// is armed when none is pending, and when it fires for a request that came
// later, it is armed again for what is left of that one's delay.
type clientConn struct {
	net.Conn
	s *Server
	// ahead holds what a watch read of the next request, and err how its
	// read ended: the server reads them first. Only a watch writes them,
	// while the server waits for the handler, so the server reads them
	// without a lock.
	ahead []byte
	err   error

	timer *time.Timer
	mu    sync.Mutex
	state uint8     // watchOver, watchWaiting or watchReading
	armed bool      // the timer is pending, or its run has not yet begun
	start time.Time // when the request being watched began
	// reading is held while a watch reads, for stop to wait on.
	reading sync.WaitGroup
	gone    bool
	shard   net.Conn // the connection to close when the client leaves
	one     [1]byte  // a watch reads one byte: enough to see the end
}

const (
	watchOver = iota // the request is over: a read that times out was stopped
	watchWaiting
	watchReading
)

func (c *clientConn) Read(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

func (c *clientConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// watchDelay is how long a request waits for its shard before its client
// connection is watched. Nearly every answer comes well before, even
// under load, and costs no more than resetting the connection's timer; a
// request that waits longer gets a read on its client's connection, which
// ends when the client closes it. A client that leaves holds its shard
// connection for this long at most, not for the whole response timeout.
const watchDelay = time.Second

// watch starts watching c after watchDelay.
func (c *clientConn) watch() *clientConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state, c.gone, c.shard = watchWaiting, false, nil
	c.start = time.Now()
	if !c.armed {
		c.armed = true
		if c.timer == nil {
			c.timer = time.AfterFunc(watchDelay, c.run)
		} else {
			c.timer.Reset(watchDelay)
		}
	}
	return c
}

// run reads from the client's connection until the client sends or
// leaves, or stop ends the read. A run that fires for an earlier request
// finds the state over and returns, or the request of the moment younger
// than watchDelay, and waits for the rest of it.
func (c *clientConn) run() {
	c.mu.Lock()
	c.armed = false
	if c.state != watchWaiting {
		c.mu.Unlock()
		return
	}
	if left := watchDelay - time.Since(c.start); left > 0 {
		c.armed = true
		c.timer.Reset(left)
		c.mu.Unlock()
		return
	}
	// The request's own deadline has no say now. Set under the lock, so
	// that stop's deadline, which ends the read, comes after it.
	c.Conn.SetReadDeadline(time.Time{})
	c.state = watchReading
	c.reading.Add(1)
	defer c.reading.Done()
	c.mu.Unlock()

	n, err := c.Conn.Read(c.one[:])

	c.mu.Lock()
	defer c.mu.Unlock()
	c.ahead = append(c.ahead, c.one[:n]...)
	var ne net.Error
	if err != nil && !(c.state == watchOver && errors.As(err, &ne) && ne.Timeout()) {
		c.err = err
		c.gone = true
		if c.shard != nil {
			c.shard.Close()
		}
	}
	c.state = watchOver
}

// attach names the connection to the shard to close if the client leaves,
// or none; it reports false if the client left already.
func (c *clientConn) attach(shard net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shard = shard
	return !c.gone
}

func (c *clientConn) clientGone() bool { return !c.attach(nil) }

// stop ends the watch, and returns once its read has ended. A pending
// timer is left to fire and find the watch over, or a later request.
func (c *clientConn) stop() {
	c.mu.Lock()
	if c.state == watchReading {
		c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	c.state = watchOver
	c.mu.Unlock()
	c.reading.Wait()
}

// refuse answers the requests that fasthttp's parser lets through and
// net/http and NGINX refuse, with their status: a version other than
// HTTP/1.0 and 1.1 (505); HTTP/1.1 without Host, and a body framed both by
// Content-Length and Transfer-Encoding (400, RFC 9112 section 6.1: a
// server must close the connection after it).
func refuse(ctx *fasthttp.RequestCtx) (int, bool) {
	h := &ctx.Request.Header
	switch string(h.Protocol()) {
	case "HTTP/1.1":
		if len(h.Host()) == 0 {
			return fasthttp.StatusBadRequest, false
		}
	case "HTTP/1.0":
	default:
		return fasthttp.StatusHTTPVersionNotSupported, false
	}
	// fasthttp reads such a body as chunked, forgets both headers, and
	// marks the connection to close: only then is the raw header worth
	// reading again.
	if h.ConnectionClose() && h.IsHTTP11() && framedTwice(h.RawHeaders()) {
		return fasthttp.StatusBadRequest, false
	}
	return 0, true
}

// framedTwice reports whether raw header fields have both Content-Length
// and Transfer-Encoding.
func framedTwice(raw []byte) bool {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.Clone(raw), "\r\n\r\n"...))))
	h, _ := r.ReadMIMEHeader()
	return len(h["Content-Length"]) > 0 && len(h["Transfer-Encoding"]) > 0
}

// fastLogger passes fasthttp's messages (mostly clients that sent
// nonsense or went away) to the log at debug level.
type fastLogger struct{ log *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "message", fmt.Sprintf(format, args...))
}
