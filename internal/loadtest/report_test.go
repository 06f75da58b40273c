package loadtest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTurn(target string, round int, rps int64, p99 time.Duration, rss int64) turn {
	return turn{Target: target, Round: round, ShardRSS: rss, ShardHWM: rss, ShardAnon: rss * 3 / 4, ServerCPU: time.Duration(rps) * 10 * 30 * time.Microsecond, ShardCPU: time.Duration(rps) * 10 * 25 * time.Microsecond, WrkCPU: time.Duration(rps) * 10 * 20 * time.Microsecond,
		Result: result{Requests: rps * 10, Duration: 10 * time.Second, P50: p99 / 4, P99: p99, P999: 2 * p99, Status: 1}}
}

// label gives each of r's turns the label of its target, as Run does.
func label(r *Report, labels map[string]string) {
	for i := range r.Turns {
		r.Turns[i].Label = labels[r.Turns[i].Target]
	}
}

func sampleReport() *Report {
	r := &Report{
		Command:  "lines bench --size 1GB,10GB",
		Date:     time.Date(2026, 11, 25, 9, 45, 0, 0, time.UTC),
		Elapsed:  4*time.Minute + 10*time.Second,
		Machine:  machine{CPUs: 2, CPU: "AMD EPYC", Memory: 24 << 30, Kernel: "6.1", Go: "go1.26", Wrk: "4.1.0", Nginx: "nginx/1.22.1", LoadBefore: "0.10 0.20 0.30", LoadAfter: "1.90 1.00 0.50"},
		Settings: "1000 connections",
		Source:   "commit abc1234",
		Datasets: []*dataset{{Size: 1e9, Lines: 3_300_000, Reused: true}, {Size: 10e9, Lines: 33_000_000, GenerateTime: 20 * time.Second, IndexTime: 5 * time.Second,
			Cached: 0.15, CachedWarm: 1, CachedEnd: 0.97, Warmed: true}},
		Cold:  []cold{{Dataset: "1GB", Times: []time.Duration{9 * time.Millisecond, 7 * time.Millisecond, 8 * time.Millisecond, 30 * time.Millisecond, 8 * time.Millisecond}}, {Dataset: "10GB", Times: []time.Duration{60 * time.Millisecond, 70 * time.Millisecond}}},
		Notes: []string{"a note | with a pipe"},
	}
	for round := 1; round <= 2; round++ {
		r.Turns = append(r.Turns,
			newTurn("shard", round, 45_000+int64(round)*1000, 20*time.Millisecond, 20<<20),
			newTurn("shard@10GB", round, 44_000, 21*time.Millisecond, 70<<20),
			newTurn("ceiling", round, 50_000, 18*time.Millisecond, 0),
			newTurn("nginx", round, 30_000, 30*time.Millisecond, 21<<20),
			newTurn("router", round, 27_000+int64(round)*3000, 40*time.Millisecond, 22<<20),
		)
	}
	label(r, map[string]string{"shard": "shard (1GB)", "shard@10GB": "shard (10GB)", "ceiling": "ceiling", "nginx": "nginx → shard", "router": "router → shard"})
	r.summarize(map[string]*rateResult{"shard": {Rate: 23_000, Achieved: 22_990, P50: 300 * time.Microsecond, P99: 2 * time.Millisecond, Sent: 230_000}})
	return r
}

