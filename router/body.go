package router

import (
	"bufio"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream is a replica's response on its connection. For a long body it
// is the stream the server relays to the client: each read from the
// replica gets the response timeout, each write to the client after the
// first gets the body write timeout, so that a line of gigabytes goes
// through however long it takes in all, and a stalled side is let go.
type upstream struct {
	rt   *Router
	resp *fasthttp.Response
	conn net.Conn // to the replica
	// The connection's pool, reader, and the pool's own handle of it.
	pool *fasthttp.HostClient
	br   *bufio.Reader
	cc   any

	// Set when the body is streamed.
	client net.Conn // to the client
	// lines is the number of lines of a range, counted in metrics once
	// its body was read whole; 0 for a line.
	lines  int64
	reads  int
	eof    bool
	closed bool
}

func (u *upstream) Read(p []byte) (int, error) {
	if u.reads > 0 {
		u.client.SetWriteDeadline(time.Now().Add(bodyWriteTimeout))
	}
	u.reads++
	u.conn.SetReadDeadline(time.Now().Add(u.rt.opts.ResponseHeaderTimeout))
	n, err := u.resp.BodyStream().Read(p)
	if err == io.EOF {
		if !u.eof {
			u.rt.metrics.rangeServed(u.lines)
		}
		u.eof = true
	} else if err != nil {
		u.rt.log.Warn("body broke off", "error", err)
	}
	return n, err
}

// Close ends a streamed body: the server calls it when it has written the
// body or given up on the client.
func (u *upstream) Close() error {
	u.close(u.eof)
	fasthttp.ReleaseResponse(u.resp)
	return nil
}

// close releases the connection, for reuse when the whole response was
// read and the replica keeps the connection open.
func (u *upstream) close(whole bool) {
	if u.closed {
		return
	}
	u.closed = true
	u.resp.CloseBodyStream()
	u.pool.ReleaseReader(u.br)
	connDone(u.pool, u.cc, whole && !u.resp.ConnectionClose())
}

// connDone gives a connection back to its pool (reuse) or closes it. The
// pool's handle of a connection has a type of fasthttp's own, which only a
// type parameter can name; connDone holds it as any, which allocates
// nothing for a pointer.
var connDone = connFuncs((*fasthttp.HostClient).ReleaseConn, (*fasthttp.HostClient).CloseConn)

func connFuncs[C any](release, close func(*fasthttp.HostClient, C)) func(*fasthttp.HostClient, any, bool) {
	return func(h *fasthttp.HostClient, cc any, reuse bool) {
		if reuse {
			release(h, cc.(C))
		} else {
			close(h, cc.(C))
		}
	}
}

// drain reads what is left of a small body that is not relayed, and
// reports whether it was read whole.
func (u *upstream) drain() bool {
	if u.resp.BodyStream() == nil {
		return true
	}
	n, err := io.Copy(io.Discard, io.LimitReader(u.resp.BodyStream(), maxBufferedBody+1))
	return err == nil && n <= maxBufferedBody
}

// brokenBody is a body whose replica broke off: the server fails to write
// it and closes the client's connection.
type brokenBody struct{ err error }

func (b brokenBody) Read([]byte) (int, error) { return 0, b.err }
