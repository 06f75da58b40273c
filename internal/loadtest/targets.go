package loadtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lineserver/lineserver/internal/atomicfile"
)

// target is one thing under load.
type target struct {
	name, label string
	url         string
	dataset     *dataset
	// shards are the processes whose memory is the shard's; door is the
	// front door (nginx or the router), if any; front is the Go router,
	// whose memory is sampled too.
	shards      []*process
	door, front *process
	// span is the lines a request asks for: 0 or 1 for single lines,
	// rangeLines for the range target.
	span int64
}

// available drops the targets whose programs are missing; notes on them
// were made where they went missing.
func available(want []string, b programs) []string {
	var out []string
	for _, t := range want {
		switch {
		case strings.HasPrefix(t, "nginx") && b.Nginx == "":
		case strings.HasPrefix(t, "router") && b.Router == "":
		case (t == "ceiling" || t == "floor") && b.Ceiling == "":
		default:
			out = append(out, t)
		}
	}
	return out
}

// serve is a started server's URL and process.
func serve(s *server, err error) (string, *process, error) {
	if err != nil {
		return "", nil, err
	}
	return s.url, s.proc, nil
}

func alive(t *target, ps *processes) error {
	for _, p := range append(slices.Clone(t.shards), t.door) {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during the run (%v); its log: %s", p.Name, p.err, ps.logPath(p))
		default:
		}
	}
	return nil
}

// startTargets starts the servers that the targets need and returns the
// targets in the order of their turns: the shard on each further data file
// comes right after the shard on the first. Every target has shard
// processes of its own, so that the memory and CPU time measured in its
// turns are its own: a Go process keeps the memory a busier turn made it
// grow for minutes after.
func (r *runner) startTargets(ctx context.Context, ds []*dataset, names []string) ([]*target, error) {
	d := ds[0]
	var ts []*target
	for _, name := range names {
		var t *target
		var err error
		switch name {
		case "shard":
			t, err = r.shardTarget(ctx, "shard", "shard", d)
		case "ceiling":
			t = &target{name: name, label: "ceiling (constant 50 B)", dataset: d}
			t.url, t.door, err = serve(r.startCeiling(ctx, "Constant", nil))
		case "floor":
			t = &target{name: name, label: "floor (two reads, no checks)", dataset: d}
			t.url, t.door, err = serve(r.startCeiling(ctx, "Reads", d))
		case "range":
			if t, err = r.shardTarget(ctx, "range", "range", d); err == nil {
				t.label, t.span = fmt.Sprintf("shard (%s), %s-line ranges", d.name(), fmtCount(rangeLines)), rangeLines
			}
		case "nginx", "router", "nginx3", "router3", "nginx1000", "router1000":
			t, err = r.doorTarget(ctx, name, d)
		}
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
		if name != "shard" {
			continue
		}
		for _, other := range ds[1:] {
			t, err := r.shardTarget(ctx, "shard@"+other.name(), "shard-"+other.name(), other)
			if err != nil {
				return nil, err
			}
			ts = append(ts, t)
		}
	}
	return ts, nil
}

// shardTarget is a shard over the whole of d, asked directly.
func (r *runner) shardTarget(ctx context.Context, name, proc string, d *dataset) (*target, error) {
	s, err := r.startShard(ctx, proc, d, 1, d.Lines)
	if err != nil {
		return nil, err
	}
	return &target{name: name, label: "shard (" + d.name() + ")", url: s.url, dataset: d, shards: []*process{s.proc}}, nil
}

// doorShards is how many shards the manifest of a front-door target
// lists: one for nginx and router, 3 for nginx3 and router3, 1,000 for
// nginx1000 and router1000.
func doorShards(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(name, "nginx"), "router"))
	if err != nil {
		return 1
	}
	return n
}

// maxDoorProcs is the most shard processes behind a front door: a manifest
// of more shards spreads them over this many, so that nginx1000 differs
// from nginx3 in its manifest only.
const maxDoorProcs = 3

// doorTarget is nginx or the router in front of the shards its name says
// (doorShards), served by as many shard processes, at most maxDoorProcs,
// with a manifest of its own.
func (r *runner) doorTarget(ctx context.Context, name string, d *dataset) (*target, error) {
	t := &target{name: name, dataset: d}
	n := doorShards(name)
	procs := min(n, maxDoorProcs)
	what := "shard"
	switch {
	case n > procs:
		what = fmt.Sprintf("%s shards (on %d processes)", fmtCount(int64(n)), procs)
	case n > 1:
		what = fmt.Sprintf("%d shards", n)
	}
	var urls []string
	for i := range procs {
		first, last := shardRange(d.Lines, procs, i)
		s, err := r.startShard(ctx, fmt.Sprintf("%s-shard-%d", name, i+1), d, first, last)
		if err != nil {
			return nil, err
		}
		urls = append(urls, s.url)
		t.shards = append(t.shards, s.proc)
	}
	m, err := manifestOver(d, urls, n)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(r.cfg.Dir, name+"-manifest.json")
	if err := atomicfile.Write(path, func(f *os.File) error { return m.Write(f) }); err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, "nginx") {
		t.label = "nginx → " + what
		t.url, t.door, err = serve(r.startNginx(ctx, name, filepath.Join(r.cfg.Dir, name), m))
	} else {
		t.label = "router → " + what
		t.url, t.door, err = serve(r.startRouter(ctx, name, path))
		t.front = t.door
	}
	return t, err
}
