package router

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

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

// checkAll checks every replica, or only the ejected ones, concurrently:
// once a server, however many shards it serves, each of its replicas
// taking the verdict.
func (rt *Router) checkAll(ctx context.Context, ejectedOnly bool) {
	byServer := map[*server][]*replica{}
	for _, s := range rt.shards {
		for _, rep := range s.replicas {
			if !ejectedOnly || !rep.healthy.Load() {
				byServer[rep.server] = append(byServer[rep.server], rep)
			}
		}
	}
	var wg sync.WaitGroup
	for _, reps := range byServer {
		wg.Go(func() { rt.check(ctx, reps) })
	}
	wg.Wait()
}

// check asks the server of reps, replicas of one server, for its /readyz.
func (rt *Router) check(ctx context.Context, reps []*replica) {
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI(reps[0].readyz)
	req.Header.SetHost(reps[0].host)
	err := reps[0].server.health.DoTimeout(&req, &resp, rt.opts.HealthTimeout)
	if err != nil && ctx.Err() != nil {
		return // the router is stopping; keep the last verdict
	}
	for _, rep := range reps {
		rt.judge(rep, err, resp.StatusCode())
	}
}

// judge records what a check of rep's server found: an error, or the
// status it answered.
func (rt *Router) judge(rep *replica, err error, status int) {
	switch {
	case err == nil:
	case isTimeout(err) && rep.slowChecks.Add(1) < slowChecksToEject:
		// Busy, perhaps: keep the last verdict for now. That includes a
		// connect timeout, a SYN dropped by a full accept queue.
		return
	default:
		rt.setHealth(rep, false, err.Error())
		return
	}
	rep.slowChecks.Store(0)
	if status != fasthttp.StatusOK {
		rt.setHealth(rep, false, "readyz answered "+strconv.Itoa(status))
		return
	}
	rt.setHealth(rep, true, "")
}

func (rt *Router) setHealth(rep *replica, healthy bool, reason string) {
	if !rep.set(healthy) {
		return
	}
	if healthy {
		rt.log.Info("replica healthy", "shard", rep.shard, "replica", rep.name)
		return
	}
	rep.closeIdle() // they lead to a process that is likely gone
	rt.log.Warn("replica unhealthy", "shard", rep.shard, "replica", rep.name, "reason", reason)
}

// isTimeout reports a timeout, connecting, waiting for a free connection
// (fasthttp.ErrTimeout is a net.Error) or for an answer.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrNoFreeConns) || errors.As(err, &te) && te.Timeout()
}
