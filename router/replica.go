package router

import (
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// shard is one range of lines and the replicas that serve it.
type shard struct {
	name     string
	replicas []*replica
	next     atomic.Uint32 // round-robin position
	counts   *statusCounts
	latency  prometheus.Observer
}

// pick returns the next healthy replica other than skip in round-robin
// order, or nil when there is none. A pick for a retry (skip not nil) does
// not advance the order, so retries do not skew the spread.
func (s *shard) pick(skip *replica) *replica {
	n := uint32(len(s.replicas))
	if n == 1 {
		if r := s.replicas[0]; r != skip && r.healthy.Load() {
			return r
		}
		return nil
	}
	var start uint32
	if skip == nil {
		start = s.next.Add(1)
	} else {
		start = s.next.Load()
	}
	for i := range n {
		r := s.replicas[(start+i)%n]
		if r != skip && r.healthy.Load() {
			return r
		}
	}
	return nil
}

func (s *shard) anyHealthy() bool {
	for _, r := range s.replicas {
		if r.healthy.Load() {
			return true
		}
	}
	return false
}

// replica is one URL of a shard, the only place the router sends its
// requests for the shard.
type replica struct {
	shard  string
	name   string // the URL as the manifest spells it, for logs and metrics
	scheme string
	host   string
	readyz string
	// pool is the lean client's connections to the replica; nil means the
	// router's Transport carries its requests.
	pool *connPool
	// tmpl holds the fields every request to the replica shares; requests
	// are shallow copies of it.
	tmpl    *http.Request
	healthy atomic.Bool
	// slowChecks counts health checks in a row that timed out; an answered
	// request resets it.
	slowChecks atomic.Int32
	gauge      prometheus.Gauge
	errs       [numFailures]prometheus.Counter
}

func newReplica(shardName string, u *url.URL, m *metrics, healthPath string) *replica {
	r := &replica{
		shard:  shardName,
		name:   u.String(),
		scheme: u.Scheme,
		host:   u.Host,
		readyz: u.Scheme + "://" + u.Host + healthPath,
		gauge:  m.healthy.WithLabelValues(shardName, u.String()),
	}
	r.tmpl = &http.Request{
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       u.Host,
	}
	for f := range numFailures {
		r.errs[f] = m.upstreamErrors.WithLabelValues(shardName, r.name, f.String())
	}
	r.healthy.Store(true)
	r.gauge.Set(1)
	return r
}

// set records the replica's health and reports whether it changed.
func (r *replica) set(healthy bool) bool {
	if r.healthy.Swap(healthy) == healthy {
		return false
	}
	if healthy {
		r.gauge.Set(1)
	} else {
		r.gauge.Set(0)
	}
	return true
}
