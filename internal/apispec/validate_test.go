package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

func init() {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", ndjsonDecoder)
}

// ndjsonDecoder decodes an NDJSON body for the validator as the array of
// its values, one per line, each line ending with '\n'.
func ndjsonDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		return nil, errors.New("NDJSON: the last line does not end with '\\n'")
	}
	out := []any{}
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("NDJSON line %q: %w", line, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// specPath is the description the test checks.
const specPath = "../../docs/openapi.yaml"

// apiHeaders are the headers of the API: an answer that carries one its
// description does not list is not described. (Other headers, Date,
// Content-Length and the like, belong to HTTP.)
var apiHeaders = []string{"ETag", "Cache-Control", "Vary", "Allow", "Retry-After", "Link"}

// exchange is one request sent to a server and the answer it got.
type exchange struct {
	server  string // "shard" or "router"
	method  string
	path    string // with the query, as sent
	header  http.Header
	invalid bool // the request breaks the description (a 400 is due)

	status  int
	rheader http.Header
	body    []byte
}

func (ex exchange) String() string {
	return fmt.Sprintf("%s %s %s -> %d", ex.server, ex.method, ex.path, ex.status)
}

// request rebuilds the request of ex for the validator.
func (ex exchange) request() *http.Request {
	req, err := http.NewRequest(ex.method, "http://127.0.0.1"+ex.path, nil)
	if err != nil {
		panic(err)
	}
	req.Header = ex.header.Clone()
	return req
}

// spec is a loaded description and its routers.
type spec struct {
	doc    *openapi3.T
	router routers.Router
	// ranges routes the range path alone. The router tries templates with
	// fewer variables first, so /lines/{n} would take /lines/1..5 (whose
	// n its pattern then refuses): a path with ".." is routed here first.
	ranges routers.Router
}

func loadSpec(raw []byte) (*spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml is not a valid description: %w", err)
	}
	// The servers are where a user finds them; the test's are on other
	// ports, and routing on the path alone is what it checks.
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	// The same path items, so that remove changes what both route to.
	rdoc := *doc
	rdoc.Paths = openapi3.NewPaths()
	for path, item := range doc.Paths.Map() {
		if strings.Contains(path, "..") {
			rdoc.Paths.Set(path, item)
		}
	}
	rr, err := gorillamux.NewRouter(&rdoc)
	if err != nil {
		return nil, err
	}
	return &spec{doc: doc, router: r, ranges: rr}, nil
}

// findRoute routes req: a path with ".." to the range path if it fits its
// template, everything else (and what does not fit) as the router does.
func (s *spec) findRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	if strings.Contains(req.URL.Path, "..") {
		route, params, err := s.ranges.FindRoute(req)
		if !errors.Is(err, routers.ErrPathNotFound) {
			return route, params, err
		}
	}
	return s.router.FindRoute(req)
}

func readSpec() ([]byte, error) { return os.ReadFile(specPath) }

// key names a response of the description: the server that gave it, the
// method, the path template, the status, and the media type of its body
// when the description gives the response a body.
type key struct {
	server, method, path string
	status               int
	media                string
}

func (k key) String() string {
	s := fmt.Sprintf("%s %s %s %d", k.server, k.method, k.path, k.status)
	if k.media != "" {
		s += " " + k.media
	}
	return s
}

// Path templates of the answers the description names in extensions.
const unknownPath = "(x-unknown-path)"

// validate checks ex against the description: the request (it must break
// the description exactly when ex.invalid says so), the status, the
// servers that may give it, the headers, the media type and the body. It
// returns the key of the response that describes ex.
func (s *spec) validate(ex exchange) (key, error) {
	ctx := context.Background()
	k := key{server: ex.server, method: ex.method, status: ex.status}
	req := ex.request()
	route, params, err := s.findRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		k.method, k.path = "*", unknownPath
		route, err = s.extensionRoute(s.doc.Extensions, "x-unknown-path", unknownPath, http.StatusNotFound, req.Method)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		get := req.Clone(ctx)
		get.Method = http.MethodGet
		var r *routers.Route
		if r, _, err = s.findRoute(get); err == nil {
			k.method, k.path = "*", r.Path+" (x-other-methods)"
			route, err = s.extensionRoute(r.PathItem.Extensions, "x-other-methods", k.path, http.StatusMethodNotAllowed, req.Method)
		}
	case err == nil:
		k.path = route.Path
	}
	if err != nil {
		return k, fmt.Errorf("%v: no operation describes the request: %w", ex, err)
	}
	input := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if route.PathItem != nil { // a real operation, not an extension's
		reqErr := openapi3filter.ValidateRequest(ctx, input)
		switch {
		case ex.invalid && reqErr == nil:
			return k, fmt.Errorf("%v: the description accepts a request the test sends as invalid", ex)
		case !ex.invalid && reqErr != nil:
			return k, fmt.Errorf("%v: the request breaks the description: %w", ex, reqErr)
		}
	}

	ref := route.Operation.Responses.Status(ex.status)
	if ref == nil || ref.Value == nil {
		return k, fmt.Errorf("%v: status %d is not described for %s %s", ex, ex.status, ex.method, k.path)
	}
	resp := ref.Value
	if by := servedBy(resp); by != nil && !slices.Contains(by, ex.server) {
		return k, fmt.Errorf("%v: the description says only %v give this answer", ex, by)
	}
	if err := checkHeaders(resp, ex.rheader); err != nil {
		return k, fmt.Errorf("%v: %w", ex, err)
	}
	if ex.method == http.MethodHead || ex.status == http.StatusNotModified {
		// No body; kin-openapi validates neither (it skips HEAD and 304),
		// so the status and headers above are the whole check.
		if len(ex.body) > 0 {
			return k, fmt.Errorf("%v: a body on an answer that has none", ex)
		}
		return k, nil
	}
	if len(resp.Content) == 0 {
		if len(ex.body) > 0 {
			return k, fmt.Errorf("%v: a body the description does not describe", ex)
		}
		return k, nil
	}
	k.media = mediaKey(resp.Content, ex.rheader.Get("Content-Type"))
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 ex.status,
		Header:                 ex.rheader,
		Body:                   io.NopCloser(bytes.NewReader(ex.body)),
		Options:                input.Options,
	})
	if err != nil {
		return k, fmt.Errorf("%v: %w", ex, err)
	}
	return k, nil
}

