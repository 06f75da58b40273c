package router

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// errMalformed reports a response that is not HTTP/1.x as the router reads
// it; it counts as a broken connection.
var errMalformed = errors.New("malformed response from the replica")

// connPool is a lean HTTP/1.1 client for one plain-http replica: the
// handler's goroutine writes the request and reads the response on a
// pooled keep-alive connection itself, where http.Transport hands both to
// two goroutines of the connection and back. Requests are GET or HEAD with
// no body, so a reused connection that fails before any byte of a response
// is safely retried on a fresh one.
type connPool struct {
	addr     string // host:port to dial
	host     string // Host header
	dialer   net.Dialer
	timeout  time.Duration // response headers, and each read of a body
	maxIdle  int
	idleTime time.Duration
	// maxDialing bounds the connections being opened at once.
	maxDialing int

	// bodyWrite is Options.BodyWriteTimeout.
	bodyWrite time.Duration

	mu      sync.Mutex
	idle    []*upConn // a stack: the most recently used on top
	dialing int
	waiters []chan *upConn // requests waiting for a returned connection, oldest first
}

// patientDialTimeout bounds the second dial to a lone replica whose first
// dial timed out: above Linux's 1 s resend of a dropped SYN, as NGINX's
// proxy_connect_timeout is in the generated config.
const patientDialTimeout = 1500 * time.Millisecond

type patientKey struct{}

// withPatientDial marks ctx for a dial of patientDialTimeout at least.
func withPatientDial(ctx context.Context) context.Context {
	return context.WithValue(ctx, patientKey{}, true)
}

func patientDial(ctx context.Context) bool {
	v, _ := ctx.Value(patientKey{}).(bool)
	return v
}

// dialerFor returns d, or for a ctx marked withPatientDial a copy of d
// that waits patientDialTimeout at least.
func dialerFor(ctx context.Context, d *net.Dialer) *net.Dialer {
	if patientDial(ctx) && d.Timeout < patientDialTimeout {
		patient := *d
		patient.Timeout = patientDialTimeout
		return &patient
	}
	return d
}

// maxDialing is connPool.maxDialing.
const maxDialing = 32

// upConn is a connection to a replica with its reader and request buffer.
type upConn struct {
	net.Conn
	br       *bufio.Reader
	req      []byte
	lastUsed time.Time
}

// send writes a request. A connection with raw system calls then waits
// for the response without first trying a read that would find nothing
// (see rawConn.writeAwait).
func (c *upConn) send(req []byte) error {
	if rc, ok := c.Conn.(awaiter); ok && c.br.Buffered() == 0 {
		return rc.writeAwait(req)
	}
	_, err := c.Write(req)
	return err
}

// awaiter is a connection that can write and wait for the answer.
type awaiter interface{ writeAwait(p []byte) error }

// idleTimeout closes pooled connections unused for longer, before the
// replica's own idle timeout might.
const idleTimeout = 60 * time.Second

func newConnPool(u *url.URL, connect, timeout time.Duration, maxIdle int) *connPool {
	return &connPool{
		addr: net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), "80")), host: u.Host,
		timeout: timeout, maxIdle: maxIdle, idleTime: idleTimeout, maxDialing: maxDialing,
		dialer: net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second},
	}
}

// get returns a pooled connection, or a new one when fresh is set or the
// pool is empty, and whether it was pooled. At most maxDialing connections
// are opened at once: beyond that a request waits for a connection that
// another request returns, or for a dial to end and hand its turn on, up
// to the response timeout. A burst of new clients would otherwise open as
// many connections at once, overflow the replica's accept queue, and have
// its dropped attempts time out.
func (p *connPool) get(ctx context.Context, fresh bool) (*upConn, bool, error) {
	if !fresh {
		if c := p.takeIdle(); c != nil {
			return c, true, nil
		}
		p.mu.Lock()
		if p.dialing >= p.maxDialing {
			ch := make(chan *upConn, 1)
			p.waiters = append(p.waiters, ch)
			p.mu.Unlock()
			c, err := p.wait(ctx, ch)
			if err != nil {
				return nil, false, err
			}
			if c != nil {
				return c, true, nil
			}
			// A dial's turn was handed over: dialing counts it already.
		} else {
			p.dialing++
			p.mu.Unlock()
		}
	} else {
		p.mu.Lock()
		p.dialing++
		p.mu.Unlock()
	}
	nc, err := dialerFor(ctx, &p.dialer).DialContext(ctx, "tcp", p.addr)
	p.doneDialing()
	if err != nil {
		return nil, false, err
	}
	nc = newRawConn(nc)
	return &upConn{Conn: nc, br: bufio.NewReaderSize(nc, 16<<10), req: make([]byte, 0, 256)}, false, nil
}

