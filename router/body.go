package router

import (
	"io"
	"log/slog"
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
	resp    *fasthttp.Response
	conn    net.Conn // to the replica
	timeout time.Duration
	// done gives the connection back to its pool (reuse) or closes it.
	done func(reuse bool)

	// Set when the body is streamed.
	client       net.Conn // to the client
	writeTimeout time.Duration
	log          *slog.Logger
	reads        int
	eof          bool
	closed       bool
}

func (u *upstream) Read(p []byte) (int, error) {
	if u.reads > 0 {
		u.client.SetWriteDeadline(time.Now().Add(u.writeTimeout))
	}
	u.reads++
	u.conn.SetReadDeadline(time.Now().Add(u.timeout))
	n, err := u.resp.BodyStream().Read(p)
	if err == io.EOF {
		u.eof = true
	} else if err != nil && u.log != nil {
		u.log.Warn("body broke off", "error", err)
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
	u.done(whole && !u.resp.ConnectionClose())
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
