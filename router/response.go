package router

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// smallBody is how much of a body without Content-Length the fast path
// holds back before it commits to chunked encoding: as net/http does
// (bufferBeforeChunkingSize), a body that ends within it gets a
// Content-Length instead.
const smallBody = 2048

// fastResponse is the http.ResponseWriter of the fast path: one per
// connection, reused for each of its requests. It writes an HTTP/1.1
// response to the connection's buffered writer with the headers net/http
// would send for the same handler calls: Date, Content-Length or chunked
// encoding, a sniffed Content-Type when none is set, Connection: close
// when the connection ends after it, none of the body headers a 304, 204
// or 1xx may not have, and no body for HEAD.
//
// It is also a headerSink: the proxy gives it the fields of a replica's
// response, which it keeps as the lines they will be sent as, in the
// order the replica sent them, rather than in its Header map; net/http
// would send them sorted by name, as a Go shard sends them. The fields set
// in the map go first, sorted. (Unlike net/http's, changes to the map
// after WriteHeader still count until the headers are written; the
// router makes none.)
type fastResponse struct {
	bw     *bufio.Writer
	header http.Header
	// fields are the relayed fields as they will be written, one
	// "Key: value\r\n" line each, which index lists.
	fields []byte
	index  []relayedField
	// date is the Date value of the second dateSec, kept per connection
	// so that it is formatted once a second at most.
	date    [len(http.TimeFormat)]byte
	dateSec int64

	// Per request.
	isHEAD        bool
	closeAfter    bool // the connection ends after this response
	status        int
	wroteHeader   bool // WriteHeader was called
	committed     bool // the status line and headers are in bw
	chunking      bool
	contentLength int64 // from the handler's Content-Length, or -1
	written       int64
	held          []byte // body held back before the headers are committed
	err           error  // the first error writing to the client
	onError       func() // called once on that error
	lenBuf        [20]byte
	// draining, when set, ends the connection after the response, as
	// net/http does while it shuts down.
	draining *atomic.Bool
	// extendWrite, when set, moves the connection's write deadline.
	extendWrite func(time.Time)
}

// SetWriteDeadline moves the connection's write deadline to t, as
// http.ResponseController does for net/http's response writer: a long body
// extends it as it goes.
func (w *fastResponse) SetWriteDeadline(t time.Time) error {
	if w.extendWrite == nil {
		return http.ErrNotSupported
	}
	w.extendWrite(t)
	return nil
}

// relayedField is a line of fastResponse.fields.
type relayedField struct {
	key        string
	start, end int
	dropped    bool
}

func newFastResponse(bw *bufio.Writer, onError func()) *fastResponse {
	return &fastResponse{bw: bw, header: make(http.Header, 8), held: make([]byte, 0, smallBody), onError: onError}
}

// begin readies w for a new request.
func (w *fastResponse) begin(isHEAD, closeAfter bool) {
	clear(w.header)
	w.reset()
	w.isHEAD, w.closeAfter = isHEAD, closeAfter
	w.status, w.wroteHeader, w.committed, w.chunking = 0, false, false, false
	w.contentLength, w.written = -1, 0
	w.held = w.held[:0]
}

func (w *fastResponse) Header() http.Header { return w.header }

func (w *fastResponse) add(key string, v []byte) {
	start := len(w.fields)
	w.fields = append(w.fields, key...)
	w.fields = append(w.fields, ": "...)
	at := len(w.fields)
	w.fields = append(w.fields, v...)
	if bytes.IndexByte(v, '\r') >= 0 {
		for i, c := range w.fields[at:] {
			if c == '\r' {
				w.fields[at+i] = ' ' // as http.Header.Write does
			}
		}
	}
	w.fields = append(w.fields, "\r\n"...)
	w.index = append(w.index, relayedField{key: key, start: start, end: len(w.fields)})
}

func (w *fastResponse) drop(key string) {
	for i := range w.index {
		if w.index[i].key == key {
			w.index[i].dropped = true
		}
	}
}

func (w *fastResponse) reset() {
	w.fields = w.fields[:0]
	w.index = w.index[:0]
}

// relayed returns the value of the first relayed field of key.
func (w *fastResponse) relayed(key string) ([]byte, bool) {
	for _, f := range w.index {
		if f.key == key && !f.dropped {
			return w.fields[f.start+len(key)+2 : f.end-2], true
		}
	}
	return nil, false
}

// has reports whether key is set or relayed.
func (w *fastResponse) has(key string) bool {
	if _, ok := w.header[key]; ok {
		return true
	}
	_, ok := w.relayed(key)
	return ok
}

// del removes key, set or relayed.
func (w *fastResponse) del(key string) {
	delete(w.header, key)
	w.drop(key)
}

// WriteHeader records the status; the headers go out with the first body
// bytes that must be written, or when the response ends. Interim (1xx)
// statuses but 101 are written at once, as net/http does.
func (w *fastResponse) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		writeStatusLine(w.bw, code)
		w.header.WriteSubset(w.bw, map[string]bool{"Content-Length": true, "Transfer-Encoding": true})
		w.bw.WriteString("\r\n")
		w.flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := first(w.header, "Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			delete(w.header, "Content-Length")
		}
	} else if cl, ok := w.relayed("Content-Length"); ok {
		if v, ok := parseLength(cl); ok {
			w.contentLength = v
		} else {
			w.drop("Content-Length")
		}
	}
}

