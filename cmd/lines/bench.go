package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/lineserver/lineserver/internal/atomicfile"
	"github.com/lineserver/lineserver/internal/loadtest"
)

// runBench runs the load harness: it generates and indexes a data file,
// measures the shard, the ceiling, nginx and the router under wrk in
// interleaved turns, and prints the table (and writes it as Markdown with
// --markdown).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := loadtest.Defaults
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	sizes := fs.String("size", "1GB", "data file size; a comma-separated list (1GB,10GB) measures the shard on each further size too")
	dir := fs.String("dir", d.Dir, "work folder for the data, binaries, configs and logs; data of the same size and seed is reused")
	seed := fs.Uint64("seed", d.Seed, "seed of the data and of the line numbers asked for")
	targets := fs.String("targets", strings.Join(d.Targets, ","), "what to measure, from "+strings.Join(loadtest.AllTargets, ","))
	rounds := fs.Int("rounds", d.Rounds, "turns per target, interleaved (A B A B)")
	duration := fs.Duration("duration", d.Duration, "length of one turn")
	warmup := fs.Duration("warmup", d.Warmup, "unmeasured turn per target before the first round (0 for none)")
	conns := fs.Int("connections", d.Connections, "wrk connections")
	threads := fs.Int("threads", d.Threads, "wrk threads")
	timeout := fs.Duration("timeout", d.Timeout, "a request slower than this counts as a timeout")
	rateDuration := fs.Duration("rate-duration", d.RateDuration, "length of the fixed-rate run at half of each target's maximum (0 for none)")
	rateConns := fs.Int("rate-connections", d.RateConnections, "requests in flight at most during the fixed-rate run")
	coldStarts := fs.Int("cold-starts", d.ColdStarts, "cold starts to time on each data file (0 for none)")
	coldCache := fs.Bool("cold-cache", false, "do not read the data and index into the page cache before the turns")
	bin := fs.String("bin", "", "folder with lineserver, ceiling and router already built (default: go build them)")
	markdown := fs.String("markdown", "", "also write the report as Markdown to this file")
	maxTime := fs.Duration("max-time", d.MaxTime, "stop the whole run after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: lines bench takes only flags, got %q", errUsage, pos)
	}
	cfg := loadtest.Config{
		Dir: *dir, Seed: *seed, Rounds: *rounds, Duration: *duration, Warmup: *warmup,
		Connections: *conns, Threads: *threads, Timeout: *timeout,
		RateDuration: *rateDuration, RateConnections: *rateConns,
		ColdStarts: *coldStarts, BinDir: *bin, ColdCache: *coldCache, MaxTime: *maxTime, Command: commandLine(args),
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := loadtest.ParseSize(s)
		if err != nil {
			return fmt.Errorf("%w: lines bench --size: %w", errUsage, err)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	cfg.Progress = loadtest.NewProgress(stderr, tty)

	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	fmt.Fprintln(stdout)
	if err := rep.WriteText(stdout); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if *markdown != "" {
		if err := writeMarkdown(*markdown, rep); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %s\n", *markdown)
	}
	return nil
}

func writeMarkdown(path string, rep *loadtest.Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, func(f *os.File) error { return rep.WriteMarkdown(f) })
}

// commandLine is the command as a user would type it again.
func commandLine(args []string) string {
	parts := []string{"lines", "bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
