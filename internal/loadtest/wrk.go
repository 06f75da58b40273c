package loadtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// luaScript describes the Lua script that makes wrk ask for random lines.
type luaScript struct {
	// Lines is the number of lines: each request asks for a line drawn
	// uniformly from 1 to Lines.
	Lines int64
	// Span, when more than 1, makes each request ask for a range of Span
	// lines (/lines/a..b) instead, whose first line a is drawn uniformly
	// from the ranges that lie within the file.
	Span int64
	// Seed seeds Lua's generator; each wrk thread adds its own number to
	// it, so threads ask for different lines.
	Seed int64
}

// resultPrefix starts the line that the script's done() prints, which
// parseWrk reads.
const resultPrefix = "@@lines-bench"

// luaText is the script's template, wrk.lua.tmpl; luaTemplate is it
// parsed, once.
//
//go:embed wrk.lua.tmpl
var luaText string

var luaTemplate = template.Must(template.New("lua").Parse(luaText))

// lua returns the script's text.
func (s luaScript) lua() string {
	lines := max(s.Lines, 1)
	span := min(max(s.Span, 1), lines)
	var b strings.Builder
	err := luaTemplate.Execute(&b, struct {
		Lines, Span, Seed int64
		Prefix            string
	}{lines, span, s.Seed, resultPrefix})
	if err != nil {
		panic(err) // the template and its data are fixed
	}
	return b.String()
}

// result is what one load run measured, as the script's done() prints it
// in JSON, times in nanoseconds.
type result struct {
	// Requests is the number of responses, Duration how long the run took.
	Requests int64         `json:"requests"`
	Duration time.Duration `json:"duration"`
	// Bytes is what the responses carried, headers included.
	Bytes int64 `json:"bytes"`
	// Status counts responses with a status of 400 or more (wrk's "non-2xx
	// or 3xx"); Connect, Read, Write and Timeout count socket errors.
	Status  int64 `json:"status"`
	Connect int64 `json:"connect"`
	Read    int64 `json:"read"`
	Write   int64 `json:"write"`
	Timeout int64 `json:"timeout"`
	// Latencies of the responses.
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
}

// rps is the requests per second.
func (r result) rps() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// mbps is the megabytes per second that the responses carried, headers
// included.
func (r result) mbps() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Duration.Seconds()
}

// add adds o's counts, time and latencies to r's.
func (r *result) add(o result) {
	r.Requests += o.Requests
	r.Duration += o.Duration
	r.Bytes += o.Bytes
	r.Status += o.Status
	r.Connect += o.Connect
	r.Read += o.Read
	r.Write += o.Write
	r.Timeout += o.Timeout
	r.P50 += o.P50
	r.P99 += o.P99
	r.P999 += o.P999
}

// errors is every failed request: bad statuses and socket errors.
func (r result) errors() int64 { return r.Status + r.Connect + r.Read + r.Write + r.Timeout }

// errNoResult reports wrk output without the script's result line.
var errNoResult = errors.New("wrk printed no result line")

// parseWrk reads the result line that the script's done() printed among
// wrk's output.
func parseWrk(out string) (result, error) {
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, resultPrefix+" "); ok {
			var r result
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				return result{}, fmt.Errorf("wrk result %s: %w", js, err)
			}
			return r, nil
		}
	}
	return result{}, errNoResult
}

// wrkCmd runs wrk against one URL.
type wrkCmd struct {
	// Path is wrk's path.
	Path string
	// Threads and Connections are wrk's -t and -c.
	Threads, Connections int
	// Timeout is wrk's --timeout: a request slower than this counts as a
	// timeout error.
	Timeout time.Duration
	// Script is the path of the Lua script.
	Script string
}

// args are wrk's arguments for a run of d against url.
func (w wrkCmd) args(url string, d time.Duration) []string {
	return []string{
		"-t", strconv.Itoa(max(w.Threads, 1)),
		"-c", strconv.Itoa(max(w.Connections, w.Threads, 1)),
		"-d", wholeSeconds(d),
		"--timeout", wholeSeconds(w.Timeout),
		"-s", w.Script,
		url,
	}
}

// wholeSeconds writes d for wrk, which takes whole seconds only: rounded
// up, at least 1s.
func wholeSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10) + "s"
}

// run runs wrk for d against url and returns what it measured and the
// CPU time wrk used. It kills wrk when ctx ends, and in any case a while
// after d has passed.
func (w wrkCmd) run(ctx context.Context, url string, d time.Duration) (result, time.Duration, error) {
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		return result{}, 0, fmt.Errorf("wrk: %s: load goes to 127.0.0.1 only", url)
	}
	ctx, cancel := context.WithTimeout(ctx, d+w.Timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.Path, w.args(url, d)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return result{}, 0, fmt.Errorf("wrk: %w", context.Cause(ctx))
		}
		return result{}, 0, fmt.Errorf("wrk %s: %w: %s", url, err, strings.TrimSpace(errOut.String()+out.String()))
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r, err := parseWrk(out.String())
	if err != nil {
		return result{}, 0, fmt.Errorf("wrk %s: %w:\n%s%s", url, err, out.String(), errOut.String())
	}
	return r, cpu, nil
}