// doneDialing hands the turn of a dial that ended to the longest waiting
// request, or gives it up.
func (p *connPool) doneDialing() {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.mu.Unlock()
		w <- nil
		return
	}
	p.dialing--
	p.mu.Unlock()
}

// takeIdle pops the most recently used idle connection, closing those
// idle for too long, or returns nil.
func (p *connPool) takeIdle() *upConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if time.Since(c.lastUsed) < p.idleTime {
			return c
		}
		c.Close()
	}
}

// wait waits for a connection that put hands over on ch, or for nil: the
// turn to dial, handed over by doneDialing. It gives up at the end of ctx
// or after the response timeout, with an error that counts as a timeout.
func (p *connPool) wait(ctx context.Context, ch chan *upConn) (*upConn, error) {
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	var err error
	select {
	case c := <-ch:
		return c, nil
	case <-t.C:
		err = errWaitedTooLong
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = slices.Delete(p.waiters, i, i+1)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()
	// put or doneDialing took ch off the list, so a connection or a turn to
	// dial is on its way: take it rather than lose it.
	return <-ch, nil
}

// errWaitedTooLong reports a request that waited the response timeout for
// a connection to a replica busy with others; it is a timeout (504), and
// does not eject the replica.
var errWaitedTooLong error = waitError{}

type waitError struct{}

func (waitError) Error() string   { return "waited too long for a connection to the replica" }
func (waitError) Timeout() bool   { return true }
func (waitError) Temporary() bool { return true }

// put hands c to the longest waiting request, or keeps it for the next
// one, or closes it when the pool is full.
func (p *connPool) put(c *upConn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		ch <- c // buffered: never blocks
		return
	}
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.Close()
}

// release puts c back when it can carry another request, and closes it
// otherwise.
func (p *connPool) release(c *upConn, reusable bool) {
	if reusable {
		p.put(c)
		return
	}
	c.Close()
}

// closeIdle closes every pooled connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// appendRequest appends the request for path with the client's Accept and
// If-None-Match headers, dropping any value with a CR or LF.
func appendRequest(b []byte, method, path, host string, accept, inm []string) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	b = appendHeader(b, "Accept: ", accept)
	b = appendHeader(b, "If-None-Match: ", inm)
	return append(b, "\r\n"...)
}

func appendHeader(b []byte, name string, values []string) []byte {
	for _, v := range values {
		if !validValue(v) {
			continue
		}
		b = append(b, name...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// head is what the router keeps of a response's status line and headers.
type head struct {
	status        int
	contentLength int64 // -1 when unknown
	chunked       bool
	close         bool
}

// bodyless reports whether the response has no body whatever its headers
// say (RFC 9112 section 6.3).
func (h *head) bodyless(method string) bool {
	return method == http.MethodHead || h.status/100 == 1 || h.status == http.StatusNoContent || h.status == http.StatusNotModified
}

// readFinalStatus reads the status line of the final response, skipping
// interim (1xx) ones with their headers.
func readFinalStatus(br *bufio.Reader, h *head) error {
	for {
		if err := readStatus(br, h); err != nil {
			return err
		}
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			return nil
		}
		if err := readHeaders(br, h, nil); err != nil {
			return err
		}
	}
}

// readStatus reads the status line.
func readStatus(br *bufio.Reader, h *head) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 14 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errMalformed
	}
	h.status = 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errMalformed
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 {
		return errMalformed
	}
	h.close = line[7] == '0' // HTTP/1.0 closes unless it says otherwise
	h.contentLength = -1
	h.chunked = false
	return nil
}