// parseLength parses a Content-Length value without allocating.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// first is h.Get(key) for a key in canonical form.
func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (w *fastResponse) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	n := len(p)
	if !w.committed {
		// Hold the body back while its headers may still depend on it, as
		// net/http's buffer before its chunkWriter does: a Content-Type to
		// sniff, or a Content-Length to set if the body ends soon.
		if w.contentLength != -1 && w.has("Content-Type") {
			w.commit(p, false)
		} else if len(w.held)+len(p) <= smallBody {
			w.held = append(w.held, p...)
			return n, nil
		} else if len(w.held) == 0 {
			w.commit(p, false)
		} else {
			k := smallBody - len(w.held)
			w.held = append(w.held, p[:k]...)
			p = p[k:]
			w.commit(w.held, false)
			w.writeBody(w.held)
			w.held = w.held[:0]
		}
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

// writeBody writes body bytes after the headers, as a chunk when chunking;
// a HEAD response drops them.
func (w *fastResponse) writeBody(p []byte) {
	if w.isHEAD || len(p) == 0 {
		return
	}
	if w.chunking {
		w.bw.Write(strconv.AppendInt(w.lenBuf[:0], int64(len(p)), 16))
		w.bw.WriteString("\r\n")
		w.bw.Write(p)
		w.bw.WriteString("\r\n")
	} else {
		w.bw.Write(p)
	}
	w.noteError()
}

// finish ends the response: it commits the headers if no body did, and
// ends a chunked body. It reports whether the connection may carry
// another request.
func (w *fastResponse) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.held, true)
		w.writeBody(w.held)
		w.held = w.held[:0]
	}
	if w.chunking && !w.isHEAD {
		w.bw.WriteString("0\r\n\r\n")
	}
	w.noteError()
	if !w.isHEAD && w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.contentLength != w.written {
		return false // a body shorter than announced: the client cannot tell where the next response starts
	}
	return !w.closeAfter && w.err == nil
}

// commit writes the status line and the headers, given the first bytes
// of the body and whether they are all of it: net/http's
// chunkWriter.writeHeader for an HTTP/1.1 request that has no body.
func (w *fastResponse) commit(p []byte, done bool) {
	w.committed = true
	h := w.header
	te := first(h, "Transfer-Encoding")
	hasTE := te != ""
	var setLength []byte
	if done && !hasTE && bodyAllowedForStatus(w.status) && !w.has("Content-Length") && (!w.isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		setLength = strconv.AppendInt(w.lenBuf[:0], int64(len(p)), 10)
	}
	if first(h, "Connection") == "close" || w.draining != nil && w.draining.Load() {
		w.closeAfter = true
	}
	hasCL := w.contentLength != -1
	var contentType string
	if bodyAllowedForStatus(w.status) {
		if !w.has("Content-Type") && !w.encoded() && !hasTE && len(p) > 0 {
			contentType = http.DetectContentType(p)
		}
	} else {
		if w.status == http.StatusNotModified {
			w.del("Content-Type")
		}
		w.del("Content-Length")
		w.del("Transfer-Encoding")
	}
	if hasCL && hasTE && te != "identity" {
		w.del("Content-Length")
		hasCL = false
	}
	chunked := false
	switch {
	case w.isHEAD || !bodyAllowedForStatus(w.status):
		w.del("Transfer-Encoding")
	case hasCL:
		w.del("Transfer-Encoding")
	case te == "identity":
		w.closeAfter = true
		w.del("Transfer-Encoding")
	default:
		w.chunking = true
		chunked = true
		w.del("Transfer-Encoding")
		w.del("Content-Length")
	}
	if w.closeAfter {
		w.del("Connection")
	}

	bw := w.bw
	writeStatusLine(bw, w.status)
	if len(h) > 0 {
		h.WriteSubset(bw, nil)
	}
	for _, f := range w.index {
		if !f.dropped {
			bw.Write(w.fields[f.start:f.end])
		}
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(w.dateNow())
		bw.WriteString("\r\n")
	}
	if setLength != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(setLength)
		bw.WriteString("\r\n")
	}
	if contentType != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(contentType)
		bw.WriteString("\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
}

// encoded reports whether the response has a Content-Encoding.
func (w *fastResponse) encoded() bool {
	if first(w.header, "Content-Encoding") != "" {
		return true
	}
	v, ok := w.relayed("Content-Encoding")
	return ok && len(v) > 0
}

// dateNow is the Date value of now.
func (w *fastResponse) dateNow() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != w.dateSec {
		w.dateSec = sec
		now.UTC().AppendFormat(w.date[:0], http.TimeFormat)
	}
	return w.date[:]
}

// flush writes out what bw holds.
func (w *fastResponse) flush() {
	w.bw.Flush()
	w.noteError()
}

// noteError records the first error of bw, which bufio keeps once it
// happened, and reports it once.
func (w *fastResponse) noteError() {
	if w.err != nil {
		return
	}
	if _, err := w.bw.Write(nil); err != nil {
		w.err = err
		if w.onError != nil {
			w.onError()
		}
	}
}

// writeStatusLine writes the status line as net/http does.
func writeStatusLine(bw *bufio.Writer, code int) {
	if text := http.StatusText(code); text != "" {
		bw.WriteString("HTTP/1.1 ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
		return
	}
	fmt.Fprintf(bw, "HTTP/1.1 %03d status code %d\r\n", code, code)
}

// bodyAllowedForStatus reports whether a response of this status may have
// a body (RFC 9110 section 6.4.1).
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}
