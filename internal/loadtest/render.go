package loadtest

import (
	"cmp"
	"embed"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// fmtDur writes a latency in milliseconds with three significant digits.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "0"
	case ms < 1:
		return fmt.Sprintf("%.3f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// fmtCount writes n with thousands separators: 1234567 is "1,234,567".
func fmtCount(n int64) string { return humanize.Comma(n) }

func fmtRPS(x float64) string { return fmtCount(int64(math.Round(x))) }

// fmtCPU writes a CPU time per request in microseconds.
func fmtCPU(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func fmtMem(n int64) string {
	if n == 0 {
		return "–"
	}
	return formatBytes(n)
}

// reportStyle prints a table's text as columns with no rules or borders;
// Markdown takes no more from it than the header as written.
var reportStyle = func() table.Style {
	s := table.StyleDefault
	s.Options = table.OptionsNoBordersAndSeparators
	s.Format.Header = text.FormatDefault
	return s
}()

// newTable is a table (go-pretty) with the header head, whose columns
// align right, as numbers do, except those numbered (from 0) in left.
func newTable(head []string, left ...int) table.Writer {
	t := table.NewWriter()
	t.SetStyle(reportStyle)
	var row table.Row
	var cols []table.ColumnConfig
	for i, h := range head {
		row = append(row, h)
		if !slices.Contains(left, i) {
			cols = append(cols, table.ColumnConfig{Number: i + 1, Align: text.AlignRight})
		}
	}
	t.AppendHeader(row)
	t.SetColumnConfigs(cols)
	return t
}

func (r *Report) loadTable() table.Writer {
	t := newTable([]string{"target", "req/s", "rounds (min–max)", "p50", "p99", "p99.9", "errors",
		"server CPU/req", "of which shards", "req/s per server core", "wrk CPU/req", "shard RSS peak", "shard RssAnon peak", "shard VmHWM", "router RSS"}, 0, 2)
	for _, row := range r.Rows {
		perCore := "–"
		if row.ServerCPU > 0 {
			perCore = fmtRPS(float64(time.Second) / float64(row.ServerCPU))
		}
		t.AppendRow(table.Row{row.Label, fmtRPS(row.RPS), fmtRPS(row.RPSMin) + "–" + fmtRPS(row.RPSMax),
			fmtDur(row.P50), fmtDur(row.P99), fmtDur(row.P999), fmtErrors(row.result),
			fmtCPU(row.ServerCPU), fmtCPU(row.ShardCPU), perCore, fmtCPU(row.WrkCPU), fmtMem(row.ShardRSS), fmtMem(row.ShardAnon), fmtMem(row.ShardHWM), fmtMem(row.FrontRSS)})
	}
	return t
}

// fmtErrors writes the errors with their kinds: "12 (10 status, 2
// timeout)".
func fmtErrors(res result) string {
	if res.errors() == 0 {
		return "0"
	}
	var kinds []string
	for _, k := range []struct {
		n    int64
		name string
	}{{res.Status, "status"}, {res.Connect, "connect"}, {res.Read, "read"}, {res.Write, "write"}, {res.Timeout, "timeout"}} {
		if k.n > 0 {
			kinds = append(kinds, fmtCount(k.n)+" "+k.name)
		}
	}
	return fmtCount(res.errors()) + " (" + strings.Join(kinds, ", ") + ")"
}

// routingTable sets each front door before 3 shards beside the same
// before 1,000.
func (r *Report) routingTable() table.Writer {
	t := newTable([]string{"front door", "req/s, 3 shards", "req/s, 1,000 shards", "1,000 / 3", "front door CPU/req, 3 shards", "front door CPU/req, 1,000 shards"}, 0)
	for _, door := range []string{"nginx", "router"} {
		i3, i1000 := r.row(door+"3"), r.row(door+"1000")
		if i3 < 0 || i1000 < 0 || r.Rows[i3].RPS == 0 {
			continue
		}
		a, b := r.Rows[i3], r.Rows[i1000]
		t.AppendRow(table.Row{door, fmtRPS(a.RPS), fmtRPS(b.RPS), fmt.Sprintf("%.2f", b.RPS/a.RPS), fmtCPU(a.ServerCPU - a.ShardCPU), fmtCPU(b.ServerCPU - b.ShardCPU)})
	}
	return t
}

// rangeTable sets ranges of lines beside single lines, by the line.
func (r *Report) rangeTable() table.Writer {
	t := newTable([]string{"target", "lines/request", "req/s", "lines/s", "MB/s", "server CPU/line", "errors"}, 0)
	if r.row("range") < 0 {
		return t
	}
	for _, name := range []string{"shard", "range"} {
		i := r.row(name)
		if i < 0 {
			continue
		}
		row := r.Rows[i]
		t.AppendRow(table.Row{row.Label, fmtCount(row.Span), fmtRPS(row.RPS), fmtRPS(row.RPS * float64(row.Span)),
			fmt.Sprintf("%.0f", row.mbps()), fmtCPU(row.ServerCPU / time.Duration(row.Span)), fmtErrors(row.result)})
	}
	return t
}

// memoryTable is the big range's.
func (r *Report) memoryTable() table.Writer {
	t := newTable([]string{"range", "bytes received", "byte-exact", "took", "samples", "RssAnon before", "RssAnon during", "growth", "VmRSS before", "VmRSS during"}, 0, 2)
	if m := r.RangeMemory; m != nil {
		t.AppendRow(table.Row{"/lines/1..-1 of " + m.Dataset, fmtCount(m.Got), yesNo(m.Exact), fmtDur(m.Took), strconv.Itoa(m.Samples),
			formatBytes(m.Before.Anon), formatBytes(m.During.Anon), signedBytes(m.growth()), formatBytes(m.Before.RSS), formatBytes(m.During.RSS)})
	}
	return t
}

// signedBytes writes a change of memory: "+1.2 MiB", "-512 KiB".
func signedBytes(n int64) string {
	if n < 0 {
		return "-" + formatBytes(-n)
	}
	return "+" + formatBytes(n)
}

func (r *Report) rateTable() table.Writer {
	t := newTable([]string{"target", "rate asked", "rate sent", "p50", "p90", "p99", "p99.9", "max", "errors"}, 0)
	for _, row := range r.Rows {
		if q := row.Rate; q != nil {
			t.AppendRow(table.Row{row.Label, fmtRPS(q.Rate), fmtRPS(q.Achieved), fmtDur(q.P50), fmtDur(q.P90),
				fmtDur(q.P99), fmtDur(q.P999), fmtDur(q.Max), fmtCount(q.Errors)})
		}
	}
	return t
}

func (r *Report) coldTable() table.Writer {
	t := newTable([]string{"data file", "median", "min", "max", "starts"}, 0)
	for _, c := range r.Cold {
		t.AppendRow(table.Row{c.Dataset, fmtDur(median(c.Times)), fmtDur(slices.Min(c.Times)), fmtDur(slices.Max(c.Times)), strconv.Itoa(len(c.Times))})
	}
	return t
}

func (r *Report) ratioTable() table.Writer {
	t := newTable([]string{"ratio of req/s", "whole run", "by round", "by server CPU/req"}, 0, 2)
	for _, q := range r.Ratios {
		var rounds []string
		for _, x := range q.Rounds {
			rounds = append(rounds, fmt.Sprintf("%.2f", x))
		}
		byCPU := "–"
		if q.ByCPU > 0 {
			byCPU = fmt.Sprintf("%.2f", q.ByCPU)
		}
		t.AppendRow(table.Row{q.Name, fmt.Sprintf("%.2f", q.Value), strings.Join(rounds, " "), byCPU})
	}
	return t
}

func (r *Report) checkTable() table.Writer {
	t := newTable([]string{"target", "want", "measured", "verdict"}, 0, 1, 3)
	for _, c := range r.Checks {
		v := "met"
		if !c.OK {
			v = "MISSED"
		}
		t.AppendRow(table.Row{c.Name, c.Want, c.Got, v})
	}
	return t
}

func (r *Report) turnTable() table.Writer {
	t := newTable([]string{"round", "target", "req/s", "p50", "p99", "p99.9", "non-2xx", "connect", "read", "write", "timeout"}, 1)
	for _, tn := range r.Turns {
		res := tn.Result
		t.AppendRow(table.Row{strconv.Itoa(tn.Round), cmp.Or(tn.Label, tn.Target), fmtRPS(res.rps()), fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.P999),
			fmtCount(res.Status), fmtCount(res.Connect), fmtCount(res.Read), fmtCount(res.Write), fmtCount(res.Timeout)})
	}
	return t
}

func (d *dataset) describe() string {
	s := fmt.Sprintf("%s: %s bytes, %s lines (mean %.0f bytes a line)", d.name(), fmtCount(d.Size), fmtCount(d.Lines), float64(d.Size)/float64(max(d.Lines, 1)))
	switch {
	case d.Reused:
		s += ", reused from an earlier run"
	case d.IndexTime > 0:
		s += fmt.Sprintf(", generated in %.1f s, indexed in %.1f s (%.0f MB/s)", d.GenerateTime.Seconds(), d.IndexTime.Seconds(), float64(d.Size)/1e6/d.IndexTime.Seconds())
	}
	if d.Cached >= 0 && (d.Cached > 0 || d.CachedWarm > 0 || d.CachedEnd > 0) {
		s += fmt.Sprintf("; in the page cache: %.0f%% found", 100*d.Cached)
		if d.Warmed {
			s += fmt.Sprintf(", %.0f%% after reading it once", 100*d.CachedWarm)
		}
		if d.CachedEnd >= 0 {
			s += fmt.Sprintf(", %.0f%% at the end", 100*d.CachedEnd)
		}
	}
	return s
}

// reportFiles lay the report out, as text and as Markdown, around its
// tables: the prose that says what each table measures is there.
//
//go:embed report.txt.tmpl report.md.tmpl
var reportFiles embed.FS

var reportTemplates = template.Must(template.New("report").Funcs(template.FuncMap{"bytes": formatBytes}).ParseFS(reportFiles, "report.*.tmpl"))

// page is what the templates show: the report, its data files described,
// and its tables rendered, by name; a table without rows is left out.
type page struct {
	*Report
	Data   []string
	Tables map[string]string
}

func (r *Report) write(w io.Writer, name string, render func(table.Writer) string) error {
	p := page{Report: r, Tables: map[string]string{}}
	for _, d := range r.Datasets {
		p.Data = append(p.Data, d.describe())
	}
	for name, t := range map[string]table.Writer{"load": r.loadTable(), "rate": r.rateTable(), "cold": r.coldTable(),
		"routing": r.routingTable(), "ranges": r.rangeTable(), "memory": r.memoryTable(), "ratios": r.ratioTable(),
		"checks": r.checkTable(), "turns": r.turnTable()} {
		if t.Length() > 0 {
			p.Tables[name] = render(t)
		}
	}
	return reportTemplates.ExecuteTemplate(w, name, p)
}

// WriteText prints the report as aligned text tables.
func (r *Report) WriteText(w io.Writer) error {
	return r.write(w, "report.txt.tmpl", table.Writer.Render)
}

// WriteMarkdown writes the report as Markdown, for docs/bench and the
// README's Performance section.
func (r *Report) WriteMarkdown(w io.Writer) error {
	return r.write(w, "report.md.tmpl", table.Writer.RenderMarkdown)
}