func TestSummarize(t *testing.T) {
	r := sampleReport()
	require.Len(t, r.Rows, 5)
	shard := r.Rows[r.row("shard")]
	assert.InDelta(t, 46_500, shard.RPS, 0.01, "mean of the rounds")
	assert.InDelta(t, 46_000, shard.RPSMin, 0.01)
	assert.InDelta(t, 47_000, shard.RPSMax, 0.01)
	assert.Equal(t, 20*time.Millisecond, shard.P99)
	assert.Equal(t, int64(2), shard.errors())
	assert.Equal(t, 30*time.Microsecond, shard.ServerCPU, "per request")
	assert.Equal(t, 20*time.Microsecond, shard.WrkCPU)
	assert.NotNil(t, shard.Rate)
	assert.Equal(t, "shard (1GB)", shard.Label)

	ratios := map[string]ratio{}
	for _, q := range r.Ratios {
		ratios[q.Name] = q
	}
	assert.InDelta(t, 0.93, ratios["shard / ceiling"].Value, 0.001)
	assert.InDeltaSlice(t, []float64{0.92, 0.94}, ratios["shard / ceiling"].Rounds, 0.001, "paired by round")
	assert.InDelta(t, 1.0, ratios["shard / ceiling"].ByCPU, 0.001, "both cost 30 µs a request")
	assert.InDelta(t, 1.05, ratios["router / nginx (one shard)"].Value, 0.001)
	assert.InDeltaSlice(t, []float64{1.0, 1.1}, ratios["router / nginx (one shard)"].Rounds, 0.001)
	assert.InDelta(t, 1.0, ratios["router / nginx (one shard)"].FrontCPU, 0.001, "both front doors cost 5 µs a request")
	assert.Contains(t, ratios, "shard 10GB / shard 1GB")
	assert.NotContains(t, ratios, "router / nginx (three shards)", "no such rows, no ratio")

	verdict := map[string]bool{}
	for _, c := range r.Checks {
		verdict[c.Name] = c.OK
	}
	assert.Equal(t, map[string]bool{
		"shard / ceiling":                                true,
		"router / nginx (one shard)":                     true,
		"front door CPU/req, router / nginx (one shard)": true,
		"shard peak memory, shard (1GB)":                 true,
		"shard peak memory, shard (10GB)":                false,
		"shard peak memory, nginx → shard":               true,
		"shard peak memory, router → shard":              true,
		"shard private memory (RssAnon), shard (1GB)":    true,
		// 70 MiB of RSS, of which 52.5 MiB private: the RSS check fails,
		// the private memory's passes.
		"shard private memory (RssAnon), shard (10GB)":   true,
		"shard private memory (RssAnon), nginx → shard":  true,
		"shard private memory (RssAnon), router → shard": true,
		"cold start, 1GB":  true,
		"cold start, 10GB": false,
	}, verdict)
	assert.Equal(t, 8*time.Millisecond, median(r.Cold[0].Times))
	assert.Equal(t, 65*time.Millisecond, median(r.Cold[1].Times), "the mean of the middle two")
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	sampleReport().WriteText(&b)
	out := b.String()
	for _, want := range []string{
		"2026-11-25 09:45 UTC", "2 CPUs (AMD EPYC)", "24.00 GiB memory", "load average 0.10 0.20 0.30 before, 1.90 1.00 0.50 after",
		"command: lines bench --size 1GB,10GB", "built from: commit abc1234",
		"1GB: 1,000,000,000 bytes, 3,300,000 lines", "reused", "generated in 20.0 s, indexed in 5.0 s (2000 MB/s)",
		"in the page cache: 15% found, 100% after reading it once, 97% at the end",
		"shard (1GB)", "46,500", "46,000–47,000", "20.0 ms", "20.0 MiB", "2 (2 status)", "30.0 µs", "25.0 µs", "33,333", "20.0 µs",
		"23,000", "22,990", "0.300 ms",
		"shard / ceiling", "0.93", "0.92 0.94", "MISSED", "met",
		"a note | with a pipe", "ran in 4m10s",
	} {
		assert.Contains(t, out, want)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	sampleReport().WriteMarkdown(&b)
	out := b.String()
	for _, want := range []string{
		"### Load test, 2026-11-25 09:45 UTC", "- Machine: 2 CPUs (AMD EPYC)", "- Command: `lines bench --size 1GB,10GB` (ran in 4m10s)", "- Built from: commit abc1234",
		"#### Maximum throughput", "#### Latency at a fixed rate", "#### Cold start", "#### Ratios", "#### Against the targets", "#### Every turn",
		"| target | req/s |", "| --- | ---:|", "- a note | with a pipe",
	} {
		assert.Contains(t, out, want)
	}
	// Every table row has as many cells as its header.
	var cols int
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if cols == 0 {
			cols = n
		}
		assert.Equal(t, cols, n, line)
	}
}

func TestFormatting(t *testing.T) {
	assert.Equal(t, "1,234,567", fmtCount(1234567))
	assert.Equal(t, "-1,000", fmtCount(-1000))
	assert.Equal(t, "999", fmtCount(999))
	assert.Equal(t, "0.420 ms", fmtDur(420*time.Microsecond))
	assert.Equal(t, "4.20 ms", fmtDur(4200*time.Microsecond))
	assert.Equal(t, "42.0 ms", fmtDur(42*time.Millisecond))
	assert.Equal(t, "420 ms", fmtDur(420*time.Millisecond))
	assert.Equal(t, "0", fmtDur(0))
	assert.Equal(t, "–", fmtMem(0))
}

