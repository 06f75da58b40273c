// Package router is the Go front door: it answers GET /lines/{n} by sending
// the request to a healthy replica of the shard that owns line n, as listed
// in the shard manifest, and streams the shard's answer back unchanged. A
// range of lines, /lines/{a}..{b}, it answers whole: from the one shard
// that serves it, or part after part from each shard it spans (ranges.go).
//
// The package decides where a request goes: which shard owns the line,
// which replica is healthy, whether to retry. HTTP itself, on both sides,
// is fasthttp's: its Server answers the clients (see Server) and its
// HostClient keeps the connections to each replica.
package router

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/problem"
)

// Defaults of the zero Options.
const (
	DefaultHealthInterval        = time.Second
	DefaultHealthTimeout         = 500 * time.Millisecond
	DefaultHealthPath            = "/readyz"
	DefaultRecheckInterval       = 250 * time.Millisecond
	DefaultConnectTimeout        = 300 * time.Millisecond
	DefaultResponseHeaderTimeout = 10 * time.Second
)

// bodyWriteTimeout bounds each write of a relayed body after its first,
// counted from its start, as NGINX's send_timeout and as the shard bounds
// each chunk of a long line: a line of gigabytes reaches a client that
// keeps reading, however long it takes in all, and one that stops reading
// is let go.
const bodyWriteTimeout = 30 * time.Second

// maxConnsPerServer bounds the connections kept to a server: a pooled
// one for each of 1000 concurrent clients, with room to spare. A request
// that finds them all busy waits for one up to the response timeout.
const maxConnsPerServer = 1024

// Options tune a Router. The zero value is ready to use: every zero field
// takes its default.
type Options struct {
	// Logger receives the router's logs; nil discards them. Requests are
	// logged at debug level only; replica health changes at info and warn.
	Logger *slog.Logger
	// Registry receives the router's metrics and is served on /metrics;
	// nil makes a new registry for this router alone.
	Registry *prometheus.Registry
	// HealthInterval is the time between two checks of each replica's
	// /readyz; 0 means DefaultHealthInterval.
	HealthInterval time.Duration
	// RecheckInterval is the time between two checks of an ejected
	// replica, so that a restarted one is back soon; 0 means
	// DefaultRecheckInterval, or HealthInterval if that is shorter.
	RecheckInterval time.Duration
	// HealthTimeout bounds one check; 0 means DefaultHealthTimeout.
	HealthTimeout time.Duration
	// HealthPath is the path checked on each replica; "" means
	// DefaultHealthPath. Shards answer /ready too, for replicas behind
	// Cloud Run's front end, which keeps some paths ending in z for itself.
	HealthPath string
	// ConnectTimeout bounds a connection to a replica; 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a replica's response
	// headers, and then for each read of its body, before the router
	// answers 504 or breaks off; 0 means DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// TLSConfig is for https replicas; nil means the system's roots and
	// each replica's host name.
	TLSConfig *tls.Config
}

// Router routes line requests to the shards of a manifest. Create it with
// New, serve it with a Server; Run performs the active health checks.
type Router struct {
	total    int64
	manifest *manifest.Manifest
	shards   []*shard
	log      *slog.Logger
	metrics  *metrics
	metricsH fasthttp.RequestHandler
	opts     Options
	draining atomic.Bool
}

