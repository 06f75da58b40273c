package lineserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lineserver/lineserver/internal/etag"
	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/shard"
)

// writeTimeout bounds how long one chunk of a long line may take to reach
// a slow client.
const writeTimeout = 30 * time.Second

// serveLine answers GET and HEAD /lines/{n}, and /lines/{a}..{b} with
// serveRange.
func (s *Server) serveLine(w http.ResponseWriter, r *http.Request, raw string) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return s.methodNotAllowed(w, "GET, HEAD")
	}
	if strings.IndexByte(raw, '/') >= 0 {
		return s.fail(w, r, problem.ErrNotFound)
	}
	if lineno.IsRange(raw) {
		return s.serveRange(w, r, raw)
	}
	n, err := lineno.Parse(raw)
	if err != nil {
		return s.fail(w, r, err)
	}
	if n, err = s.shard.Resolve(n); err != nil {
		return s.fail(w, r, err)
	}
	sp, err := s.shard.Locate(n)
	if err != nil {
		return s.fail(w, r, err)
	}
	asJSON := wantsJSON(r.Header["Accept"])
	vals := s.setHeaders(w.Header(), n, sp, asJSON)
	tag := vals[0]
	if etag.Matches(r.Header["If-None-Match"], tag) {
		if err := s.verify(sp); err != nil {
			return s.fail(w, r, err)
		}
		// A 304 carries no representation metadata but the validators.
		delete(w.Header(), "Content-Length")
		delete(w.Header(), "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	if asJSON {
		return s.serveJSON(w, r, n, sp, vals[1:2:2])
	}
	return s.serveText(w, r, sp)
}

// setHeaders sets the headers every answer of line n shares: the ETag,
// Cache-Control and Vary, and for text the Content-Length and
// Content-Type. It returns the values of the ETag and, for text, of the
// Content-Length; JSON, whose length is known once encoded, gets the
// second slot for it. The constant values are shared by every response;
// the two that vary are cut from one string, held by one slice, so a text
// line costs two allocations beside net/http's own.
func (s *Server) setHeaders(h http.Header, n int64, sp shard.Span, asJSON bool) (vals []string) {
	var b [64]byte
	v := append(b[:0], s.hdr.etagPrefix...)
	v = strconv.AppendInt(v, n, 10)
	if asJSON {
		v = append(v, ".json"...)
	}
	v = append(v, '"')
	k := len(v)
	if !asJSON {
		v = strconv.AppendInt(v, sp.Len(), 10)
	}
	both := string(v)
	vals = make([]string, 2)
	vals[0], vals[1] = both[:k], both[k:]
	h["Etag"] = vals[0:1:1]
	h["Cache-Control"] = s.hdr.cache
	h["Vary"] = s.hdr.vary
	if !asJSON {
		h["Content-Length"] = vals[1:2:2]
		h["Content-Type"] = s.hdr.text
	}
	return vals
}

// verify checks line sp as a GET does before it sends its status, for
// answers that send no body (HEAD, 304): the files are unchanged, and the
// line's first and last bytes are where the index says, without reading a
// long line whole. So those answers, too, are never given for a line that
// changed.
func (s *Server) verify(sp shard.Span) error {
	var buf [64]byte
	if _, err := s.shard.Chunk(buf[:], sp, 0); err != nil {
		return err
	}
	if tail := sp.Len() - int64(len(buf)-1); tail > 0 {
		_, err := s.shard.Chunk(buf[:], sp, tail)
		return err
	}
	return nil
}

// serveText sends the line's bytes as they are in the file, with the
// headers setHeaders set.
func (s *Server) serveText(w http.ResponseWriter, r *http.Request, sp shard.Span) int {
	if r.Method == http.MethodHead {
		if err := s.verify(sp); err != nil {
			return s.fail(w, r, err)
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	bufp, pool := s.buffer(sp.Len())
	defer pool.Put(bufp)
	buf := *bufp
	// The first chunk is read before the status is sent, so a line that
	// cannot be read gets a clean 500.
	chunk, err := s.shard.Chunk(buf, sp, 0)
	if err != nil {
		return s.fail(w, r, err)
	}
	w.WriteHeader(http.StatusOK)
	if int64(len(chunk)) == sp.Len() {
		w.Write(chunk)
		return http.StatusOK
	}
	return s.stream(w, r, sp, buf, chunk, nil)
}

// stream sends a long line chunk by chunk, each checked before it is sent,
// with first already read. encode, if not nil, turns each chunk into what
// is sent. A failure after the status was sent cuts the connection, so the
// client sees a broken response, never a short line presented as whole.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, sp shard.Span, buf, first []byte, encode func(chunk []byte, last bool) []byte) int {
	rc := http.NewResponseController(w)
	chunk, off := first, int64(0)
	for {
		off += int64(len(chunk))
		out := chunk
		if encode != nil {
			out = encode(chunk, off == sp.Len())
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(out); err != nil {
			s.log.Warn("client went away during a long line", "path", r.URL.Path, "sent", off, "of", sp.Len(), "error", err)
			return http.StatusOK
		}
		if off == sp.Len() {
			return http.StatusOK
		}
		var err error
		if chunk, err = s.shard.Chunk(buf, sp, off); err != nil {
			s.log.Error("line failed after its status was sent; cutting the connection",
				"path", r.URL.Path, "sent", off, "of", sp.Len(), "error", err)
			abort(rc)
			return http.StatusInternalServerError
		}
	}
}

// abort closes the client's connection without ending the response.
func abort(rc *http.ResponseController) {
	if conn, _, err := rc.Hijack(); err == nil {
		conn.Close()
	}
	// Without a hijackable connection, returning early still leaves a body
	// shorter than its Content-Length or a JSON text without its end.
}

// wantsJSON reports whether the Accept header prefers application/json to
// text/plain. The most specific media range decides each one's quality.
func wantsJSON(accept []string) bool {
	if len(accept) == 0 {
		return false
	}
	qJSON, qText := quality(accept, "application", "json"), quality(accept, "text", "plain")
	return qJSON > 0 && qJSON > qText
}

// quality is the q value the Accept header gives type/sub: that of the most
// specific range that matches it, or 0.
func quality(accept []string, typ, sub string) float64 {
	best, q := -1, 0.0
	for _, header := range accept {
		for item, rest, more := "", header, true; more; {
			item, rest, more = strings.Cut(rest, ",")
			mediaRange, params, _ := strings.Cut(item, ";")
			t, st, _ := strings.Cut(strings.TrimSpace(mediaRange), "/")
			spec := 0
			switch {
			case strings.EqualFold(t, typ) && strings.EqualFold(st, sub):
				spec = 2
			case strings.EqualFold(t, typ) && st == "*":
				spec = 1
			case t == "*" && st == "*":
				spec = 0
			default:
				continue
			}
			if spec > best {
				best, q = spec, qValue(params)
			}
		}
	}
	return q
}

func qValue(params string) float64 {
	for p, rest, more := "", params, true; more; {
		p, rest, more = strings.Cut(rest, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			if q, err := strconv.ParseFloat(v, 64); err == nil && q >= 0 && q <= 1 {
				return q
			}
			return 0
		}
	}
	return 1
}