// readHeaders reads the header fields into dst (nil to drop them), all
// but the hop-by-hop ones and Date and Server (which the router's server
// sets, as NGINX does), and notes the body's framing in h. A body that
// comes chunked keeps no Content-Length.
func readHeaders(br *bufio.Reader, h *head, dst headerSink) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if h.chunked && dst != nil {
				dst.drop("Content-Length")
			}
			return nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return errMalformed
		}
		rawKey, v := line[:i], bytes.TrimSpace(line[i+1:])
		key := headerKey(rawKey)
		switch key {
		case "Content-Length":
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
				return errMalformed
			}
			h.contentLength = n
		case "Transfer-Encoding":
			h.chunked = true // the only coding a server may send to HTTP/1.1
			continue
		case "Connection":
			if bytes.Contains(bytes.ToLower(v), []byte("close")) {
				h.close = true
			} else if bytes.Contains(bytes.ToLower(v), []byte("keep-alive")) {
				h.close = false
			}
			continue
		case "Date", "Server":
			continue
		}
		if dst == nil || hopByHop(key) {
			continue
		}
		dst.add(key, v)
	}
}

// headerSink receives the header fields of a replica's response that the
// router passes on: an http.Header (mapSink), or the fast path's response,
// which copies them to the client as they are, without a map.
type headerSink interface {
	// add adds a field; key is in canonical form, value is only valid
	// during the call.
	add(key string, value []byte)
	// drop removes the fields of key added so far.
	drop(key string)
	// reset removes every field added.
	reset()
}

// mapSink is an http.Header as a headerSink.
type mapSink http.Header

func (m mapSink) add(key string, v []byte) {
	if shared, ok := commonValues[string(v)]; ok && m[key] == nil {
		m[key] = shared
	} else {
		m[key] = append(m[key], string(v))
	}
}

func (m mapSink) drop(key string) { delete(m, key) }
func (m mapSink) reset()          { clear(m) }

// headerKey canonicalizes a header name, without allocating for the ones
// a shard sends.
func headerKey(k []byte) string {
	switch string(k) {
	case "Content-Type":
		return "Content-Type"
	case "Content-Length":
		return "Content-Length"
	case "Etag", "ETag":
		return "Etag"
	case "Cache-Control":
		return "Cache-Control"
	case "Vary":
		return "Vary"
	case "Date":
		return "Date"
	case "X-Content-Type-Options":
		return "X-Content-Type-Options"
	case "Connection":
		return "Connection"
	case "Transfer-Encoding":
		return "Transfer-Encoding"
	}
	return textproto.CanonicalMIMEHeaderKey(string(k))
}

// commonValues are header values shared by every response that has them
// rather than allocated for each. Their slices have no spare capacity, so
// appending to one copies it.
var commonValues = map[string][]string{
	"text/plain; charset=utf-8":           {"text/plain; charset=utf-8"},
	"application/json":                    {"application/json"},
	"application/problem+json":            {"application/problem+json"},
	"public, max-age=31536000, immutable": {"public, max-age=31536000, immutable"},
	"Accept":                              {"Accept"},
	"nosniff":                             {"nosniff"},
	"no-store":                            {"no-store"},
	"GET, HEAD":                           {"GET, HEAD"},
}

// copyBodyFrom streams the body that h frames from c to w: exactly
// Content-Length bytes, the chunks, or everything up to the end of the
// connection. It reports whether c can carry another request.
func (p *connPool) copyBodyFrom(w io.Writer, c *upConn, h *head) (reusable bool, err error) {
	switch {
	case h.chunked:
		return false, copyBody(w, httputil.NewChunkedReader(deadlineReader{c, p.timeout}), p.bodyWrite)
	case h.contentLength < 0:
		return false, copyBody(w, deadlineReader{c, p.timeout}, p.bodyWrite)
	}
	left := h.contentLength
	// The common case: the whole body came with the headers.
	if n := c.br.Buffered(); int64(n) >= left {
		b, _ := c.br.Peek(int(left))
		if _, err := w.Write(b); err != nil {
			return false, err
		}
		c.br.Discard(int(left))
		return !h.close, nil
	}
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	r := deadlineReader{c, p.timeout}
	for first := true; left > 0; first = false {
		n, err := r.Read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			left -= int64(n)
			if !first {
				keepWriting(w, p.bodyWrite) // as copyBody does
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false, werr
			}
		}
		if err != nil && left > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, err
		}
	}
	return !h.close, nil
}

// deadlineReader reads the response, renewing the read deadline when it
// has to wait for the network, so that a replica that stalls in the middle
// of a long line cannot hold the request forever.
type deadlineReader struct {
	c       *upConn
	timeout time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	if d.c.br.Buffered() == 0 {
		d.c.SetReadDeadline(time.Now().Add(d.timeout))
	}
	return d.c.br.Read(p)
}
