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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// AllTargets are what a run can measure, in the order of its turns:
// the shard itself, the ceiling (a constant 50-byte body on the same
// framework), nginx and the router in front of the shard, and both in front
// of three shards.
var AllTargets = []string{"shard", "ceiling", "nginx", "router", "nginx3", "router3"}

// Config says what a run measures and how. Zero fields take the defaults
// that Defaults lists.
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
	// turn per target before the first round (negative for none).
	Duration, Warmup time.Duration
	// Connections and Threads are wrk's; Timeout its request timeout.
	Connections, Threads int
	Timeout              time.Duration
	// RateDuration is the length of the fixed-rate run of each target, at
	// half its measured maximum (negative for none); RateConnections
	// bounds its requests in flight.
	RateDuration    time.Duration
	RateConnections int
	// ColdStarts is how many cold starts to time on each data file
	// (negative for none).
	ColdStarts int
	// BinDir, when set, holds lineserver, ceiling and router already
	// built; otherwise they are built with go into Dir.
	BinDir string
	// Wrk and Nginx are the tools' paths; empty means looked up on PATH.
	Wrk, Nginx string
	// MaxTime bounds the whole run.
	MaxTime time.Duration
	// Command is the command line, for the report.
	Command string
	// Progress shows what the run does; nil shows nothing.
	Progress *Progress
}

// Defaults are the settings of a zero Config.
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

