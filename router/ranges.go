package router

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/lineserver/lineserver/internal/etag"
	"github.com/lineserver/lineserver/internal/lineno"
)

// ndjsonType is the media type of a range as one JSON object per line.
const ndjsonType = "application/x-ndjson"

// serveRange answers GET and HEAD /lines/{a}..{b}. It answers 400 and 413
// itself, with the shards' parser and their problem bodies. A range that
// one shard serves whole it proxies as a line. A range across shards it
// answers itself, whole: see serveSpan.
func (rt *Router) serveRange(ctx *fasthttp.RequestCtx, raw string) {
	a, b, err := rt.resolveRange(raw)
	if err != nil {
		rt.metrics.own(writeError(ctx, err))
		return
	}
	i, _ := rt.manifest.Find(a) // a validated manifest covers 1..total
	j, _ := rt.manifest.Find(b)
	if i == j {
		var buf [48]byte
		rt.proxy(ctx, rt.shards[i], rangeURI(buf[:0], a, b), b-a+1)
		return
	}
	rt.serveSpan(ctx, a, b, i, j)
}

// resolveRange parses a range and resolves its ends against the file's
// total, in the order a shard checks them, so that the errors are a
// shard's: a side that is not a line number, either end beyond the end of
// the file, the ends reversed.
func (rt *Router) resolveRange(raw string) (a, b int64, err error) {
	if a, b, err = lineno.ParseRange(raw); err != nil {
		return 0, 0, err
	}
	if a, err = lineno.Resolve(a, rt.total); err != nil {
		return 0, 0, err
	}
	if b, err = lineno.Resolve(b, rt.total); err != nil {
		return 0, 0, err
	}
	return a, b, lineno.Ordered(a, b)
}

// rangeURI appends the path of lines a to b, both positive, to dst.
func rangeURI(dst []byte, a, b int64) []byte {
	dst = strconv.AppendInt(append(dst, "/lines/"...), a, 10)
	return strconv.AppendInt(append(dst, lineno.Sep...), b, 10)
}

// nextLink is the Link a shard sends with the part of a range it serves
// when the range goes on past its last line: the rest, lines from to end.
// It is the shard's own spelling (RFC 8288), which the router checks byte
// for byte.
func nextLink(from, end int64) string {
	return "</lines/" + strconv.FormatInt(from, 10) + lineno.Sep + strconv.FormatInt(end, 10) + `>; rel="next"`
}

// rangeDisagrees says why the answer of a shard asked for a range that the
// manifest says it serves whole shows that the shard and the manifest
// disagree, or "": a next link (the shard's lines end sooner), or a 400,
// 413 or 421 for a range that the router checked against the manifest.
func rangeDisagrees(status int, link []byte) string {
	switch {
	case len(link) > 0:
		return fmt.Sprintf("it sent the next link %q for a range the manifest says it serves whole", link)
	case status == fasthttp.StatusBadRequest || status == fasthttp.StatusRequestEntityTooLarge ||
		status == fasthttp.StatusMisdirectedRequest:
		return fmt.Sprintf("it answered %d for a range the manifest says it serves", status)
	}
	return ""
}

// disagree answers 502 for a range whose shard's answer disagrees with
// the manifest, and logs it: the answer would not be the range asked for,
// so it is never served.
func (rt *Router) disagree(ctx *fasthttp.RequestCtx, s *shard, rep *replica, uri []byte, why string) {
	rt.log.Error("shard disagrees with the manifest; not serving its answer",
		"shard", s.name, "replica", rep.name, "path", string(uri), "reason", why)
	s.answer(ctx, fasthttp.StatusBadGateway, "shard "+s.name+" and the manifest disagree about its lines")
}

// part is the share of a range that one shard serves.
type part struct {
	shard *shard
	// first and last are the part's lines, as the manifest says.
	first, last int64
	// uri asks the shard for the rest of the range from first on, as a
	// client following the next links would.
	uri []byte
	// link is the next link the shard must send with its part: to the
	// rest of the range, after its last line; none for the last part.
	link string
	// etag and length (of a text part; -1 for NDJSON) are from the
	// shard's answer to HEAD, which the GET must repeat.
	etag   string
	length int64
}

