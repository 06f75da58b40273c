package router

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
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
	var start uint32
	if skip == nil && n > 1 {
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
	shard   string
	name    string // the URL as the manifest spells it, for logs and metrics
	host    string // the Host header: an https replica (Cloud Run) needs its own
	readyz  string
	server  *server // where it is, with the connections to it
	healthy atomic.Bool
	// slowChecks counts health checks in a row that timed out; an answered
	// request resets it.
	slowChecks atomic.Int32
	gauge      prometheus.Gauge
	errs       [numFailures]prometheus.Counter
}

// patientDialTimeout bounds the second dial to a lone replica whose first
// dial timed out: above Linux's 1 s resend of a dropped SYN, as NGINX's
// proxy_connect_timeout is in the generated config.
const patientDialTimeout = 1500 * time.Millisecond

// maxIdleTime closes pooled connections unused for longer, before the
// replica's own idle timeout might.
const maxIdleTime = 60 * time.Second

// server is what the replicas of one server (one scheme, host and port)
// share, whichever shards they serve: the connections for requests, the
// bound on connections being opened, and the health checks. So with many
// shards on one process, as NGINX's upstreams are shared,
// maxConnsPerServer and maxDialing bound what that process is sent, not
// each shard's share, and the process is checked once, not once a shard.
type server struct {
	dialing chan struct{}
	// client keeps the connections for requests; patient is the same with
	// a longer connect timeout, for a second try at a lone replica;
	// health is for the health checks, so that they never wait for a
	// connection that requests hold.
	client, patient, health *fasthttp.HostClient
	o                       Options
	addr                    string
	tls                     bool
}

// serverKey names the server of u: the replicas with the same key share it.
func serverKey(u *url.URL) string {
	return u.Scheme + "://" + fasthttp.AddMissingPort(u.Host, u.Scheme == "https")
}

func newServer(u *url.URL, o Options) *server {
	tls := u.Scheme == "https"
	srv := &server{dialing: make(chan struct{}, maxDialing), o: o, addr: fasthttp.AddMissingPort(u.Host, tls), tls: tls}
	srv.client = srv.hostClient(o.ConnectTimeout, maxConnsPerServer)
	srv.patient = srv.hostClient(max(o.ConnectTimeout, patientDialTimeout), 4)
	srv.health = srv.hostClient(o.ConnectTimeout, 2)
	return srv
}

// hostClient is a pool of at most conns connections to the server, each
// opened within connect after its turn among those being opened.
func (srv *server) hostClient(connect time.Duration, conns int) *fasthttp.HostClient {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &fasthttp.HostClient{
		Addr:      srv.addr,
		IsTLS:     srv.tls,
		TLSConfig: srv.o.TLSConfig,
		Dial: func(addr string) (net.Conn, error) {
			t := time.NewTimer(srv.o.ResponseHeaderTimeout)
			defer t.Stop()
			select {
			case srv.dialing <- struct{}{}:
			case <-t.C:
				return nil, errWaitedTooLong
			}
			defer func() { <-srv.dialing }()
			return d.Dial("tcp", addr)
		},
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		MaxConns:                  conns,
		MaxConnWaitTimeout:        srv.o.ResponseHeaderTimeout,
		MaxIdleConnDuration:       maxIdleTime,
		MaxIdemponentCallAttempts: 1,
		ReadBufferSize:            16 << 10,
		WriteBufferSize:           4 << 10,
	}
}

// newReplica is the replica at u of a shard, on the server srv.
func newReplica(shardName string, u *url.URL, srv *server, m *metrics, o Options) *replica {
	r := &replica{
		shard:  shardName,
		name:   u.String(),
		host:   u.Host,
		readyz: u.Scheme + "://" + u.Host + o.HealthPath,
		server: srv,
		gauge:  m.healthy.WithLabelValues(shardName, u.String()),
	}
	for f := range numFailures {
		r.errs[f] = m.upstreamErrors.WithLabelValues(shardName, r.name, f.String())
	}
	r.healthy.Store(true)
	r.gauge.Set(1)
	return r
}

// maxDialing bounds the connections to a server being opened at once:
// beyond that a new connection waits its turn, up to the response timeout.
// A burst of new clients would otherwise open as many connections at
// once, overflow the server's accept queue, and have its dropped
// attempts time out.
const maxDialing = 32

// errWaitedTooLong reports a request that waited the response timeout for
// its turn to connect to a replica busy with others; it is a timeout
// (504), and does not eject the replica.
var errWaitedTooLong = fmt.Errorf("waited too long to connect to the replica: %w", os.ErrDeadlineExceeded)

// LogValue names the replica in logs; a nil one is none.
func (r *replica) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("")
	}
	return slog.StringValue(r.name)
}

// set records the replica's health and reports whether it changed.
func (r *replica) set(healthy bool) bool {
	if r.healthy.Swap(healthy) == healthy {
		return false
	}
	r.gauge.Set(map[bool]float64{false: 0, true: 1}[healthy])
	return true
}

func (r *replica) closeIdle() {
	r.server.client.CloseIdleConnections()
	r.server.patient.CloseIdleConnections()
}
