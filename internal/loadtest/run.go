// Package loadtest is the load harness behind `lines bench`: it generates
// and indexes a data file, starts the shard, a constant-body ceiling on the
// same framework, nginx and the Go router in front of one and of three
// shards, drives them in turns with wrk at many connections, and reports
// throughput, latency, errors, memory, a fixed-rate run and cold starts
// side by side. It sends traffic to 127.0.0.1 only and stops every process
// it starts.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// AllTargets are what a run can measure, in the order of its turns:
// the shard itself, the ceiling (a constant 50-byte body on the same
// framework), the floor (only the two reads of a line, on the same
// framework), nginx and the router in front of the shard, both in front
// of three shards, both in front of a manifest of 1,000 shards served by
// the same three processes, a shard asked for ranges of rangeLines lines,
// and bigrange: a shard's memory while it serves the whole file as one
// range (not a turn of wrk; it runs before the turns).
var AllTargets = []string{"shard", "ceiling", "floor", "nginx", "router", "nginx3", "router3", "nginx1000", "router1000", "range", "bigrange"}

// rangeLines is the lines each request of the range target asks for.
const rangeLines = 1000

// Config says what a run measures and how; Defaults holds the settings
// that lines bench starts from.
type Config struct {
	// Dir holds the data, the binaries, the configs and the servers' logs.
	Dir string
	// Sizes are the data files' sizes: the first gets every target; each
	// other one the shard alone, its cold start and memory.
	Sizes []int64
	// Seed makes the data and the requests; the same seed gives the same.
	Seed uint64
	// Targets are the targets to measure, from AllTargets.
	Targets []string
	// Rounds is how many times each target takes its turn, interleaved
	// (A B A B), so that a change of the machine's load hits all alike.
	Rounds int
	// Duration is the length of one turn, Warmup that of one unmeasured
	// turn per target before the first round (0 for none).
	Duration, Warmup time.Duration
	// Connections and Threads are wrk's; Timeout its request timeout.
	Connections, Threads int
	Timeout              time.Duration
	// RateDuration is the length of the fixed-rate run of each target, at
	// half its measured maximum (0 for none); RateConnections
	// bounds its requests in flight.
	RateDuration    time.Duration
	RateConnections int
	// ColdStarts is how many cold starts to time on each data file.
	ColdStarts int
	// BinDir, when set, holds lineserver, ceiling and router already
	// built; otherwise they are built with go into Dir.
	BinDir string
	// Wrk and Nginx are the tools' paths; empty means looked up on PATH.
	Wrk, Nginx string
	// ColdCache leaves the page cache as it is found. Otherwise each data
	// file and its index are read once before the turns when they are not
	// all in the page cache, so that turns measure serving from memory
	// rather than from the disk.
	ColdCache bool
	// MaxTime bounds the whole run.
	MaxTime time.Duration
	// Command is the command line, for the report.
	Command string
	// Progress shows what the run does; nil shows nothing.
	Progress *Progress
}

// Defaults are the settings of lines bench without flags.
var Defaults = Config{
	Dir:             filepath.Join(os.TempDir(), "lines-bench"),
	Sizes:           []int64{1e9},
	Seed:            1,
	Targets:         AllTargets,
	Rounds:          2,
	Duration:        10 * time.Second,
	Warmup:          2 * time.Second,
	Connections:     1000,
	Threads:         2,
	Timeout:         2 * time.Second,
	RateDuration:    10 * time.Second,
	RateConnections: 128,
	ColdStarts:      7,
	MaxTime:         30 * time.Minute,
}

func (c Config) check() error {
	var errs []error
	for _, t := range c.Targets {
		if !slices.Contains(AllTargets, t) {
			errs = append(errs, fmt.Errorf("unknown target %q (known: %v)", t, AllTargets))
		}
	}
	if c.Rounds < 1 || c.Duration < 100*time.Millisecond || c.Connections < 1 || c.Threads < 1 || len(c.Sizes) == 0 || c.MaxTime <= 0 {
		errs = append(errs, errors.New("rounds, connections and threads must be at least 1, a turn at least 100ms, and there must be a size and a time limit"))
	}
	return errors.Join(errs...)
}

