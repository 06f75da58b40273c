package router

import "bytes"

// headVerdict is what parseHead makes of the bytes of a request head.
type headVerdict uint8

const (
	// headIncomplete: the bytes so far could start a plain request; more
	// are needed to tell.
	headIncomplete headVerdict = iota
	// headPlain: a complete plain request head; the fast path answers it.
	headPlain
	// headOther: anything else; net/http answers it.
	headOther
)

// maxValues bounds how many Accept or If-None-Match fields a plain head
// may have; a request with more is not plain.
const maxValues = 4

// span is a range of bytes of the head.
type span struct{ start, end int32 }

func (s span) of(b []byte) []byte { return b[s.start:s.end] }

// reqHead is what the fast path keeps of a plain request head: offsets into
// the bytes parseHead was given, valid until they are discarded.
type reqHead struct {
	size    int  // bytes of the head, final blank line included
	head    bool // HEAD, not GET
	close   bool // Connection: close
	line    span // the line number: an optional '-' and digits
	accept  [maxValues]span
	inm     [maxValues]span
	nAccept int
	nINM    int
}

// parseHead tells whether b starts with a plain request head, the only kind
// the fast path answers:
//
//	GET or HEAD, an origin-form target /lines/N where N is digits with an
//	optional leading '-' (no '%', '?', '#' or anything else), HTTP/1.1,
//	lines that end in CRLF, every field name a token followed at once by
//	':', every value free of control characters but HTAB, exactly one Host
//	(of letters, digits and ".-_:[]"), no Transfer-Encoding, Expect or
//	Upgrade, Content-Length only as a single "0", Connection only with
//	"close" and "keep-alive", and at most maxValues Accept and
//	If-None-Match fields each.
//
// Anything else is headOther, decided as early as the bytes allow, so that
// net/http (which takes over such a connection) answers it exactly as it
// would have without the fast path. A head longer than b can hold is the
// caller's to judge: parseHead only says headIncomplete. On headPlain, h
// holds the head's fields; otherwise h is undefined.
func parseHead(b []byte, h *reqHead) headVerdict {
	*h = reqHead{}
	// The request line, checked byte by byte as far as it has come.
	i := 0
	switch {
	case hasPrefixOrIsPrefix(b, "GET /lines/"):
		i = len("GET /lines/")
	case hasPrefixOrIsPrefix(b, "HEAD /lines/"):
		i = len("HEAD /lines/")
		h.head = true
	default:
		return headOther
	}
	if i > len(b) {
		return headIncomplete
	}
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == len(b) {
		return headIncomplete
	}
	if i == digits {
		return headOther // no digit
	}
	h.line = span{int32(start), int32(i)}
	const version = " HTTP/1.1\r\n"
	if !hasPrefixOrIsPrefix(b[i:], version) {
		return headOther
	}
	i += len(version)
	if i > len(b) {
		return headIncomplete
	}

	hosts := 0
	contentLength := false
	for {
		// A field line, or the blank line that ends the head.
		rest := b[i:]
		if len(rest) == 0 {
			return headIncomplete
		}
		if rest[0] == '\r' {
			if len(rest) == 1 {
				return headIncomplete
			}
			if rest[1] != '\n' || hosts != 1 {
				return headOther
			}
			h.size = i + 2
			return headPlain
		}
		// The name: one or more token characters, then ':'.
		n := 0
		for n < len(rest) && isTokenChar(rest[n]) {
			n++
		}
		if n == len(rest) {
			return headIncomplete
		}
		if n == 0 || rest[n] != ':' {
			return headOther
		}
		name := rest[:n]
		// The value: no control character but HTAB, up to CRLF.
		v := n + 1
		end := v
		for end < len(rest) && (rest[end] >= 0x20 && rest[end] != 0x7f || rest[end] == '\t') {
			end++
		}
		if end == len(rest) || end+1 == len(rest) && rest[end] == '\r' {
			return headIncomplete
		}
		if rest[end] != '\r' || rest[end+1] != '\n' {
			return headOther
		}
		// Trim the optional whitespace around the value, as net/http does.
		for v < end && (rest[v] == ' ' || rest[v] == '\t') {
			v++
		}
		e := end
		for e > v && (rest[e-1] == ' ' || rest[e-1] == '\t') {
			e--
		}
		value := span{int32(i + v), int32(i + e)}
		switch {
		case equalFold(name, "host"):
			hosts++
			if !validHost(value.of(b)) {
				return headOther
			}
		case equalFold(name, "accept"):
			if h.nAccept == maxValues {
				return headOther
			}
			h.accept[h.nAccept] = value
			h.nAccept++
		case equalFold(name, "if-none-match"):
			if h.nINM == maxValues {
				return headOther
			}
			h.inm[h.nINM] = value
			h.nINM++
		case equalFold(name, "connection"):
			if !connectionTokens(value.of(b), &h.close) {
				return headOther
			}
		case equalFold(name, "content-length"):
			if contentLength || string(value.of(b)) != "0" {
				return headOther
			}
			contentLength = true
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"), equalFold(name, "upgrade"):
			return headOther
		}
		i += end + 2
	}
}

// hasPrefixOrIsPrefix reports whether b starts with p, or is shorter and
// is the start of p.
func hasPrefixOrIsPrefix(b []byte, p string) bool {
	if len(b) >= len(p) {
		return string(b[:len(p)]) == p
	}
	return string(b) == p[:len(b)]
}

// equalFold reports whether name is lower, ignoring ASCII case; lower is
// in lower case.
func equalFold(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may be part of a field name (RFC 9110
// section 5.6.2).
func isTokenChar(c byte) bool {
	return c < 0x80 && tokenChars[c]
}

var tokenChars = func() (t [0x80]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validHost reports whether a Host value is one the fast path takes: not
// empty, of letters, digits and ".-_:[]". net/http judges any other.
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// connectionTokens reads a Connection value, setting *close on "close"; it
// reports false for any token but "close" and "keep-alive".
func connectionTokens(v []byte, close *bool) bool {
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		tok = bytes.Trim(tok, " \t")
		switch {
		case len(tok) == 0:
		case equalFold(tok, "close"):
			*close = true
		case equalFold(tok, "keep-alive"):
		default:
			return false
		}
	}
	return true
}
