package router

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// ownShard is the shard label of the answers the router gives itself
// (400, 404, 405, 413); a manifest's shard names start with a letter.
const ownShard = "-"

// metrics are the router's Prometheus series. The per-request ones are
// resolved once per shard and status, so counting a request allocates
// nothing.
type metrics struct {
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	healthy        *prometheus.GaugeVec
	ranges         prometheus.Counter
	rangeLines     prometheus.Counter
	ownCounts      *statusCounts
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lineserver_router_requests_total",
			Help: "Requests for lines by shard and status; shard \"-\" is the router's own answers (400, 404, 405, 413).",
		}, []string{"shard", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lineserver_router_upstream_duration_seconds",
			Help:    "Time from sending a request to a replica to its response headers, by shard.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"shard"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lineserver_router_upstream_errors_total",
			Help: "Failed requests to replicas by shard, replica and reason (connect, broken, timeout, status).",
		}, []string{"shard", "replica", "reason"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lineserver_router_replica_healthy",
			Help: "1 when the replica takes requests, 0 when it is ejected.",
		}, []string{"shard", "replica"}),
		ranges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lineserver_router_ranges_total",
			Help: "Ranges of lines (GET /lines/{a}..{b}) answered 200 whose body was relayed whole.",
		}),
		rangeLines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lineserver_router_range_lines_total",
			Help: "Lines in the ranges that lineserver_router_ranges_total counts.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.upstreamErrors, m.healthy, m.ranges, m.rangeLines} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.ownCounts = m.shardCounts(ownShard)
	return m, nil
}

// rangeServed counts a range of lines whose body was relayed whole; a
// count of 0 is a single line, which it does not count.
func (m *metrics) rangeServed(lines int64) {
	if lines > 0 {
		m.ranges.Inc()
		m.rangeLines.Add(float64(lines))
	}
}

// own counts one of the router's own answers.
func (m *metrics) own(status int) { m.ownCounts.inc(status) }

// commonStatuses are the statuses counted without a lookup by label.
var commonStatuses = [...]int{200, 304, 400, 404, 405, 406, 413, 421, 500, 502, 503, 504}

// statusCounts are one shard's request counters by status.
type statusCounts struct {
	shard  string
	vec    *prometheus.CounterVec
	common [len(commonStatuses)]prometheus.Counter
}

func (m *metrics) shardCounts(shard string) *statusCounts {
	c := &statusCounts{shard: shard, vec: m.requests}
	for i, s := range commonStatuses {
		c.common[i] = m.requests.WithLabelValues(shard, strconv.Itoa(s))
	}
	return c
}

func (c *statusCounts) inc(status int) {
	for i, s := range commonStatuses {
		if s == status {
			c.common[i].Inc()
			return
		}
	}
	c.vec.WithLabelValues(c.shard, strconv.Itoa(status)).Inc()
}

// failure is why a request to a replica failed.
type failure uint8

const (
	failConnect failure = iota // no connection: refused, unreachable, connect timeout
	failBroken                 // the connection broke before the response headers
	failTimeout                // no response headers within the timeout
	failStatus                 // the replica answered 502 or 503
	numFailures
)

func (f failure) String() string {
	return [...]string{"connect", "broken", "timeout", "status"}[f]
}