// shardsAndRangesReport has the targets of issues 14 and 15: the front
// doors before 3 and 1,000 shards, single lines against ranges, and the
// big range's memory.
func shardsAndRangesReport() *Report {
	r := &Report{Date: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), Datasets: []*dataset{{Size: 1e9, Lines: 3_226_539}},
		RangeMemory: &rangeMemory{Dataset: "1GB", Got: 1e9, Exact: true, Took: 2 * time.Second, Samples: 21,
			Before: memory{RSS: 14 << 20, Anon: 3 << 20}, During: memory{RSS: 15 << 20, Anon: 4 << 20}}}
	// front is a front door's turn: cpu µs of server CPU a request, of
	// which 20 µs the shards'.
	front := func(target string, round int, rps, cpu int64) turn {
		n := rps * 10
		return turn{Target: target, Round: round, ServerCPU: time.Duration(n*cpu) * time.Microsecond, ShardCPU: time.Duration(n*20) * time.Microsecond,
			Result: result{Requests: n, Duration: 10 * time.Second}}
	}
	for round := 1; round <= 2; round++ {
		single := front("shard", round, 40_000, 25)
		single.ShardCPU = single.ServerCPU
		ranges := front("range", round, 2_000+int64(round-1)*400, 500)
		ranges.ShardCPU, ranges.Span = ranges.ServerCPU, rangeLines
		ranges.Result.Bytes = 2_000 * 10 * 310_000
		r.Turns = append(r.Turns, single, ranges,
			front("nginx3", round, 10_000, 60), front("nginx1000", round, 5_500, 120),
			front("router3", round, 9_000, 50), front("router1000", round, 8_800, 52))
	}
	label(r, map[string]string{"shard": "shard (1GB)", "range": "shard (1GB), 1,000-line ranges", "nginx3": "nginx → 3 shards",
		"nginx1000": "nginx → 1,000 shards", "router3": "router → 3 shards", "router1000": "router → 1,000 shards"})
	r.summarize(nil)
	return r
}

func TestSummarizeShardsAndRanges(t *testing.T) {
	r := shardsAndRangesReport()
	ratios := map[string]ratio{}
	for _, q := range r.Ratios {
		ratios[q.Name] = q
	}
	assert.InDelta(t, 0.55, ratios[ratioNginxShards].Value, 0.001)
	assert.InDelta(t, 0.5, ratios[ratioNginxShards].ByCPU, 0.001)
	assert.InDelta(t, 2.5, ratios[ratioNginxShards].FrontCPU, 0.001, "100 µs of the front door's a request against 40")
	assert.InDelta(t, 8_800.0/9_000, ratios[ratioRouterShards].Value, 0.001)

	rng := ratios[ratioRanges]
	assert.InDelta(t, 2_200.0*1000/40_000, rng.Value, 0.001, "lines per second, not requests")
	assert.InDeltaSlice(t, []float64{50, 60}, rng.Rounds, 0.001, "by the line, round by round")
	assert.InDelta(t, 50, rng.ByCPU, 0.001, "25 µs a single line against 0.5 µs a line of a range")
	assert.Equal(t, int64(rangeLines), r.Rows[r.row("range")].Span)
	assert.Equal(t, int64(1), r.Rows[r.row("shard")].Span)

	verdict := map[string]string{}
	for _, c := range r.Checks {
		verdict[c.Name] = c.Got
		if !c.OK {
			verdict[c.Name] += " MISSED"
		}
	}
	assert.Equal(t, "0.55 MISSED", verdict[ratioNginxShards], "issue 14's target")
	assert.Equal(t, "55.0", verdict[ratioRanges], "issue 15's target")
	assert.Equal(t, "yes", verdict["range of 1GB byte-exact"])
	assert.Equal(t, "1.0 MiB", verdict["shard RssAnon growth, range of 1GB"])
	assert.NotContains(t, verdict, ratioRouterShards, "the issue sets no target for the router")

	r.RangeMemory.Exact, r.RangeMemory.During.Anon = false, 300<<20
	r.summarize(nil)
	for _, c := range r.Checks {
		if strings.Contains(c.Name, "range of 1GB") {
			assert.False(t, c.OK, c.Name)
		}
	}
}

func TestWriteShardsAndRanges(t *testing.T) {
	r := shardsAndRangesReport()
	var text, md bytes.Buffer
	r.WriteText(&text)
	r.WriteMarkdown(&md)
	for _, out := range []string{text.String(), md.String()} {
		for _, want := range []string{
			"Routing, 3 shards against 1,000", "Ranges against single lines", "Shard memory while serving the whole file as one range",
			ratioNginxShards, ratioRouterShards, ratioRanges,
			"40.0 µs", "100.0 µs", // the front door's CPU a request, nginx at 3 and at 1,000 shards
			"2,200,000", "0.5 µs", "25.0 µs", "620", // lines/s, CPU/line, MB/s of the ranges
			"/lines/1..-1 of 1GB", "1,000,000,000", "3.0 MiB", "4.0 MiB", "+1.0 MiB", "2000 ms",
		} {
			assert.Contains(t, out, want)
		}
	}
	// A report without these targets has none of their sections.
	text.Reset()
	sampleReport().WriteText(&text)
	assert.NotContains(t, text.String(), "Routing, 3 shards")
	assert.NotContains(t, text.String(), "Ranges against")
	assert.NotContains(t, text.String(), "one range")
}

func TestSignedBytes(t *testing.T) {
	assert.Equal(t, "+1.0 MiB", signedBytes(1<<20))
	assert.Equal(t, "-512 KiB", signedBytes(-512<<10))
	assert.Equal(t, "+0 B", signedBytes(0))
}
