// Package problem turns errors into HTTP statuses and RFC 9457
// application/problem+json bodies, in one place for every server of the
// project (shard, router) and for the bodies NGINX answers with.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/lineserver/lineserver/internal/lineno"
)

// ContentType is the media type of every error body.
const ContentType = "application/problem+json"

// Errors of the HTTP surface that are not about line numbers.
var (
	ErrNotFound         = errors.New("no such resource")
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrUnavailable      = errors.New("service unavailable")
	ErrBadGateway       = errors.New("no replica of the shard answered")
	ErrGatewayTimeout   = errors.New("the shard did not answer in time")
)

// Details is an RFC 9457 problem details object.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

type kind struct{ slug, title string }

// kinds names each status this project answers with an error body.
func kindOf(status int) kind {
	switch status {
	case http.StatusBadRequest:
		return kind{"bad-line-number", "Not a line number"}
	case http.StatusNotFound:
		return kind{"not-found", "Not found"}
	case http.StatusMethodNotAllowed:
		return kind{"method-not-allowed", "Method not allowed"}
	case http.StatusRequestEntityTooLarge:
		return kind{"beyond-end", "Line beyond the end of the file"}
	case http.StatusMisdirectedRequest:
		return kind{"other-shard", "Line served by another shard"}
	case http.StatusBadGateway:
		return kind{"bad-gateway", "Shard unavailable"}
	case http.StatusServiceUnavailable:
		return kind{"unavailable", "Service unavailable"}
	case http.StatusGatewayTimeout:
		return kind{"gateway-timeout", "Shard timed out"}
	case http.StatusInternalServerError:
		return kind{"internal", "Internal error"}
	}
	return kind{"http-" + strconv.Itoa(status), http.StatusText(status)}
}

// Status maps an error to its HTTP status. Errors it does not know are 500.
func Status(err error) int {
	switch {
	case errors.Is(err, lineno.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, lineno.ErrBeyondEnd):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, lineno.ErrNotHere):
		return http.StatusMisdirectedRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrBadGateway):
		return http.StatusBadGateway
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrGatewayTimeout):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// New returns the problem details for status. An empty detail gets the
// generic text of the status.
func New(status int, detail string) Details {
	k := kindOf(status)
	if detail == "" {
		detail = genericDetail(status)
	}
	return Details{Type: "urn:lineserver:problem:" + k.slug, Title: k.title, Status: status, Detail: detail}
}

func genericDetail(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "a line number is a nonzero decimal integer; negative numbers count from the end"
	case http.StatusNotFound:
		return "the only resources are /lines/{n}, /healthz, /readyz and /metrics"
	case http.StatusMethodNotAllowed:
		return "use GET or HEAD"
	case http.StatusRequestEntityTooLarge:
		return "the line number is beyond the end of the file"
	case http.StatusInternalServerError:
		return "the line could not be read; the error is in the server's log"
	}
	return http.StatusText(status)
}

// Body is the JSON encoding of New(status, detail), with a final newline.
func Body(status int, detail string) []byte {
	b, err := json.Marshal(New(status, detail))
	if err != nil {
		panic(err) // a struct of strings and an int always encodes
	}
	return append(b, '\n')
}

// BadRequest is the body of a front door's own 400 for a request that is
// not valid HTTP/1.1 (no Host header, two of them): not a bad line number,
// so it has a type and title of its own.
func BadRequest() []byte {
	b, err := json.Marshal(Details{
		Type:   "urn:lineserver:problem:bad-request",
		Title:  "Bad request",
		Status: http.StatusBadRequest,
		Detail: "the request is not valid HTTP/1.1, for example it has no Host header or two",
	})
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// BodyTooLarge is the body of NGINX's own 413 for a request body over
// limit (GET and HEAD have no use for one). It shares its status with a
// line beyond the end of the file, so it has a type and title of its own.
func BodyTooLarge(limit string) []byte {
	b, err := json.Marshal(Details{
		Type:   "urn:lineserver:problem:body-too-large",
		Title:  "Request body too large",
		Status: http.StatusRequestEntityTooLarge,
		Detail: "GET and HEAD take no body; this server refuses one over " + limit,
	})
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// Write answers with status and the problem body for detail.
func Write(w http.ResponseWriter, status int, detail string) {
	body := Body(status, detail)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	h.Del("Cache-Control")
	w.WriteHeader(status)
	w.Write(body)
}

// WriteError answers with the status of err and returns it. Only the texts
// of client errors (4xx), which this project words for the client, reach
// the body; a server error gets the generic text of its status, and its
// details belong in the caller's log.
func WriteError(w http.ResponseWriter, err error) int {
	status := Status(err)
	detail := ""
	if status < 500 {
		detail = err.Error()
	}
	Write(w, status, detail)
	return status
}
