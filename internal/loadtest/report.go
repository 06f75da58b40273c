package loadtest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured, ready to print.
type Report struct {
	// Command is the command line that ran, Date when it started, Elapsed
	// how long it took.
	Command string
	Date    time.Time
	Elapsed time.Duration
	Machine machine
	// Source is the version of the source the binaries were built from.
	Source string
	// Settings describes the load: connections, threads, turn length.
	Settings string
	Datasets []*dataset
	// Rows sums up each target over its turns, in the order run.
	Rows []row
	// Turns is every measured turn, in the order run.
	Turns []turn
	Cold  []cold
	// RangeMemory is the big range's, if it ran.
	RangeMemory *rangeMemory
	// Ratios compare rows; Checks hold the figures against the project's
	// targets.
	Ratios []ratio
	Checks []check
	// Notes say what was not measured and why, and anything else a reader
	// must know.
	Notes []string
}

// turn is one target's measurement in one round.
type turn struct {
	// Target is the short name, Label what the tables show.
	Target, Label string
	Round         int
	// Span is the lines each request asked for; 0 means 1.
	Span   int64
	Result result
	// ShardRSS is the largest resident set sampled of the target's
	// shards during the turn, ShardHWM their peak (VmHWM) after it, and
	// ShardAnon the largest private part of it sampled (RssAnon: heap and
	// stacks, without the file pages the process maps).
	ShardRSS, ShardHWM, ShardAnon int64
	// FrontRSS is the largest resident set sampled of the Go router, when
	// the target has one.
	FrontRSS int64
	// ServerCPU is the CPU time the target's processes used during the
	// turn (front door and shards, or the ceiling), ShardCPU the shards'
	// share of it, WrkCPU wrk's.
	ServerCPU, ShardCPU, WrkCPU time.Duration
}

// row sums up a target's turns.
type row struct {
	// Target is the short name (shard, ceiling, nginx, ...), Label what
	// the table shows.
	Target, Label string
	// Span is the lines each request asked for, at least 1.
	Span int64
	// result adds up the rounds: requests, bytes, time and errors; its
	// latencies are the means over the rounds.
	result
	// RPS is the mean of the rounds' requests per second, RPSMin and
	// RPSMax their spread.
	RPS, RPSMin, RPSMax float64
	// Memory peaks over the rounds, see turn.
	ShardRSS, ShardHWM, ShardAnon, FrontRSS int64
	// CPU time per request answered, over the rounds, see turn.
	ServerCPU, ShardCPU, WrkCPU time.Duration
	// Rate is the fixed-rate run, if there was one.
	Rate *rateResult
}

// cold is the cold start of the shard on one dataset: from starting the
// process to its first 200 for /lines/1.
type cold struct {
	Dataset string
	Times   []time.Duration
}

// ratio compares two rows' lines per second (their requests per second
// when both ask for single lines), over the whole run and round by round.
type ratio struct {
	Name   string
	Value  float64
	Rounds []float64
	// ByCPU compares the servers' CPU time per line the other way round
	// (b's over a's): the ratio that lines per second would show if CPU
	// were the only limit and the load generator cost nothing; 0 when
	// not measured. Noisy neighbours move it less.
	ByCPU float64
	// FrontCPU is a's front door's CPU time per line over b's (the
	// servers' less the shards'); 0 when not measured.
	FrontCPU float64
}