func (c Config) withDefaults() Config {
	d := Defaults
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Dir == "" {
		c.Dir = d.Dir
	}
	if len(c.Sizes) == 0 {
		c.Sizes = d.Sizes
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if len(c.Targets) == 0 {
		c.Targets = d.Targets
	}
	if c.Rounds == 0 {
		c.Rounds = d.Rounds
	}
	set(&c.Duration, d.Duration)
	set(&c.Warmup, d.Warmup)
	set(&c.Timeout, d.Timeout)
	set(&c.RateDuration, d.RateDuration)
	set(&c.MaxTime, d.MaxTime)
	if c.Connections == 0 {
		c.Connections = d.Connections
	}
	if c.Threads == 0 {
		c.Threads = d.Threads
	}
	if c.RateConnections == 0 {
		c.RateConnections = d.RateConnections
	}
	if c.ColdStarts == 0 {
		c.ColdStarts = d.ColdStarts
	}
	return c
}

func (c Config) check() error {
	var errs []error
	for _, t := range c.Targets {
		if !slices.Contains(AllTargets, t) {
			errs = append(errs, fmt.Errorf("unknown target %q (known: %v)", t, AllTargets))
		}
	}
	if c.Rounds < 1 || c.Duration < 100*time.Millisecond || c.Connections < 1 || c.Threads < 1 {
		errs = append(errs, errors.New("rounds, connections and threads must be at least 1 and a turn at least 100ms"))
	}
	return errors.Join(errs...)
}

// target is one thing under load.
type target struct {
	name, label string
	url         string
	dataset     *Dataset
	// shards are the processes whose memory is the shard's; door is the
	// front door (nginx or the router), if any; front is the Go router,
	// whose memory is sampled too.
	shards      []*Proc
	door, front *Proc
}

// Run measures what cfg says and returns the report. It stops every
// process it started before it returns, also when ctx ends (Ctrl-C).
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.MaxTime, fmt.Errorf("the run took longer than %v", cfg.MaxTime))
	defer cancel()
	pr := cfg.Progress
	start := time.Now()

	binDir, logDir := filepath.Join(cfg.Dir, "bin"), filepath.Join(cfg.Dir, "logs")
	os.RemoveAll(logDir)
	for _, d := range []string{binDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	ps := &Procs{LogDir: logDir}
	defer func() {
		pr.Printf("stopping every process started")
		ps.StopAll(2 * time.Second)
	}()

	rep = &Report{Command: cfg.Command, Date: start}
	bins, err := tools(cfg, rep)
	if err != nil {
		return nil, err
	}
	rep.Machine = ReadMachine(bins.Wrk, bins.Nginx)
	if cfg.BinDir != "" {
		b := FindBinaries(cfg.BinDir)
		bins.Lineserver, bins.Ceiling, bins.Router = b.Lineserver, b.Ceiling, b.Router
		if bins.Lineserver == "" {
			return nil, fmt.Errorf("no lineserver in %s", cfg.BinDir)
		}
	} else {
		pr.Printf("building lineserver, ceiling and router")
		b, notes, err := BuildBinaries(ctx, binDir)
		if err != nil {
			return nil, err
		}
		bins.Lineserver, bins.Ceiling, bins.Router = b.Lineserver, b.Ceiling, b.Router
		rep.Notes = append(rep.Notes, notes...)
	}
	targets := available(cfg.Targets, bins, rep)

	for _, size := range cfg.Sizes {
		pr.Printf("data: %s of lines in %s", FormatSize(size), cfg.Dir)
		d, err := EnsureData(ctx, cfg.Dir, size, cfg.Seed, func(stage string, done, total int64) { pr.Bar(stage, done, total) })
		if err != nil {
			return nil, err
		}
		pr.Printf("data: %s", d.describe())
		rep.Datasets = append(rep.Datasets, d)
	}

	if cfg.ColdStarts > 0 {
		for _, d := range rep.Datasets {
			pr.Printf("cold start: %d starts of the shard on %s", cfg.ColdStarts, d.Name())
			times, err := ColdStart(ctx, ps, bins.Lineserver, d, cfg.ColdStarts)
			if err != nil {
				return nil, err
			}
			c := Cold{Dataset: d.Name(), Times: times}
			rep.Cold = append(rep.Cold, c)
			pr.Printf("cold start on %s: median %s", d.Name(), fmtDur(c.Median()))
		}
	}

	pr.Printf("starting the servers")
	ts, err := startTargets(ctx, cfg, ps, bins, rep.Datasets, targets)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for _, t := range ts {
		labels[t.name] = t.label
	}
	rep.Settings = fmt.Sprintf("%d connections, %d wrk threads, %d rounds of %v turns (after a %v warm-up each), random line numbers",
		cfg.Connections, cfg.Threads, cfg.Rounds, cfg.Duration, max(cfg.Warmup, 0))

	w := Wrk{Path: bins.Wrk, Threads: cfg.Threads, Connections: cfg.Connections, Timeout: cfg.Timeout}
	scripts := filepath.Join(cfg.Dir, "scripts")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		return nil, err
	}
	turn := 0
	runTurn := func(t *target, round int, d time.Duration) (Turn, error) {
		turn++
		w.Script = filepath.Join(scripts, fmt.Sprintf("%s-%d.lua", t.name, round))
		lua := Script{Lines: t.dataset.Lines, Seed: int64(cfg.Seed)*1_000_003 + int64(turn)}.Lua()
		if err := os.WriteFile(w.Script, []byte(lua), 0o644); err != nil {
			return Turn{}, err
		}
		if err := alive(t, ps); err != nil {
			return Turn{}, err
		}
		var pids []int
		for _, p := range t.shards {
			pids = append(pids, p.Pid())
		}
		if t.front != nil {
			pids = append(pids, t.front.Pid())
		}
		groups := slices.Clone(pids)
		if t.door != nil && t.door != t.front {
			groups = append(groups, t.door.Pid())
		}
		s := Sample(pids, 100*time.Millisecond)
		stop := pr.Countdown(fmt.Sprintf("round %d: %s", round, t.label), d)
		shardCPU, serverCPU := GroupCPU(pids[:len(t.shards)]), GroupCPU(groups)
		res, wrkCPU, err := w.Run(ctx, t.url, d)
		shardCPU, serverCPU = GroupCPU(pids[:len(t.shards)])-shardCPU, GroupCPU(groups)-serverCPU
		stop()
		peaks := s.Stop()
		if err != nil {
			return Turn{}, err
		}
		tn := Turn{Target: t.name, Round: round, Result: res, ShardCPU: shardCPU, ServerCPU: serverCPU, WrkCPU: wrkCPU}
		for _, p := range t.shards {
			tn.ShardRSS = max(tn.ShardRSS, peaks[p.Pid()].RSS)
			if m, err := ReadMemory(p.Pid()); err == nil {
				tn.ShardHWM = max(tn.ShardHWM, m.HWM)
			}
		}
		if t.front != nil {
			tn.FrontRSS = peaks[t.front.Pid()].RSS
		}
		return tn, alive(t, ps)
	}

	if cfg.Warmup > 0 {
		for _, t := range ts {
			pr.Printf("warm-up: %s for %v", t.label, cfg.Warmup)
			if _, err := runTurn(t, 0, cfg.Warmup); err != nil {
				return nil, err
			}
		}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, t := range ts {
			tn, err := runTurn(t, round, cfg.Duration)
			if err != nil {
				return nil, err
			}
			rep.Turns = append(rep.Turns, tn)
			r := tn.Result
			pr.Printf("round %d/%d %-22s %9s req/s  p50 %-9s p99 %-9s p99.9 %-9s errors %s  shard RSS %s",
				round, cfg.Rounds, t.label, fmtRPS(r.RPS()), fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999),
				fmtCount(r.Errors()), fmtMem(tn.ShardRSS))
		}
	}

	rates := map[string]*RateResult{}
	if cfg.RateDuration > 0 {
		rep.Summarize(labels, nil)
		for _, t := range ts {
			i := rep.row(t.name)
			if i < 0 || rep.Rows[i].RPS < 2 {
				continue
			}
			f := FixedRate{Rate: rep.Rows[i].RPS / 2, Duration: cfg.RateDuration, Lines: t.dataset.Lines,
				Seed: cfg.Seed, Connections: cfg.RateConnections, Timeout: cfg.Timeout}
			stop := pr.Countdown(fmt.Sprintf("fixed rate: %s at %s req/s", t.label, fmtRPS(f.Rate)), f.Duration)
			res, err := f.Run(ctx, t.url)
			stop()
			if err != nil {
				return nil, err
			}
			rates[t.name] = &res
			pr.Printf("fixed rate %-22s %9s req/s asked, %s sent  p50 %-9s p99 %-9s p99.9 %-9s errors %s",
				t.label, fmtRPS(res.Rate), fmtRPS(res.Achieved), fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.P999), fmtCount(res.Errors))
		}
		if len(rates) > 0 {
			rep.Notes = append(rep.Notes, "The fixed-rate client is a minimal Go HTTP/1.1 client on the same CPUs, so its own cost is in its latencies; "+
				"a rate it could not keep up shows as a rate sent below the rate asked.")
		}
	}

	rep.Machine.LoadAfter = LoadAverage()
	rep.Elapsed = time.Since(start)
	rep.Notes = append(rep.Notes,
		"wrk, the servers and the fixed-rate client share the machine's CPUs: the figures are for the whole machine, load generator included.",
		"The data files are in the page cache (the machine has memory to spare): the figures are for serving from memory, not from disk.",
		"The shard's memory is VmRSS sampled every 100 ms during its turns and VmHWM, its peak since start, read after each turn.",
		"CPU per request is the CPU time (user and system, from /proc) that the target's processes used during its turns, "+
			"divided by the requests answered: the servers (front door and shards, or the ceiling) and wrk apart. "+
			"It varies less with a busy machine than requests per second do.")
	rep.Summarize(labels, rates)
	return rep, nil
}

