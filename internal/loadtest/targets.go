package loadtest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

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
