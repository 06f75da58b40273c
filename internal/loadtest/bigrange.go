package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"
)

// rangeMemory is a shard's memory before and while it serves the whole of
// a data file as one range (/lines/1..-1), which it must stream in
// constant memory whatever the range's size.
type rangeMemory struct {
	// Dataset names the data file.
	Dataset string
	// Got is the bytes of the body received; Exact says they equal the
	// file byte for byte.
	Got   int64
	Exact bool
	// Took is the time from sending the request to the body's end.
	Took time.Duration
	// Before is the largest of each figure sampled while the shard was
	// idle, after it had served one range of rangeLines lines; During
	// the largest while the body streamed, over Samples samples.
	Before, During memory
	Samples        int
}

// growth is how much the shard's anonymous memory (its heap and stacks,
// not the file's pages it maps) grew while serving the range.
func (m rangeMemory) growth() int64 { return m.During.Anon - m.Before.Anon }

// bigRange measures rangeMemory on the first data file when the targets
// include bigrange, with a shard of its own that is stopped afterwards,
// before the other targets' servers start.
func (r *runner) bigRange(ctx context.Context) error {
	if !slices.Contains(r.cfg.Targets, "bigrange") {
		return nil
	}
	d := r.rep.Datasets[0]
	r.pr.printf("big range: the shard's memory while it serves all of %s as one range", d.name())
	m, err := r.measureRangeMemory(ctx, d)
	if err != nil {
		return fmt.Errorf("big range: %w", err)
	}
	r.rep.RangeMemory = &m
	r.pr.printf("big range: %s in %s, RssAnon %s before, %s during", formatBytes(m.Got), m.Took.Round(time.Millisecond),
		formatBytes(m.Before.Anon), formatBytes(m.During.Anon))
	return nil
}

// sampleEvery is how often the shard's memory is read during a turn and
// during the big range.
const sampleEvery = 100 * time.Millisecond

// measureRangeMemory starts a shard over d, has it serve one range of
// rangeLines lines, samples its idle memory for a second, then reads
// /lines/1..-1 to its end while sampling, and compares its SHA-256 with
// the file's.
func (r *runner) measureRangeMemory(ctx context.Context, d *dataset) (rangeMemory, error) {
	m := rangeMemory{Dataset: d.name()}
	s, err := r.startShard(ctx, "bigrange", d, 1, d.Lines)
	if err != nil {
		return m, err
	}
	defer s.proc.stop(time.Second)
	pid := s.proc.pid()
	client := &http.Client{}
	first := fmt.Sprintf("/lines/1..%d", min(rangeLines, d.Lines))
	if _, err := get(ctx, client, s.url+first, io.Discard); err != nil {
		return m, err
	}

	idle := sample([]int{pid}, sampleEvery)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	m.Before = idle.end()[pid]

	body := sha256.New()
	busy := sample([]int{pid}, sampleEvery)
	start := time.Now()
	m.Got, err = get(ctx, client, s.url+"/lines/1..-1", body)
	m.Took = time.Since(start)
	m.During = busy.end()[pid]
	m.Samples = busy.n
	if err != nil {
		return m, err
	}
	f, err := os.Open(d.Data)
	if err != nil {
		return m, err
	}
	defer f.Close()
	file := sha256.New()
	if _, err := io.Copy(file, f); err != nil {
		return m, err
	}
	m.Exact = m.Got == d.Size && bytes.Equal(body.Sum(nil), file.Sum(nil))
	select {
	case <-s.proc.done:
		return m, fmt.Errorf("the shard exited during the range (%v); its log: %s", s.proc.err, r.ps.logPath(s.proc))
	default:
	}
	return m, nil
}

// get GETs url, which must answer 200, and copies its body to w to the
// end; it returns the body's length.
func get(ctx context.Context, client *http.Client, url string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s after %d bytes: %w", url, n, err)
	}
	return n, nil
}
