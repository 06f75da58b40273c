package lineserver

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lineserver/lineserver/internal/etag"
	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/shard"
)

// flushAt is how much NDJSON a range gathers before it writes it.
const flushAt = 32 << 10

// serveRange answers GET and HEAD /lines/{a}..{b}: the lines a to b this
// shard serves, as text or NDJSON, and a next link to the rest of the
// range when b is past its last line.
func (s *Server) serveRange(w http.ResponseWriter, r *http.Request, raw string) int {
	a, b, err := lineno.ParseRange(raw)
	if err != nil {
		return s.fail(w, r, err)
	}
	first, last, end, err := s.shard.ResolveRange(a, b)
	if err != nil {
		return s.fail(w, r, err)
	}
	ls, err := s.shard.LocateLines(first, last)
	if err != nil {
		return s.fail(w, r, err)
	}
	asNDJSON := wantsNDJSON(r.Header["Accept"])
	h := w.Header()
	tag := s.rangeTag(first, end, asNDJSON)
	h["Etag"] = []string{tag}
	h["Cache-Control"] = s.hdr.cache
	h["Vary"] = s.hdr.vary
	if end > last {
		h["Link"] = []string{nextLink(last+1, end)}
	}
	if etag.Matches(r.Header["If-None-Match"], tag) {
		if err := s.verifyLines(ls); err != nil {
			return s.failRange(w, r, err)
		}
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	if asNDJSON {
		// The length of the encoding is known only once the lines are
		// read: NDJSON goes without a Content-Length (chunked).
		h["Content-Type"] = s.hdr.ndjson
	} else {
		h["Content-Type"] = s.hdr.text
		h["Content-Length"] = []string{strconv.FormatInt(ls.Len(), 10)}
	}
	if r.Method == http.MethodHead {
		if err := s.verifyLines(ls); err != nil {
			return s.failRange(w, r, err)
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	return s.streamLines(w, r, ls, asNDJSON)
}

// failRange answers with the problem of err once a range's headers are
// set: an error has no next link and no length of lines.
func (s *Server) failRange(w http.ResponseWriter, r *http.Request, err error) int {
	h := w.Header()
	delete(h, "Link")
	delete(h, "Vary")
	return s.fail(w, r, err)
}

// rangeTag is the ETag of the range first..end: the shard's tag, the
// range, and the encoding.
func (s *Server) rangeTag(first, end int64, asNDJSON bool) string {
	var b [96]byte
	v := append(b[:0], s.hdr.etagPrefix...)
	v = strconv.AppendInt(v, first, 10)
	v = append(v, lineno.Sep...)
	v = strconv.AppendInt(v, end, 10)
	if asNDJSON {
		v = append(v, ".ndjson"...)
	}
	return string(append(v, '"'))
}

// nextLink is the Link header value (RFC 8288) that points at the rest of
// a range, lines from to end, which the next shard serves.
func nextLink(from, end int64) string {
	return "</lines/" + strconv.FormatInt(from, 10) + lineno.Sep + strconv.FormatInt(end, 10) + `>; rel="next"`
}

// verifyLines checks a range as a GET does before its status, for answers
// without a body (HEAD, 304): the files are unchanged, the range starts
// after a '\n' and its last line ends where the index says.
func (s *Server) verifyLines(ls shard.Lines) error {
	if err := s.verify(ls.Head); err != nil {
		return err
	}
	return s.verify(ls.Tail)
}

// streamLines sends the lines of ls, chunk by chunk, each checked against
// the index before it is sent. The first chunk is read before the status,
// so a range that cannot be read gets a clean 500; a failure after it cuts
// the connection, so a short range is never presented as whole.
func (s *Server) streamLines(w http.ResponseWriter, r *http.Request, ls shard.Lines, asNDJSON bool) int {
	bufp, ibufp := s.large.Get().(*[]byte), s.large.Get().(*[]byte)
	defer s.large.Put(bufp)
	defer s.large.Put(ibufp)
	buf := *bufp
	rd := s.shard.NewLinesReader(ls, *ibufp)
	chunk, line, err := rd.Next(buf)
	if err != nil {
		return s.failRange(w, r, err)
	}
	var nd *ndjson
	if asNDJSON {
		outp := s.large.Get().(*[]byte)
		defer s.large.Put(outp)
		nd = &ndjson{out: (*outp)[:0], line: ls.First}
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	sent := int64(0)
	for {
		out := chunk
		if nd != nil {
			out = nd.encode(chunk, line, ls.End-ls.Start == sent+int64(len(chunk)))
		}
		sent += int64(len(chunk))
		if len(out) > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := w.Write(out); err != nil {
				s.log.Warn("client went away during a range", "path", r.URL.Path, "sent", sent, "of", ls.Len(), "error", err)
				return http.StatusOK
			}
			if nd != nil {
				nd.out = out[:0]
			}
		}
		chunk, line, err = rd.Next(buf)
		if errors.Is(err, io.EOF) {
			s.metrics.ranges.Inc()
			s.metrics.rangeLines.Add(float64(ls.Count()))
			return http.StatusOK
		}
		if err != nil {
			s.log.Error("range failed after its status was sent; cutting the connection",
				"path", r.URL.Path, "sent", sent, "of", ls.Len(), "error", err)
			abort(rc)
			return http.StatusInternalServerError
		}
	}
}

// ndjson encodes checked chunks of a span of lines, whose every '\n' is a
// line's end, as one {"number": n, "line": "..."} object per line, each as
// serveJSON encodes a single line.
type ndjson struct {
	out []byte
	enc jsonLine
	// line is the line the next byte belongs to; open says its object has
	// been started.
	line int64
	open bool
}

// encode returns the encoding of chunk, whose first byte is of line
// line, appended to the pending output, which it returns once at least
// flushAt bytes are pending, or with final (the last chunk of the range).
// Otherwise it returns nothing and keeps the output for the next call.
func (n *ndjson) encode(chunk []byte, line int64, final bool) []byte {
	n.line = line
	for len(chunk) > 0 {
		piece, rest := chunk, []byte(nil)
		ends := false
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			piece, rest, ends = chunk[:i+1], chunk[i+1:], true
		} else if final {
			ends = true // the file's last line, without its '\n'
		}
		if !n.open {
			n.out = append(n.out, `{"number":`...)
			n.out = strconv.AppendInt(n.out, n.line, 10)
			n.out = append(n.out, `,"line":"`...)
			n.open = true
		}
		n.enc.out = n.out
		n.out = n.enc.encode(piece, ends)
		if ends {
			n.open = false
			n.line++
		}
		chunk = rest
	}
	if final || len(n.out) >= flushAt {
		return n.out
	}
	return nil
}

// wantsNDJSON reports whether the Accept header prefers
// application/x-ndjson to text/plain, as wantsJSON does for JSON.
func wantsNDJSON(accept []string) bool {
	if len(accept) == 0 {
		return false
	}
	q, qText := quality(accept, "application", "x-ndjson"), quality(accept, "text", "plain")
	return q > 0 && q > qText
}
