// Package router is the Go front door: it answers GET /lines/{n} by sending
// the request to a healthy replica of the shard that owns line n, as listed
// in the shard manifest, and streams the shard's answer back unchanged.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	// DefaultBodyWriteTimeout bounds each write of a long body after its
	// first, as the shard bounds each chunk of a long line.
	DefaultBodyWriteTimeout = 30 * time.Second
	// DefaultMaxIdleConnsPerHost keeps a pooled connection per replica for
	// each of 1000 concurrent clients, with room to spare.
	DefaultMaxIdleConnsPerHost = 1024
)

// Options tune a Router. The zero value is ready to use: every zero field
// takes its default.
type Options struct {
	// Logger receives the router's logs; nil discards them. Requests are
	// logged at debug level only; replica health changes at info and warn.
	Logger *slog.Logger
	// Registry receives the router's metrics and is served on /metrics;
	// nil makes a new registry for this router alone.
	Registry *prometheus.Registry
	// Transport carries requests to the replicas; nil builds a pooled
	// keep-alive transport from ConnectTimeout, ResponseHeaderTimeout and
	// MaxIdleConnsPerHost. A Transport of its own ignores those three.
	Transport http.RoundTripper
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
	// ResponseHeaderTimeout bounds the wait for a replica's response headers
	// before the router answers 504; 0 means DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost bounds the idle connections kept per replica; 0
	// means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// BodyWriteTimeout bounds each write of a relayed body after its first,
	// counted from its start, as NGINX's send_timeout: a line of gigabytes
	// reaches a client that keeps reading, however long it takes in all,
	// past the server's WriteTimeout, and one that stops reading is let go.
	// 0 means DefaultBodyWriteTimeout.
	BodyWriteTimeout time.Duration
}

// Router routes line requests to the shards of a manifest. Create it with
// New; it is an http.Handler. Run performs the active health checks.
type Router struct {
	total     int64
	manifest  *manifest.Manifest
	shards    []*shard
	transport http.RoundTripper
	log       *slog.Logger
	metrics   *metrics
	metricsH  http.Handler
	opts      Options
	draining  atomic.Bool
}

// New returns a router for the shards of m. Every replica counts as healthy
// until a check or a failed request says otherwise.
func New(m *manifest.Manifest, opts Options) (*Router, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	setDefault(&opts.HealthInterval, DefaultHealthInterval)
	setDefault(&opts.RecheckInterval, min(DefaultRecheckInterval, opts.HealthInterval))
	setDefault(&opts.HealthTimeout, DefaultHealthTimeout)
	setDefault(&opts.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&opts.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDefault(&opts.BodyWriteTimeout, DefaultBodyWriteTimeout)
	if opts.HealthPath == "" {
		opts.HealthPath = DefaultHealthPath
	}
	if !strings.HasPrefix(opts.HealthPath, "/") {
		return nil, fmt.Errorf("health path %q: must start with /", opts.HealthPath)
	}
	if opts.MaxIdleConnsPerHost == 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	// With a transport of its own, the router uses it for every replica;
	// otherwise its lean client for plain http and a Transport for https
	// and the health checks.
	lean := opts.Transport == nil
	if lean {
		opts.Transport = NewTransport(opts.ConnectTimeout, opts.ResponseHeaderTimeout, opts.MaxIdleConnsPerHost)
	}
	met, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	rt := &Router{
		total:     m.TotalLines,
		manifest:  m,
		transport: opts.Transport,
		log:       opts.Logger,
		metrics:   met,
		metricsH:  promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}),
		opts:      opts,
	}
	for _, s := range m.Shards {
		sh := &shard{name: s.Name, counts: met.shardCounts(s.Name), latency: met.latency.WithLabelValues(s.Name)}
		for _, raw := range s.URLs {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("shard %s: url %q: %w", s.Name, raw, err)
			}
			rep := newReplica(sh.name, u, met, opts.HealthPath)
			if lean && u.Scheme == "http" {
				rep.pool = newConnPool(u, opts.ConnectTimeout, opts.ResponseHeaderTimeout, opts.MaxIdleConnsPerHost)
				rep.pool.bodyWrite = opts.BodyWriteTimeout
			}
			sh.replicas = append(sh.replicas, rep)
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

// NewTransport returns the pooled keep-alive transport the router uses by
// default: it never consults proxy settings of the environment, never asks
// for compression (bodies pass through byte for byte), and gives up on a
// connection after connect (patientDialTimeout for the second try at a lone
// replica) and on headers after responseHeader.
func NewTransport(connect, responseHeader time.Duration, idlePerHost int) *http.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialerFor(ctx, d).DialContext(ctx, network, addr)
		},
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect + time.Second,
		ResponseHeaderTimeout: responseHeader,
		DisableCompression:    true,
		WriteBufferSize:       4 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// ServeHTTP answers /lines/{n}, /healthz, /readyz (also as /ready, as a
// shard does, for Cloud Run's front end) and /metrics.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if raw, ok := strings.CutPrefix(path, "/lines/"); ok && strings.IndexByte(raw, '/') < 0 {
		if !allowed(w, r) {
			rt.metrics.own(http.StatusMethodNotAllowed)
			return
		}
		rt.serveLine(w, r, raw)
		return
	}
	switch path {
	case "/healthz", "/readyz", "/ready", "/metrics":
		if !allowed(w, r) {
			return
		}
	}
	switch path {
	case "/healthz":
		writeText(w, http.StatusOK, "ok\n")
	case "/readyz", "/ready":
		rt.serveReady(w)
	case "/metrics":
		rt.metricsH.ServeHTTP(w, r)
	default:
		rt.metrics.own(http.StatusNotFound)
		problem.WriteError(w, fmt.Errorf("%q: %w", truncate(path), problem.ErrNotFound))
	}
}