// runner holds what the phases of a run share.
type runner struct {
	cfg     Config
	ps      *processes
	pr      *Progress
	rep     *Report
	bins    programs
	targets []*target
	wrk     wrkCmd
	turns   int
}

// Run measures what cfg says and returns the report. It stops every
// process it started before it returns, also when ctx ends (Ctrl-C).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.MaxTime, fmt.Errorf("the run took longer than %v", cfg.MaxTime))
	defer cancel()
	start := time.Now()
	r := &runner{cfg: cfg, pr: cfg.Progress, rep: &Report{Command: cfg.Command, Date: start}}
	for _, d := range []string{"bin", "logs", "scripts"} {
		if d == "logs" {
			os.RemoveAll(filepath.Join(cfg.Dir, d))
		}
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	r.ps = &processes{LogDir: filepath.Join(cfg.Dir, "logs")}
	defer func() {
		r.pr.printf("stopping every process started")
		r.ps.stopAll(2 * time.Second)
	}()

	for _, phase := range []func(context.Context) error{
		r.prepare, r.coldStarts, r.bigRange, r.start, r.warmUp, r.rounds,
	} {
		if err := phase(ctx); err != nil {
			return nil, err
		}
	}
	rates, err := r.fixedRates(ctx)
	if err != nil {
		return nil, err
	}
	r.cacheAtEnd()
	r.rep.Machine.LoadAfter = loadAverage()
	r.rep.Elapsed = time.Since(start).Round(time.Second)
	r.rep.Notes = append(r.rep.Notes,
		"wrk, the servers and the fixed-rate client share the machine's CPUs: the figures are for the whole machine, load generator included.",
		"The data lines above say how much of each data file was in the page cache; what was not came from the disk during the turns.",
		"The shard's memory is VmRSS and RssAnon (its private part: heap and stacks, not the file pages it maps) sampled every 100 ms during its turns, and VmHWM, its peak since start, read after each turn.",
		"CPU per request is the CPU time (user and system, from /proc) that the target's processes used during its turns, "+
			"divided by the requests answered: the servers (front door and shards, or the ceiling) and wrk apart. "+
			"It varies less with a busy machine than requests per second do.")
	r.rep.Notes = append(r.rep.Notes, targetNotes(r.cfg.Targets)...)
	r.rep.summarize(rates)
	return r.rep, nil
}

// targetNotes say how the targets among names that need it are made.
func targetNotes(names []string) []string {
	var notes []string
	if slices.Contains(names, "nginx1000") || slices.Contains(names, "router1000") {
		notes = append(notes, fmt.Sprintf("nginx1000 and router1000 route by a manifest of 1,000 shards that %d shard processes serve, each a slice of the file, "+
			"as nginx3 and router3 route by one of 3 shards over %d such processes: each pair differs in its manifest only. "+
			"A front door's CPU per request is its target's server CPU less the shards'.", maxDoorProcs, maxDoorProcs))
	}
	if slices.Contains(names, "range") {
		notes = append(notes, fmt.Sprintf("The range target asks a whole-file shard of its own for %s lines a request (/lines/a..a+%d from a random a); "+
			"its lines per second are its requests per second times %s, set against the shard target's single lines in the same run. "+
			"It has no fixed-rate run.", fmtCount(rangeLines), rangeLines-1, fmtCount(rangeLines)))
	}
	return notes
}

// prepare finds the tools, builds the binaries and makes the data.
func (r *runner) prepare(ctx context.Context) error {
	cfg := r.cfg
	if cfg.BinDir == "" {
		r.pr.printf("building lineserver, ceiling and router")
		r.rep.Source = sourceVersion(ctx)
	}
	bins, notes, err := binaries(ctx, cfg, filepath.Join(cfg.Dir, "bin"))
	if err != nil {
		return err
	}
	r.rep.Notes = append(r.rep.Notes, notes...)
	r.rep.Machine = readMachine(bins.Wrk, bins.Nginx)
	r.bins = bins

	for _, size := range cfg.Sizes {
		r.pr.printf("data: %s of lines in %s", formatSize(size), cfg.Dir)
		d, err := ensureData(ctx, cfg.Dir, size, cfg.Seed, func(stage string, done, total int64) { r.pr.bar(stage, done, total) })
		if err != nil {
			return err
		}
		d.Cached, d.CachedWarm, d.CachedEnd = -1, -1, -1
		if d.Cached, err = resident(d.Data); err != nil {
			return err
		}
		if !cfg.ColdCache && d.Cached < 0.999 {
			r.pr.printf("page cache: %.0f%% of %s is in it; reading it and its index once", 100*d.Cached, d.name())
			for _, path := range []string{d.Data, d.Index} {
				if err := warm(ctx, path, func(done, total int64) { r.pr.bar("warm", done, total) }); err != nil {
					return err
				}
			}
			d.Warmed = true
			if d.CachedWarm, err = resident(d.Data); err != nil {
				return err
			}
		}
		r.pr.printf("data: %s", d.describe())
		r.rep.Datasets = append(r.rep.Datasets, d)
	}
	return nil
}