// tools finds wrk (required) and nginx.
func tools(cfg Config, rep *Report) (Binaries, error) {
	var b Binaries
	var err error
	if b.Wrk, err = lookPath(cfg.Wrk, "wrk"); err != nil {
		return b, fmt.Errorf("wrk is required (Debian: apt-get install wrk): %w", err)
	}
	if b.Nginx, err = lookPath(cfg.Nginx, "nginx"); err != nil {
		rep.Notes = append(rep.Notes, "nginx is not installed (Debian: apt-get install nginx-light), so its targets were not measured.")
		b.Nginx = ""
	}
	return b, nil
}

func lookPath(given, name string) (string, error) {
	if given != "" {
		name = given
	}
	return exec.LookPath(name)
}

// available drops the targets whose programs are missing.
func available(want []string, b Binaries, rep *Report) []string {
	var out []string
	for _, t := range want {
		switch {
		case (t == "nginx" || t == "nginx3") && b.Nginx == "":
		case (t == "router" || t == "router3") && b.Router == "":
		case t == "ceiling" && b.Ceiling == "":
			rep.Notes = append(rep.Notes, "cmd/ceiling is missing, so the ceiling was not measured.")
		default:
			out = append(out, t)
		}
	}
	return out
}

func alive(t *target, ps *Procs) error {
	for _, p := range append(slices.Clone(t.shards), t.door) {
		if p == nil {
			continue
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited during the run (%v); its log: %s", p.Name, p.Err(), ps.logPath(p))
		default:
		}
	}
	return nil
}

