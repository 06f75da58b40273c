package lineserver

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/lineserver/lineserver/internal/shard"
)

// serveJSON sends {"number": n, "line": "..."}: the line without its '\n'.
// Bytes that are not UTF-8 become U+FFFD, as JSON has no way to carry them.
// length is the slot for the Content-Length's value.
func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, n int64, sp shard.Span, length []string) int {
	bufp, pool := s.buffer(sp.Len())
	defer pool.Put(bufp)
	buf := *bufp
	chunk, err := s.shard.Chunk(buf, sp, 0)
	if err != nil {
		return s.fail(w, r, err)
	}
	// The encoding goes to a pooled buffer of its own; a line that
	// encodes longer than it grows a copy.
	outp, outPool := s.buffer(2 * int64(len(chunk)))
	defer outPool.Put(outp)
	head := append((*outp)[:0], `{"number":`...)
	head = strconv.AppendInt(head, n, 10)
	head = append(head, `,"line":"`...)
	enc := jsonLine{out: head}
	h := w.Header()
	h["Content-Type"] = s.hdr.json
	if int64(len(chunk)) == sp.Len() {
		body := enc.encode(chunk, true)
		length[0] = strconv.Itoa(len(body))
		h["Content-Length"] = length
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
		return http.StatusOK
	}
	// A long line is sent as it is encoded, without a Content-Length.
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return http.StatusOK
	}
	return s.stream(w, r, sp, buf, chunk, enc.encode)
}

// jsonLine encodes a line as the rest of a JSON object, chunk by chunk: a
// character cut between two chunks is carried to the next one.
type jsonLine struct {
	out   []byte
	carry []byte
}

// encode returns the encoding of chunk; the returned slice is valid until
// the next call. With last, it drops the line's final '\n' and closes the
// object.
func (j *jsonLine) encode(chunk []byte, last bool) []byte {
	if len(j.carry) > 0 {
		chunk = append(j.carry, chunk...)
		j.carry = nil
	}
	if last && len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
		chunk = chunk[:len(chunk)-1]
	}
	out := j.out
	for i := 0; i < len(chunk); {
		c := chunk[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			out = appendEscape(out, c)
			i++
			continue
		}
		if !last && !utf8.FullRune(chunk[i:]) {
			j.carry = append([]byte(nil), chunk[i:]...)
			break
		}
		r, size := utf8.DecodeRune(chunk[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			out = append(out, `\u202`...)
			out = append(out, "89"[r-'\u2028'])
		default:
			out = append(out, chunk[i:i+size]...)
		}
		i += size
	}
	if last {
		out = append(out, "\"}\n"...)
	}
	j.out = out[:0]
	return out
}

func appendEscape(out []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(out, '\\', c)
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}