// cacheAtEnd notes how much of each data file is still in the page cache:
// less than at the start means some turns read from the disk.
func (r *runner) cacheAtEnd() {
	for _, d := range r.rep.Datasets {
		if c, err := resident(d.Data); err == nil {
			d.CachedEnd = c
		}
	}
}

// coldStarts times the shard's cold starts on each data file, while no
// other server runs: each from starting the process to its first 200 for
// /lines/1, which proves the files open, checked and served, asking as
// fast as a refused connection allows. Each process is stopped before the
// next starts.
func (r *runner) coldStarts(ctx context.Context) error {
	if r.cfg.ColdStarts <= 0 {
		return nil
	}
	for _, d := range r.rep.Datasets {
		r.pr.printf("cold start: %d starts of the shard on %s", r.cfg.ColdStarts, d.name())
		c := cold{Dataset: d.name()}
		for i := range r.cfg.ColdStarts {
			port, err := freePort()
			if err != nil {
				return err
			}
			start := time.Now()
			p, err := r.ps.start(fmt.Sprintf("coldstart-%s-%d", d.name(), i+1), r.bins.Lineserver, nil, shardEnv(d, 1, d.Lines, port), false)
			if err != nil {
				return err
			}
			err = waitHTTP(ctx, localURL(port)+"/lines/1", p, r.ps, 200*time.Microsecond)
			c.Times = append(c.Times, time.Since(start))
			p.stop(time.Second)
			if err != nil {
				return fmt.Errorf("cold start %d on %s: %w", i+1, d.name(), err)
			}
		}
		r.rep.Cold = append(r.rep.Cold, c)
		r.pr.printf("cold start on %s: median %s", d.name(), fmtDur(median(c.Times)))
	}
	return nil
}

// start starts the servers of every target.
func (r *runner) start(ctx context.Context) error {
	cfg := r.cfg
	r.pr.printf("starting the servers")
	names := slices.DeleteFunc(available(cfg.Targets, r.bins), func(t string) bool { return t == "bigrange" })
	ts, err := r.startTargets(ctx, r.rep.Datasets, names)
	if err != nil {
		return err
	}
	r.targets = ts
	r.wrk = wrkCmd{Path: r.bins.Wrk, Threads: cfg.Threads, Connections: cfg.Connections, Timeout: cfg.Timeout}
	r.rep.Settings = fmt.Sprintf("%d connections, %d wrk threads, %d rounds of %v turns (after a %v warm-up each), random line numbers",
		cfg.Connections, cfg.Threads, cfg.Rounds, cfg.Duration, max(cfg.Warmup, 0))
	return nil
}

// warmUp gives each target an unmeasured turn, so that the first round
// does not pay for growing heaps and opening connections.
func (r *runner) warmUp(ctx context.Context) error {
	if r.cfg.Warmup <= 0 {
		return nil
	}
	for _, t := range r.targets {
		r.pr.printf("warm-up: %s for %v", t.label, r.cfg.Warmup)
		if _, err := r.turn(ctx, t, 0, r.cfg.Warmup); err != nil {
			return err
		}
	}
	return nil
}