// New returns a router for the shards of m. Every replica counts as healthy
// until a check or a failed request says otherwise.
func New(m *manifest.Manifest, opts Options) (*Router, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	opts.Registry = cmp.Or(opts.Registry, prometheus.NewRegistry())
	setDefault(&opts.HealthInterval, DefaultHealthInterval)
	setDefault(&opts.RecheckInterval, min(DefaultRecheckInterval, opts.HealthInterval))
	setDefault(&opts.HealthTimeout, DefaultHealthTimeout)
	setDefault(&opts.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	opts.HealthPath = cmp.Or(opts.HealthPath, DefaultHealthPath)
	if !strings.HasPrefix(opts.HealthPath, "/") {
		return nil, fmt.Errorf("health path %q: must start with /", opts.HealthPath)
	}
	met, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	rt := &Router{
		total:    m.TotalLines,
		manifest: m,
		log:      opts.Logger,
		metrics:  met,
		metricsH: fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})),
		opts:     opts,
	}
	servers := map[string]*server{}
	for _, s := range m.Shards {
		sh := &shard{name: s.Name, counts: met.shardCounts(s.Name), latency: met.latency.WithLabelValues(s.Name)}
		for _, raw := range s.URLs {
			u, _ := url.Parse(raw) // m.Validate checked it
			srv := servers[serverKey(u)]
			if srv == nil {
				srv = newServer(u, opts)
				servers[serverKey(u)] = srv
			}
			sh.replicas = append(sh.replicas, newReplica(sh.name, u, srv, met, opts))
		}
		rt.shards = append(rt.shards, sh)
	}
	return rt, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Handle answers /lines/{n}, /healthz, /readyz (also as /ready, as a
// shard does, for Cloud Run's front end) and /metrics. It is the handler a
// Server runs.
func (rt *Router) Handle(ctx *fasthttp.RequestCtx) {
	if status, ok := refuse(ctx); !ok {
		ctx.Response.SetConnectionClose()
		ctx.Error(fasthttp.StatusMessage(status), status)
		return
	}
	if ctx.IsOptions() && string(ctx.RequestURI()) == "*" {
		return // OPTIONS * asks about the server: 200, as net/http answers
	}
	path := ctx.Path() // decoded, without dot segments
	if uri := ctx.RequestURI(); bytes.IndexByte(uri, '#') >= 0 {
		// fasthttp drops a fragment, which has no place in a request; the
		// shards take it for part of the path, and so does the router.
		uri, _, _ = bytes.Cut(uri, []byte("?"))
		if i := bytes.IndexByte(uri, '#'); i >= 0 {
			path = append(path[:len(path):len(path)], uri[i:]...)
		}
	}
	// The method first, as a shard checks it, on /lines/ and the paths
	// that exist; any other path is 404.
	p := string(path)
	raw, lines := strings.CutPrefix(p, "/lines/")
	known := lines || p == "/healthz" || p == "/readyz" || p == "/ready" || p == "/metrics"
	switch {
	case known && !allowed(ctx):
		if lines {
			rt.metrics.own(fasthttp.StatusMethodNotAllowed)
		}
	case !known || lines && strings.IndexByte(raw, '/') >= 0:
		// string(path) again, not p: p stays on the stack.
		rt.metrics.own(writeError(ctx, fmt.Errorf("%q: %w", truncate(string(path)), problem.ErrNotFound)))
	case lines && lineno.IsRange(raw):
		rt.serveRange(ctx, raw)
	case lines:
		rt.serveLine(ctx, raw)
	case p == "/healthz":
		writeText(ctx, fasthttp.StatusOK, "ok\n")
	case p == "/metrics":
		rt.metricsH(ctx)
	default:
		rt.serveReady(ctx)
	}
}

// allowed answers 405 to methods other than GET and HEAD.
func allowed(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Response.Header.Set("Allow", "GET, HEAD")
	writeError(ctx, fmt.Errorf("%w: %s", problem.ErrMethodNotAllowed, truncate(string(ctx.Method()))))
	return false
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func writeText(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(body)
}

// writeProblem answers status with an application/problem+json body.
func writeProblem(ctx *fasthttp.RequestCtx, status int, detail string) {
	h := &ctx.Response.Header
	h.SetContentType(problem.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	h.Del("Cache-Control")
	ctx.SetStatusCode(status)
	ctx.SetBody(problem.Body(status, detail))
}

// writeError answers with the status of err and returns it. As
// problem.WriteError, only the texts of client errors reach the body.
func writeError(ctx *fasthttp.RequestCtx, err error) int {
	status := problem.Status(err)
	detail := ""
	if status < 500 {
		detail = err.Error()
	}
	writeProblem(ctx, status, detail)
	return status
}

// serveLine answers 400 and 413 itself and proxies every other request to
// the shard that owns the line, asking it for the positive line number.
func (rt *Router) serveLine(ctx *fasthttp.RequestCtx, raw string) {
	n, err := lineno.Parse(raw)
	if err == nil {
		n, err = lineno.Resolve(n, rt.total)
	}
	if err != nil {
		rt.metrics.own(writeError(ctx, err))
		return
	}
	i, _ := rt.manifest.Find(n) // a validated manifest covers 1..total
	var buf [32]byte
	rt.proxy(ctx, rt.shards[i], strconv.AppendInt(append(buf[:0], "/lines/"...), n, 10), 0)
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop
// sending new requests while the server shuts down.
func (rt *Router) Drain() { rt.draining.Store(true) }

// serveReady answers 200 while every shard has at least one healthy
// replica and the router is not draining, and 503 saying why otherwise.
func (rt *Router) serveReady(ctx *fasthttp.RequestCtx) {
	var down []string
	for _, s := range rt.shards {
		if !s.anyHealthy() {
			down = append(down, s.name)
		}
	}
	// As a shard's: a problem carries no Cache-Control (a 503 is not
	// cached by default), and docs/openapi.yaml describes it so.
	switch {
	case rt.draining.Load():
		writeProblem(ctx, fasthttp.StatusServiceUnavailable, "the router is shutting down")
	case len(down) > 0:
		writeProblem(ctx, fasthttp.StatusServiceUnavailable, "no healthy replica of "+strings.Join(down, ", "))
	default:
		writeText(ctx, fasthttp.StatusOK, "ready\n")
	}
}
