package lineserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/shard"
)

// Read buffers come in two sizes. A line shorter than a buffer is read
// with one system call and sent with a Content-Length; a longer one is
// streamed in chunks of chunkSize, so memory does not grow with it. Most
// lines fit the small size, which keeps a thousand requests in flight
// within a few megabytes.
const (
	smallSize = 4 << 10
	chunkSize = 64 << 10
)

// Server is the HTTP surface of one shard: /lines/{n}, /healthz, /readyz
// and /metrics.
type Server struct {
	shard    *shard.Shard
	port     string
	log      *slog.Logger
	metrics  *metrics
	small    sync.Pool
	large    sync.Pool
	inflight atomic.Int64
	draining atomic.Bool
	// damageLogged is set once a probe has logged the damage that made
	// the shard not ready, which may have come with no request.
	damageLogged atomic.Bool
	// hdr holds the constant header values, shared by every response
	// rather than allocated for each; net/http copies them when it sends.
	hdr struct {
		cache, vary, text, json, ndjson []string
		// etagPrefix is the start of every ETag: `"<tag>-`.
		etagPrefix string
	}
}

// NewServer returns the server of sh. port is only reported by Port.
func NewServer(sh *shard.Shard, port string, log *slog.Logger) *Server {
	s := &Server{shard: sh, port: port, log: log, metrics: newMetrics()}
	s.small.New = func() any { b := make([]byte, smallSize); return &b }
	s.large.New = func() any { b := make([]byte, chunkSize); return &b }
	s.hdr.cache = []string{"public, max-age=31536000, immutable"}
	s.hdr.vary = []string{"Accept"}
	s.hdr.text = []string{"text/plain; charset=utf-8"}
	s.hdr.json = []string{"application/json"}
	s.hdr.ndjson = []string{"application/x-ndjson"}
	s.hdr.etagPrefix = `"` + sh.Tag() + "-"
	return s
}

// Port is the port the configuration asks to listen on.
func (s *Server) Port() string { return s.port }

// Log is the server's logger.
func (s *Server) Log() *slog.Logger { return s.log }

// Shard is the shard the server serves.
func (s *Server) Shard() *shard.Shard { return s.shard }

// buffer returns a pooled read buffer for a line of n bytes and the pool
// to return it to.
func (s *Server) buffer(n int64) (*[]byte, *sync.Pool) {
	pool := &s.large
	if n < smallSize {
		pool = &s.small
	}
	return pool.Get().(*[]byte), pool
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	start := time.Now()
	status := s.route(w, r)
	if s.draining.Load() {
		// The process may exit as soon as no request is in flight: the
		// answer must have left net/http's buffer by then. (Otherwise
		// net/http flushes it after the handler, for the same cost.)
		http.NewResponseController(w).Flush()
	}
	elapsed := time.Since(start)
	s.metrics.observe(status, elapsed)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "duration", elapsed)
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) int {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/lines/"):
		return s.serveLine(w, r, path[len("/lines/"):])
	case path == "/healthz":
		return s.serveProbe(w, r, nil)
	case path == "/readyz" || path == "/ready":
		// /ready is /readyz for callers behind Cloud Run's front end,
		// which keeps some paths ending in z for itself.
		return s.serveProbe(w, r, s.ready())
	case path == "/metrics":
		if r.Method != http.MethodGet {
			return s.methodNotAllowed(w, "GET")
		}
		s.metrics.handler.ServeHTTP(w, r)
		return http.StatusOK
	}
	return s.fail(w, r, problem.ErrNotFound)
}

func (s *Server) ready() error {
	if s.draining.Load() {
		return errDraining
	}
	if err := s.shard.Ready(); err != nil {
		return err
	}
	return nil
}

func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request, err error) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return s.methodNotAllowed(w, "GET, HEAD")
	}
	if err != nil {
		detail := err.Error()
		if errors.Is(err, shard.ErrDamaged) {
			// The full error, with file names, goes to the log: here once,
			// since the shard's watcher may have found it with no request.
			if !s.damageLogged.Swap(true) {
				s.log.Error("shard not ready", "error", err)
			}
			detail = "the shard's data or index changed after it opened them; the details are in its log"
		}
		problem.Write(w, http.StatusServiceUnavailable, detail)
		return http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
	return http.StatusOK
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, allow string) int {
	w.Header().Set("Allow", allow)
	problem.Write(w, http.StatusMethodNotAllowed, "use "+allow)
	return http.StatusMethodNotAllowed
}

// fail answers with the problem of err. Server errors are logged with their
// details, which the client does not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) int {
	status := problem.WriteError(w, err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	return status
}

// Drain turns /readyz to 503 and waits until no request is in flight or
// ctx ends, whichever comes first.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

type drainingError struct{}

func (drainingError) Error() string { return "the shard is shutting down" }

var errDraining error = drainingError{}

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	handler  http.Handler
	requests *prometheus.CounterVec
	byStatus map[int]prometheus.Counter
	latency  prometheus.Histogram
	// ranges counts ranges sent whole; rangeLines the lines in them.
	ranges, rangeLines prometheus.Counter
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lineserver_requests_total", Help: "Requests answered, by HTTP status.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lineserver_request_duration_seconds", Help: "Time to answer a request.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12),
		}),
		ranges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lineserver_ranges_total", Help: "Ranges of lines (/lines/{a}..{b}) sent whole by GET.",
		}),
		rangeLines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lineserver_range_lines_total", Help: "Lines sent in ranges sent whole by GET.",
		}),
		byStatus: make(map[int]prometheus.Counter),
	}
	reg.MustRegister(m.requests, m.latency, m.ranges, m.rangeLines,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, code := range []int{200, 304, 400, 404, 405, 413, 421, 500, 503} {
		m.byStatus[code] = m.requests.WithLabelValues(statusLabel(code))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) observe(status int, d time.Duration) {
	c, ok := m.byStatus[status]
	if !ok {
		c = m.requests.WithLabelValues(statusLabel(status))
	}
	c.Inc()
	m.latency.Observe(d.Seconds())
}

func statusLabel(code int) string { return strconv.Itoa(code) }