// rounds runs every target's turn, round after round.
func (r *runner) rounds(ctx context.Context) error {
	for round := 1; round <= r.cfg.Rounds; round++ {
		for _, t := range r.targets {
			tn, err := r.turn(ctx, t, round, r.cfg.Duration)
			if err != nil {
				return err
			}
			r.rep.Turns = append(r.rep.Turns, tn)
			res := tn.Result
			r.pr.printf("round %d/%d %-22s %9s req/s  p50 %-9s p99 %-9s p99.9 %-9s errors %s  shard RSS %s",
				round, r.cfg.Rounds, t.label, fmtRPS(res.rps()), fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.P999),
				fmtCount(res.errors()), fmtMem(tn.ShardRSS))
		}
	}
	return nil
}

// turn loads t with wrk for d, sampling the memory of its shards and
// router and counting the CPU time of its processes.
func (r *runner) turn(ctx context.Context, t *target, round int, d time.Duration) (turn, error) {
	r.turns++
	w := r.wrk
	w.Script = filepath.Join(r.cfg.Dir, "scripts", fmt.Sprintf("%s-%d.lua", t.name, round))
	lua := luaScript{Lines: t.dataset.Lines, Span: t.span, Seed: int64(r.cfg.Seed)*1_000_003 + int64(r.turns)}.lua()
	if err := os.WriteFile(w.Script, []byte(lua), 0o644); err != nil {
		return turn{}, err
	}
	if err := alive(t, r.ps); err != nil {
		return turn{}, err
	}
	var shards []int
	for _, p := range t.shards {
		shards = append(shards, p.pid())
	}
	all := slices.Clone(shards)
	if t.door != nil {
		all = append(all, t.door.pid())
	}

	s := sample(all, sampleEvery)
	stop := r.pr.countdown(fmt.Sprintf("round %d: %s", round, t.label), d)
	shardCPU, serverCPU := groupCPU(shards), groupCPU(all)
	res, wrkCPU, err := w.run(ctx, t.url, d)
	shardCPU, serverCPU = groupCPU(shards)-shardCPU, groupCPU(all)-serverCPU
	stop()
	peaks := s.end()
	if err != nil {
		return turn{}, err
	}

	tn := turn{Target: t.name, Label: t.label, Round: round, Span: t.span, Result: res, ShardCPU: shardCPU, ServerCPU: serverCPU, WrkCPU: wrkCPU}
	for _, pid := range shards {
		tn.ShardRSS = max(tn.ShardRSS, peaks[pid].RSS)
		tn.ShardAnon = max(tn.ShardAnon, peaks[pid].Anon)
		if m, err := readMemory(pid); err == nil {
			tn.ShardHWM = max(tn.ShardHWM, m.HWM)
		}
	}
	if t.front != nil {
		tn.FrontRSS = peaks[t.front.pid()].RSS
	}
	return tn, alive(t, r.ps)
}

// fixedRates runs each target at half its measured maximum.
func (r *runner) fixedRates(ctx context.Context) (map[string]*rateResult, error) {
	rates := map[string]*rateResult{}
	if r.cfg.RateDuration <= 0 {
		return rates, nil
	}
	r.rep.summarize(nil)
	for _, t := range r.targets {
		i := r.rep.row(t.name)
		if i < 0 || r.rep.Rows[i].RPS < 2 || t.span > 1 {
			continue // the fixed-rate client asks for single lines only
		}
		f := fixedRate{Rate: r.rep.Rows[i].RPS / 2, Duration: r.cfg.RateDuration, Lines: t.dataset.Lines,
			Seed: r.cfg.Seed, Connections: r.cfg.RateConnections, Timeout: r.cfg.Timeout}
		stop := r.pr.countdown(fmt.Sprintf("fixed rate: %s at %s req/s", t.label, fmtRPS(f.Rate)), f.Duration)
		res, err := f.run(ctx, t.url)
		stop()
		if err != nil {
			return nil, err
		}
		rates[t.name] = &res
		r.pr.printf("fixed rate %-22s %9s req/s asked, %s sent  p50 %-9s p99 %-9s p99.9 %-9s errors %s",
			t.label, fmtRPS(res.Rate), fmtRPS(res.Achieved), fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.P999), fmtCount(res.Errors))
	}
	if len(rates) > 0 {
		r.rep.Notes = append(r.rep.Notes, "The fixed-rate client is fasthttp's client with a pacer, on the same CPUs, so its own cost is in its latencies; "+
			"a rate it could not keep up shows as a rate sent below the rate asked.")
	}
	return rates, nil
}