// extensionRoute is a route whose one operation has the one response that
// the extension name of ext names among the components' responses.
func (s *spec) extensionRoute(ext map[string]any, name, path string, status int, method string) (*routers.Route, error) {
	comp, _ := ext[name].(string)
	ref := s.doc.Components.Responses[comp]
	if ref == nil {
		return nil, fmt.Errorf("%s names no response of the components (%q)", name, comp)
	}
	op := &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(status, ref))}
	return &routers.Route{Spec: s.doc, Path: path, Method: method, Operation: op}, nil
}

// servedBy is the response's x-served-by list, or nil for every server.
func servedBy(resp *openapi3.Response) []string {
	list, ok := resp.Extensions["x-served-by"].([]any)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range list {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// checkHeaders checks the described headers of an answer (required ones
// present, each value valid), and that it carries no header of the API
// its description does not list.
func checkHeaders(resp *openapi3.Response, h http.Header) error {
	described := map[string]bool{}
	for name, ref := range resp.Headers {
		described[http.CanonicalHeaderKey(name)] = true
		v := h.Get(name)
		if v == "" {
			if ref.Value.Required {
				return fmt.Errorf("header %s is required and missing", name)
			}
			continue
		}
		if ref.Value.Schema != nil {
			if err := ref.Value.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
				return fmt.Errorf("header %s: %q: %w", name, v, err)
			}
		}
	}
	for _, name := range apiHeaders {
		if h.Get(name) != "" && !described[http.CanonicalHeaderKey(name)] {
			return fmt.Errorf("header %s: %q, which the description of this answer does not list", name, h.Get(name))
		}
	}
	return nil
}

// mediaKey is the key of content that a Content-Type value falls under.
func mediaKey(content openapi3.Content, contentType string) string {
	mt := content.Get(contentType)
	for k, v := range content {
		if v == mt {
			return k
		}
	}
	return "(none for " + contentType + ")"
}

// described lists every response of the description, with each of its
// media types, for each server that gives it: what the test must reach.
func (s *spec) described() map[key]bool {
	out := map[key]bool{}
	servers := []string{"shard", "router"}
	add := func(method, path string, status int, resp *openapi3.Response) {
		by := servedBy(resp)
		if by == nil {
			by = servers
		}
		for _, srv := range by {
			if method == http.MethodHead || len(resp.Content) == 0 {
				out[key{srv, method, path, status, ""}] = true
				continue
			}
			for media := range resp.Content {
				out[key{srv, method, path, status, media}] = true
			}
		}
	}
	for path, item := range s.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, ref := range op.Responses.Map() {
				status, err := strconv.Atoi(code)
				if err != nil {
					continue // "default" or "4XX": none here
				}
				add(method, path, status, ref.Value)
			}
		}
		if name, ok := item.Extensions["x-other-methods"].(string); ok {
			if ref := s.doc.Components.Responses[name]; ref != nil {
				add("*", path+" (x-other-methods)", http.StatusMethodNotAllowed, ref.Value)
			}
		}
	}
	if name, ok := s.doc.Extensions["x-unknown-path"].(string); ok {
		if ref := s.doc.Components.Responses[name]; ref != nil {
			add("*", unknownPath, http.StatusNotFound, ref.Value)
		}
	}
	return out
}

// remove deletes the response of k from the description: from its
// operation, or the extension that names it.
func (s *spec) remove(k key) {
	switch {
	case k.path == unknownPath:
		delete(s.doc.Extensions, "x-unknown-path")
	case strings.HasSuffix(k.path, " (x-other-methods)"):
		item := s.doc.Paths.Value(strings.TrimSuffix(k.path, " (x-other-methods)"))
		delete(item.Extensions, "x-other-methods")
	default:
		s.doc.Paths.Value(k.path).GetOperation(k.method).Responses.Delete(strconv.Itoa(k.status))
	}
}