// span is a range across shards: its parts and the headers they share,
// the first part's. Once its status is sent, it is the body of the
// answer: each part's GET in turn, its body streamed through with
// constant memory, as a long line's is. Each part's answer must repeat
// what its HEAD said (status 200, ETag, media type, length, next link),
// and its body must be whole: as many bytes as its length, as many lines
// as the manifest says. If anything fails, Read returns an error and the
// server cuts the connection: a text body ends short of its
// Content-Length, an NDJSON body without the end of its chunked
// encoding, so a short range is never taken for a whole one.
type span struct {
	rt     *Router
	parts  []part
	accept []string
	watch  *clientConn // while the parts' headers are asked for
	client net.Conn
	lines  int64 // of the whole range, for the metrics

	contentType, cacheControl, vary string
	ndjson                          bool

	i    int      // the part being sent, or the next
	c    *call    // the part's GET while its body is read
	rep  *replica // the replica that answers it
	got  int64    // bytes of the part read
	nl   int64    // '\n's among them
	end  byte     // the last byte read
	sent int64    // bytes read so far, across parts
	err  error    // why the body ended, once it did
}

// serveSpan answers a range across the shards i to j of the manifest.
// It first asks each shard for the headers of its part (HEAD), in order,
// and checks each against the manifest: status 200, a strong ETag, the
// same media type as the others, and the next link, byte for byte, that
// the manifest says the shard must send. Any disagreement is a 502: the
// parts would not make the range. Only then is the status known; the
// range's ETag is the SHA-256 of its parts' ETags, so a 304 or a HEAD
// needs no body. A GET then streams the parts one after the other.
//
// HEADs first, rather than the first part's GET with the others' HEADs:
// every answer the router gives (200, 304, HEAD, a 502 or a shard's 5xx)
// is decided before any body is asked for, and no connection to a shard
// sits with a body unread while the other shards are asked.
func (rt *Router) serveSpan(ctx *fasthttp.RequestCtx, a, b int64, i, j int) {
	sp := &span{rt: rt, client: ctx.Conn(), lines: b - a + 1}
	for _, v := range ctx.Request.Header.PeekAll(fasthttp.HeaderAccept) {
		sp.accept = append(sp.accept, string(v))
	}
	for k := i; k <= j; k++ {
		sh := &rt.manifest.Shards[k]
		p := part{shard: rt.shards[k], first: max(a, sh.First), last: min(b, sh.Last), length: -1}
		p.uri = rangeURI(nil, p.first, b)
		if k < j {
			p.link = nextLink(sh.Last+1, b)
		}
		sp.parts = append(sp.parts, p)
	}
	if cc, ok := ctx.Conn().(*clientConn); ok {
		sp.watch = cc.watch()
		defer cc.stop()
	}
	for k := range sp.parts {
		if !sp.head(ctx, &sp.parts[k], k == 0) {
			return
		}
	}
	sp.watch = nil // the bodies are read after the handler returns

	tag := spanTag(sp.parts)
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderETag, tag)
	if sp.cacheControl != "" {
		h.Set(fasthttp.HeaderCacheControl, sp.cacheControl)
	}
	if sp.vary != "" {
		h.Set(fasthttp.HeaderVary, sp.vary)
	}
	if matchesETag(ctx, tag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	h.SetContentType(sp.contentType)
	length := int64(-1) // NDJSON: chunked, as the shards send it
	if !sp.ndjson {
		length = 0
		for _, p := range sp.parts {
			length += p.length
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	if ctx.IsHead() {
		if length >= 0 {
			h.SetContentLength(int(length))
		}
		return
	}
	ctx.SetBodyStream(sp, int(length))
}

// ask sends method for p to a replica of its shard. The call it returns,
// for the caller to release, holds the answer's headers unless fail is
// not noFailure; then fail says why there is none.
func (sp *span) ask(method string, p *part) (*call, *replica, failure, error) {
	c := sp.rt.newCall([]byte(method), p.uri)
	c.watch = sp.watch
	for _, v := range sp.accept {
		c.req.Header.Add(fasthttp.HeaderAccept, v)
	}
	rep, fail, err := c.exchange(p.shard)
	return c, rep, fail, err
}

// head asks a replica of p's shard for the headers of p and checks them:
// against the manifest, and against those of the first part (first says
// p is the first, whose headers the span takes). On a failure or a
// disagreement it answers the client and returns false.
func (sp *span) head(ctx *fasthttp.RequestCtx, p *part, first bool) bool {
	rt := sp.rt
	c, rep, fail, err := sp.ask(fasthttp.MethodHead, p)
	defer c.release()
	if fail != noFailure {
		rt.writeFailure(ctx, p.shard, rep, fail, err, c.gone())
		return false
	}
	c.up.close(true)
	h := &c.resp.Header
	status := h.StatusCode()
	switch status {
	case fasthttp.StatusOK:
	case fasthttp.StatusInternalServerError, fasthttp.StatusBadGateway,
		fasthttp.StatusServiceUnavailable, fasthttp.StatusGatewayTimeout:
		// The shard's own failure: the range cannot be served now, as a
		// line of the shard could not.
		rt.log.Warn("a shard failed its part of a range", "shard", p.shard.name, "replica", rep.name,
			"path", string(p.uri), "status", status)
		detail := ""
		if status != fasthttp.StatusInternalServerError {
			detail = "shard " + p.shard.name + " answered " + strconv.Itoa(status)
		}
		p.shard.answer(ctx, status, detail)
		return false
	default:
		rt.disagree(ctx, p.shard, rep, p.uri, fmt.Sprintf("it answered %d to HEAD", status))
		return false
	}
	if first {
		sp.contentType = string(h.ContentType())
		sp.ndjson = strings.HasPrefix(sp.contentType, ndjsonType)
		sp.cacheControl = string(h.Peek(fasthttp.HeaderCacheControl))
		sp.vary = string(h.Peek(fasthttp.HeaderVary))
	}
	p.etag = string(h.Peek(fasthttp.HeaderETag))
	if !sp.ndjson {
		p.length = int64(h.ContentLength())
	}
	if why := sp.check(p, h); why != "" {
		rt.disagree(ctx, p.shard, rep, p.uri, why+" (HEAD)")
		return false
	}
	p.shard.counts.inc(status)
	return true
}

// check says how a shard's answer of status 200 for p disagrees with the
// manifest or with the other parts, or "": its next link must be the one
// the manifest says, byte for byte; its ETag and length those noted for p;
// its media type that of the first part.
func (sp *span) check(p *part, h *fasthttp.ResponseHeader) string {
	links := h.PeekAll(fasthttp.HeaderLink)
	switch {
	case p.link == "" && len(links) > 0:
		return fmt.Sprintf("it sent the next link %q where the manifest says the range ends", links[0])
	case p.link != "" && (len(links) != 1 || string(links[0]) != p.link):
		return fmt.Sprintf("its next links are %q where the manifest says %q", links, p.link)
	case !strongTag(p.etag):
		return fmt.Sprintf("its ETag %q is not a strong one", p.etag)
	case string(h.Peek(fasthttp.HeaderETag)) != p.etag:
		return fmt.Sprintf("its ETag %q differs from %q", h.Peek(fasthttp.HeaderETag), p.etag)
	case string(h.ContentType()) != sp.contentType:
		return fmt.Sprintf("its media type %q differs from %q", h.ContentType(), sp.contentType)
	case !sp.ndjson && (p.length < 0 || int64(h.ContentLength()) != p.length):
		return fmt.Sprintf("its Content-Length %d is not the %d expected", h.ContentLength(), p.length)
	}
	return ""
}

// strongTag reports whether t is a strong entity tag: quoted, not W/.
func strongTag(t string) bool {
	return len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' && !strings.ContainsRune(t[1:len(t)-1], '"')
}

// spanTag is the ETag of a range across shards: the hex SHA-256 of its
// parts' ETags, in order, each with its quotes, quoted. It changes when
// any part's does, and differs between text and NDJSON as theirs do.
func spanTag(parts []part) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p.etag)
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

// matchesETag reports whether the request's If-None-Match names tag or
// is "*", as a shard compares.
func matchesETag(ctx *fasthttp.RequestCtx, tag string) bool {
	var header []string
	for _, v := range ctx.Request.Header.PeekAll(fasthttp.HeaderIfNoneMatch) {
		header = append(header, string(v))
	}
	return etag.Matches(header, tag)
}

// errPartBroken reports a part of a range that failed after the status
// was sent.
var errPartBroken = errors.New("a part of the range failed")

func (sp *span) Read(buf []byte) (int, error) {
	for sp.err == nil {
		if sp.c == nil && sp.i == len(sp.parts) {
			sp.rt.metrics.rangeServed(sp.lines)
			sp.err = io.EOF
			break
		}
		if sp.c == nil {
			if err := sp.open(); err != nil {
				sp.fail(err)
				break
			}
		}
		n, err := sp.c.up.Read(buf)
		sp.got += int64(n)
		sp.nl += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if n > 0 {
			sp.end = buf[n-1]
		}
		switch {
		case err == io.EOF:
			err = sp.finish()
		case err != nil:
			err = fmt.Errorf("reading its body after %d bytes: %w", sp.got, err)
		}
		if err != nil {
			sp.fail(err)
			break
		}
		if n > 0 {
			sp.sent += int64(n)
			return n, nil
		}
	}
	return 0, sp.err
}

// open sends the GET of the next part and checks its answer's headers
// against its HEAD's.
func (sp *span) open() error {
	p := &sp.parts[sp.i]
	c, rep, fail, err := sp.ask(fasthttp.MethodGet, p)
	sp.rep = rep
	switch {
	case fail == noReplica:
		c.release()
		return fmt.Errorf("%w: no healthy replica of shard %s", errPartBroken, p.shard.name)
	case fail != noFailure:
		c.release()
		return fmt.Errorf("%w: %s: %v", errPartBroken, fail, err)
	}
	sp.c, sp.got, sp.nl, sp.end = c, 0, 0, 0
	// Each write to the client after the range's first gets its timeout.
	c.up.client, c.up.reads = sp.client, sp.i
	status := c.resp.StatusCode()
	p.shard.counts.inc(status)
	if status != fasthttp.StatusOK {
		return fmt.Errorf("%w: it answered %d to GET", errPartBroken, status)
	}
	if why := sp.check(p, &c.resp.Header); why != "" {
		return fmt.Errorf("%w: %s (GET)", errPartBroken, why)
	}
	return nil
}

// finish checks that the part just read is whole, and lets its
// connection go back to its pool.
func (sp *span) finish() error {
	p := &sp.parts[sp.i]
	lines := p.last - p.first + 1
	switch {
	case sp.ndjson && (sp.nl != lines || sp.end != '\n'):
		return fmt.Errorf("%w: %d NDJSON lines where the manifest says %d", errPartBroken, sp.nl, lines)
	case !sp.ndjson && sp.got != p.length:
		return fmt.Errorf("%w: %d bytes of %d", errPartBroken, sp.got, p.length)
	case !sp.ndjson && sp.nl != lines && !(sp.nl == lines-1 && p.last == sp.rt.total && sp.end != '\n'):
		// Every line ends with '\n' but the file's last, which may not.
		return fmt.Errorf("%w: %d lines where the manifest says %d", errPartBroken, sp.nl, lines)
	}
	sp.c.up.close(true)
	sp.c.release()
	sp.c = nil
	sp.i++
	return nil
}

// fail logs why the range broke off, closes the part's connection, and
// keeps the error for the server, which then cuts the client's.
func (sp *span) fail(err error) {
	p := &sp.parts[sp.i]
	sp.rt.log.Error("range broke off after its status was sent; cutting the connection",
		"shard", p.shard.name, "replica", sp.rep, "path", string(p.uri), "sent", sp.sent, "error", err)
	sp.Close()
	sp.err = err
}

// Close ends the body, closing the connection of a part not read whole:
// the server calls it when it has written the body or given up on the
// client.
func (sp *span) Close() error {
	if sp.c != nil {
		sp.c.up.close(false)
		sp.c.release()
		sp.c = nil
	}
	return nil
}
