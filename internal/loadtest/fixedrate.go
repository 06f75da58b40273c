package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// fixedRate sends requests for random lines at a constant rate, whatever
// the server's answers take (an open loop, unlike wrk's closed one), and
// measures each one's latency from the moment it was due, not from when a
// busy client got round to sending it: so a server that falls behind shows
// its queue in the latencies instead of hiding it by slowing the rate.
type fixedRate struct {
	// Rate is the requests per second; Duration how long to send them.
	Rate     float64
	Duration time.Duration
	// Lines is the number of lines to draw from; Seed seeds the draw.
	Lines int64
	Seed  uint64
	// Connections bounds the requests in flight; 0 means 128. A request
	// that is due while all are busy waits for one, and its wait counts.
	Connections int
	// Timeout bounds each request; 0 means 2 s.
	Timeout time.Duration
}

// rateResult is what a fixed-rate run measured.
type rateResult struct {
	// Rate is the rate asked for, Sent the requests sent, Achieved the
	// rate at which they were sent.
	Rate, Achieved float64
	Sent           int64
	// Errors counts answers other than 2xx and failed requests.
	Errors int64
	// Latencies from the moment each request was due.
	P50, P90, P99, P999, Max time.Duration
}

// run sends the requests to base ("http://127.0.0.1:PORT").
func (f fixedRate) run(ctx context.Context, base string) (rateResult, error) {
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		return rateResult{}, fmt.Errorf("fixed rate: %s: load goes to 127.0.0.1 only", base)
	}
	if f.Rate <= 0 || f.Duration <= 0 {
		return rateResult{}, fmt.Errorf("fixed rate: rate %v and duration %v must be positive", f.Rate, f.Duration)
	}
	conns := cmp.Or(max(f.Connections, 0), 128)
	timeout := cmp.Or(max(f.Timeout, 0), 2*time.Second)
	addr := strings.TrimPrefix(base, "http://")

	total := int64(f.Rate * f.Duration.Seconds())
	due := make(chan time.Time, conns)
	type tally struct {
		lat    []time.Duration
		errors int64
	}
	tallies := make([]tally, conns)
	var wg sync.WaitGroup
	client := &fasthttp.HostClient{Addr: addr, Name: "lines-bench", MaxConns: conns, MaxIdemponentCallAttempts: 1}
	defer client.CloseIdleConnections()
	for w := range conns {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(f.Seed, uint64(w)))
			t := &tallies[w]
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetHost(addr)
			path := make([]byte, 0, 32)
			for at := range due {
				path = strconv.AppendInt(append(path[:0], "/lines/"...), 1+r.Int64N(max(f.Lines, 1)), 10)
				req.SetRequestURIBytes(path)
				// A request sent early (see below) counts from when it
				// was sent; one sent late, from when it was due: the
				// earlier of the two.
				from := time.Now()
				if at.Before(from) {
					from = at
				}
				err := client.DoDeadline(req, resp, from.Add(timeout))
				t.lat = append(t.lat, time.Since(from))
				if err != nil || resp.StatusCode()/100 != 2 {
					t.errors++
				}
			}
		})
	}

	start := time.Now()
	interval := time.Duration(float64(time.Second) / f.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var sent int64
send:
	for ; sent < total; sent++ {
		// Waking a timer per request costs more than the request at these
		// rates: requests go out in bursts up to a millisecond early, and
		// never later than the client can manage.
		at := start.Add(time.Duration(sent) * interval)
		if wait := time.Until(at); wait > time.Millisecond {
			timer.Reset(wait - time.Millisecond)
			select {
			case <-ctx.Done():
				break send
			case <-timer.C:
			}
		}
		select {
		case due <- at:
		case <-ctx.Done():
			break send
		}
	}
	elapsed := time.Since(start)
	close(due)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rateResult{}, err
	}

	var lat []time.Duration
	res := rateResult{Rate: f.Rate, Sent: sent, Achieved: float64(sent) / elapsed.Seconds()}
	for _, t := range tallies {
		lat = append(lat, t.lat...)
		res.Errors += t.errors
	}
	slices.Sort(lat)
	res.P50, res.P90, res.P99, res.P999 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), percentile(lat, 99.9)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

// percentile returns the p-th percentile (0 to 100) of sorted latencies,
// the smallest value that at least p% of them do not exceed; zero for
// none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The small subtraction keeps 99.9% of 1000 at 999, not 1000, despite
	// the rounding of 99.9/100.
	i := int(math.Ceil(p/100*float64(len(sorted))-1e-9)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