// allowed answers 405 to methods other than GET and HEAD.
func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	problem.WriteError(w, fmt.Errorf("%w: %s", problem.ErrMethodNotAllowed, truncate(r.Method)))
	return false
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// serveLine answers 400 and 413 itself and proxies every other request to
// the shard that owns the line, asking it for the positive line number.
func (rt *Router) serveLine(w http.ResponseWriter, r *http.Request, raw string) {
	n, err := lineno.Parse(raw)
	if err == nil {
		n, err = lineno.Resolve(n, rt.total)
	}
	if err != nil {
		rt.metrics.own(problem.WriteError(w, err))
		return
	}
	i, ok := rt.manifest.Find(n)
	if !ok { // a validated manifest covers 1..total
		rt.log.Error("no shard owns a line within the file", "line", n)
		rt.metrics.own(problem.WriteError(w, errors.New("manifest has no shard for the line")))
		return
	}
	rt.proxy(w, r, rt.shards[i], n)
}

// CloseIdleConnections closes the pooled connections to the replicas.
func (rt *Router) CloseIdleConnections() {
	for _, s := range rt.shards {
		for _, rep := range s.replicas {
			if rep.pool != nil {
				rep.pool.closeIdle()
			}
		}
	}
	if t, ok := rt.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop
// sending new requests while the server shuts down.
func (rt *Router) Drain() { rt.draining.Store(true) }

// Ready reports whether every shard has at least one healthy replica and
// the router is not draining; if not, the error says why.
func (rt *Router) Ready() error {
	if rt.draining.Load() {
		return errors.New("the router is shutting down")
	}
	var down []string
	for _, s := range rt.shards {
		if !s.anyHealthy() {
			down = append(down, s.name)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("no healthy replica of %s", strings.Join(down, ", "))
	}
	return nil
}

func (rt *Router) serveReady(w http.ResponseWriter) {
	if err := rt.Ready(); err != nil {
		w.Header().Set("Cache-Control", "no-store")
		problem.Write(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}

// slowChecksToEject is how many checks in a row must time out, with no
// request answered in between, before a replica is ejected for it: a
// replica under heavy load may answer /readyz late, and ejecting it would
// turn load into errors. A refused connection or a status other than 200
// ejects at once.
const slowChecksToEject = 3

// Run checks each replica's /readyz every HealthInterval, and each ejected
// one every RecheckInterval, until ctx ends, starting at once. A replica
// that answers 200 in time is healthy; a refused connection or another
// status ejects it until a later check passes, and so do
// slowChecksToEject timeouts in a row, connecting or answering.
func (rt *Router) Run(ctx context.Context) {
	t := time.NewTicker(rt.opts.RecheckInterval)
	defer t.Stop()
	var last time.Time
	for {
		if time.Since(last) >= rt.opts.HealthInterval-rt.opts.RecheckInterval/2 {
			last = time.Now()
			rt.checkAll(ctx, false)
		} else {
			rt.checkAll(ctx, true)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckHealth checks every replica once, concurrently, and returns when all
// checks are done.
func (rt *Router) CheckHealth(ctx context.Context) { rt.checkAll(ctx, false) }

// checkAll checks every replica, or only the ejected ones, concurrently.
func (rt *Router) checkAll(ctx context.Context, ejectedOnly bool) {
	var wg sync.WaitGroup
	for _, s := range rt.shards {
		for _, rep := range s.replicas {
			if ejectedOnly && rep.healthy.Load() {
				continue
			}
			wg.Go(func() { rt.check(ctx, rep) })
		}
	}
	wg.Wait()
}

func (rt *Router) check(ctx context.Context, rep *replica) {
	ctx, cancel := context.WithTimeout(ctx, rt.opts.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rep.readyz, nil)
	if err != nil {
		rt.setHealth(rep, false, err.Error())
		return
	}
	resp, err := rt.transport.RoundTrip(req)
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.Canceled):
		return // the router is stopping; keep the last verdict
	case (errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err)) && rep.slowChecks.Add(1) < slowChecksToEject:
		// Busy, perhaps: keep the last verdict for now. That includes a
		// connect timeout, a SYN dropped by a full accept queue.
		return
	default:
		rt.setHealth(rep, false, err.Error())
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	rep.slowChecks.Store(0)
	if resp.StatusCode != http.StatusOK {
		rt.setHealth(rep, false, "readyz answered "+resp.Status)
		return
	}
	rt.setHealth(rep, true, "")
}

func (rt *Router) setHealth(rep *replica, healthy bool, reason string) {
	if !rep.set(healthy) {
		return
	}
	if !healthy && rep.pool != nil {
		rep.pool.closeIdle() // they lead to a process that is likely gone
	}
	if healthy {
		rt.log.Info("replica healthy", "shard", rep.shard, "replica", rep.name)
	} else {
		rt.log.Warn("replica unhealthy", "shard", rep.shard, "replica", rep.name, "reason", reason)
	}
}