// check is a figure against one of the project's targets.
type check struct {
	Name, Want, Got string
	OK              bool
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize fills Rows, Ratios and Checks from Turns and Cold. rates
// holds the fixed-rate runs by target.
func (r *Report) summarize(rates map[string]*rateResult) {
	r.Rows = nil
	rounds := map[string]int{}
	for _, t := range r.Turns {
		i := r.row(t.Target)
		if i < 0 {
			r.Rows = append(r.Rows, row{Target: t.Target, Label: cmp.Or(t.Label, t.Target), Span: max(t.Span, 1), RPSMin: math.Inf(1)})
			i = len(r.Rows) - 1
		}
		row := &r.Rows[i]
		rounds[t.Target]++
		rps := t.Result.rps()
		row.RPS += rps
		row.RPSMin, row.RPSMax = math.Min(row.RPSMin, rps), math.Max(row.RPSMax, rps)
		row.result.add(t.Result)
		row.ShardRSS = max(row.ShardRSS, t.ShardRSS)
		row.ShardHWM = max(row.ShardHWM, t.ShardHWM)
		row.ShardAnon = max(row.ShardAnon, t.ShardAnon)
		row.FrontRSS = max(row.FrontRSS, t.FrontRSS)
		row.ServerCPU += t.ServerCPU
		row.ShardCPU += t.ShardCPU
		row.WrkCPU += t.WrkCPU
	}
	for i := range r.Rows {
		row := &r.Rows[i]
		n := rounds[row.Target]
		row.RPS /= float64(n)
		row.P50 /= time.Duration(n)
		row.P99 /= time.Duration(n)
		row.P999 /= time.Duration(n)
		row.Rate = rates[row.Target]
		if row.Requests > 0 {
			row.ServerCPU /= time.Duration(row.Requests)
			row.ShardCPU /= time.Duration(row.Requests)
			row.WrkCPU /= time.Duration(row.Requests)
		}
	}
	r.Ratios, r.Checks = nil, nil
	r.ratio("shard / ceiling", "shard", "ceiling")
	r.ratio("floor / ceiling", "floor", "ceiling")
	r.ratio("shard / floor", "shard", "floor")
	r.ratio("router / nginx (one shard)", "router", "nginx")
	r.ratio("router / nginx (three shards)", "router3", "nginx3")
	r.ratio(ratioNginxShards, "nginx1000", "nginx3")
	r.ratio(ratioRouterShards, "router1000", "router3")
	r.ratio(ratioRanges, "range", "shard")
	for _, d := range r.Datasets[min(1, len(r.Datasets)):] {
		r.ratio(fmt.Sprintf("shard %s / shard %s", d.name(), r.Datasets[0].name()), "shard@"+d.name(), "shard")
	}
	r.checks()
}

func (r *Report) row(target string) int {
	for i, row := range r.Rows {
		if row.Target == target {
			return i
		}
	}
	return -1
}

// The names of the ratios that the checks and tables look for.
const (
	ratioNginxShards  = "nginx, 1,000 shards / 3 shards"
	ratioRouterShards = "router, 1,000 shards / 3 shards"
	ratioRanges       = "lines/s, 1,000-line ranges / single lines"
)

// ratio adds a's lines per second over b's, and the CPU time per line the
// other way round, when both rows are there.
func (r *Report) ratio(name, a, b string) {
	ia, ib := r.row(a), r.row(b)
	if ia < 0 || ib < 0 || r.Rows[ib].RPS == 0 {
		return
	}
	ra, rb := r.Rows[ia], r.Rows[ib]
	sa, sb := float64(ra.Span), float64(rb.Span)
	q := ratio{Name: name, Value: ra.RPS * sa / (rb.RPS * sb)}
	if ca, cb := ra.ServerCPU, rb.ServerCPU; ca > 0 && cb > 0 {
		q.ByCPU = float64(cb) / sb / (float64(ca) / sa)
	}
	if fa, fb := ra.ServerCPU-ra.ShardCPU, rb.ServerCPU-rb.ShardCPU; fa > 0 && fb > 0 {
		q.FrontCPU = float64(fa) / sa / (float64(fb) / sb)
	}
	byRound := map[int]float64{}
	for _, t := range r.Turns {
		if t.Target == b {
			byRound[t.Round] = t.Result.rps() * sb
		}
	}
	for _, t := range r.Turns {
		if den := byRound[t.Round]; t.Target == a && den > 0 {
			q.Rounds = append(q.Rounds, t.Result.rps()*sa/den)
		}
	}
	r.Ratios = append(r.Ratios, q)
}

// The project's targets (issues 2, 4, 13, 14 and 15). A range's memory
// must not grow with its size: wantRangeGrowth is a bound far below any
// range worth measuring it with, and above what the shard's buffers and
// its garbage collector's pacing make it vary by.
const (
	wantShardRatio  = 0.9
	wantRouterRatio = 0.9
	wantRouterCPU   = 1.1
	wantRSS         = 64 << 20
	wantColdStart   = 50 * time.Millisecond
	wantNginxShards = 0.9
	wantRangeRatio  = 50
	wantRangeGrowth = 8 << 20
)

func (r *Report) checks() {
	for _, q := range r.Ratios {
		switch {
		case q.Name == "shard / ceiling":
			r.Checks = append(r.Checks, check{q.Name, fmt.Sprintf("≥ %.2f", wantShardRatio), fmt.Sprintf("%.2f", q.Value), q.Value >= wantShardRatio})
		case strings.HasPrefix(q.Name, "router / nginx"):
			r.Checks = append(r.Checks, check{q.Name, fmt.Sprintf("≥ %.2f", wantRouterRatio), fmt.Sprintf("%.2f", q.Value), q.Value >= wantRouterRatio})
			if q.FrontCPU > 0 {
				r.Checks = append(r.Checks, check{"front door CPU/req, " + q.Name, fmt.Sprintf("≤ %.2f", wantRouterCPU), fmt.Sprintf("%.2f", q.FrontCPU), q.FrontCPU <= wantRouterCPU})
			}
		case q.Name == ratioNginxShards:
			r.Checks = append(r.Checks, check{q.Name, fmt.Sprintf("≥ %.2f", wantNginxShards), fmt.Sprintf("%.2f", q.Value), q.Value >= wantNginxShards})
		case q.Name == ratioRanges:
			r.Checks = append(r.Checks, check{q.Name, fmt.Sprintf("≥ %d", wantRangeRatio), fmt.Sprintf("%.1f", q.Value), q.Value >= wantRangeRatio})
		}
	}
	if m := r.RangeMemory; m != nil {
		r.Checks = append(r.Checks,
			check{"range of " + m.Dataset + " byte-exact", "yes", yesNo(m.Exact), m.Exact},
			check{"shard RssAnon growth, range of " + m.Dataset, "< " + formatBytes(wantRangeGrowth), formatBytes(m.growth()), m.growth() < wantRangeGrowth})
	}
	for _, row := range r.Rows {
		if row.ShardHWM == 0 || row.Target == "ceiling" || row.Target == "floor" {
			continue
		}
		peak := max(row.ShardHWM, row.ShardRSS)
		r.Checks = append(r.Checks, check{"shard peak memory, " + row.Label, "< " + formatBytes(wantRSS), formatBytes(peak), peak < wantRSS})
		if row.ShardAnon > 0 {
			r.Checks = append(r.Checks, check{"shard private memory (RssAnon), " + row.Label, "< " + formatBytes(wantRSS), formatBytes(row.ShardAnon), row.ShardAnon < wantRSS})
		}
	}
	for _, c := range r.Cold {
		m := median(c.Times)
		r.Checks = append(r.Checks, check{"cold start, " + c.Dataset, "< " + fmtDur(wantColdStart), fmtDur(m), m < wantColdStart})
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