// startTargets starts the servers that the targets need and returns the
// targets in the order of their turns: the shard on each further data file
// comes right after the shard on the first.
func startTargets(ctx context.Context, cfg Config, ps *Procs, bins Binaries, ds []*Dataset, names []string) ([]*target, error) {
	d := ds[0]
	want := func(ns ...string) bool {
		for _, n := range ns {
			if slices.Contains(names, n) {
				return true
			}
		}
		return false
	}
	var one *server
	if want("shard", "nginx", "router") {
		s, err := startShard(ctx, ps, bins.Lineserver, "shard", d, 1, d.Lines)
		if err != nil {
			return nil, err
		}
		one = s
	}
	var three []*server
	if want("nginx3", "router3") {
		for i := range 3 {
			first, last := shardRange(d.Lines, 3, i)
			s, err := startShard(ctx, ps, bins.Lineserver, fmt.Sprintf("shard-%d-of-3", i+1), d, first, last)
			if err != nil {
				return nil, err
			}
			three = append(three, s)
		}
	}
	procs := func(ss []*server) []*Proc {
		var out []*Proc
		for _, s := range ss {
			out = append(out, s.proc)
		}
		return out
	}
	var ts []*target
	for _, name := range names {
		t := &target{name: name, dataset: d}
		switch name {
		case "shard":
			t.label, t.url, t.shards = "shard ("+d.Name()+")", one.url, []*Proc{one.proc}
		case "ceiling":
			s, err := startCeiling(ctx, ps, bins.Ceiling)
			if err != nil {
				return nil, err
			}
			t.label, t.url, t.door = "ceiling (constant 50 B)", s.url, s.proc
		case "nginx", "router", "nginx3", "router3":
			shards, label := []*server{one}, "shard"
			if name == "nginx3" || name == "router3" {
				shards, label = three, "3 shards"
			}
			path := filepath.Join(cfg.Dir, fmt.Sprintf("manifest-%d.json", len(shards)))
			m, err := writeManifest(path, d, shards)
			if err != nil {
				return nil, err
			}
			var s *server
			if strings.HasPrefix(name, "nginx") {
				s, err = startNginx(ctx, ps, bins.Nginx, name, filepath.Join(cfg.Dir, name), m)
				t.label = "nginx → " + label
				if s != nil {
					t.door = s.proc
				}
			} else {
				s, err = startRouter(ctx, ps, bins.Router, name, path)
				t.label = "router → " + label
				if s != nil {
					t.door, t.front = s.proc, s.proc
				}
			}
			if err != nil {
				return nil, err
			}
			t.url, t.shards = s.url, procs(shards)
		}
		ts = append(ts, t)
		if name == "shard" {
			for _, other := range ds[1:] {
				s, err := startShard(ctx, ps, bins.Lineserver, "shard-"+other.Name(), other, 1, other.Lines)
				if err != nil {
					return nil, err
				}
				ts = append(ts, &target{name: "shard@" + other.Name(), label: "shard (" + other.Name() + ")",
					url: s.url, dataset: other, shards: []*Proc{s.proc}})
			}
		}
	}
	return ts, nil
}
