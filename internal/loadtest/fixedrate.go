package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// fixedRate sends requests for random lines at a constant rate, whatever
// the server's answers take (an open loop, unlike wrk's closed one), with
// vegeta's attacker, which starts another worker rather than send a due
// request late: so a server that falls behind shows its queue in the
// latencies instead of hiding it by slowing the rate.
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

// countPacer is vegeta's constant pacer that stops after total requests,
// so that a run sends exactly Rate × Duration of them.
type countPacer struct {
	vegeta.ConstantPacer
	total uint64
}

func (p countPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.total {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed, hits)
}

// Run sends the requests to base ("http://127.0.0.1:PORT").
func (f fixedRate) Run(ctx context.Context, base string) (rateResult, error) {
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		return rateResult{}, fmt.Errorf("fixed rate: %s: load goes to 127.0.0.1 only", base)
	}
	if f.Rate < 1 || f.Duration <= 0 {
		return rateResult{}, fmt.Errorf("fixed rate: rate %v and duration %v must be positive", f.Rate, f.Duration)
	}
	conns, timeout := f.Connections, f.Timeout
	if conns <= 0 {
		conns = 128
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var mu sync.Mutex // the targeter runs in every worker
	r := rand.New(rand.NewPCG(f.Seed, 0))
	targeter := func(t *vegeta.Target) error {
		mu.Lock()
		n := 1 + r.Int64N(max(f.Lines, 1))
		mu.Unlock()
		t.Method, t.URL = "GET", base+"/lines/"+strconv.FormatInt(n, 10)
		return nil
	}
	pacer := countPacer{vegeta.ConstantPacer{Freq: int(f.Rate), Per: time.Second}, uint64(f.Rate * f.Duration.Seconds())}
	atk := vegeta.NewAttacker(vegeta.MaxConnections(conns), vegeta.Timeout(timeout), vegeta.Redirects(vegeta.NoFollow))
	defer context.AfterFunc(ctx, func() { atk.Stop() })()
	var m vegeta.Metrics
	var errors int64
	for res := range atk.Attack(targeter, pacer, 0, "lines-bench") {
		m.Add(res)
		if res.Error != "" || res.Code/100 != 2 {
			errors++
		}
	}
	m.Close()
	if err := ctx.Err(); err != nil {
		return rateResult{}, err
	}
	return rateResult{Rate: float64(pacer.Freq), Achieved: m.Rate, Sent: int64(m.Requests), Errors: errors,
		P50: m.Latencies.P50, P90: m.Latencies.P90, P99: m.Latencies.P99, P999: m.Latencies.Quantile(0.999), Max: m.Latencies.Max}, nil
}
