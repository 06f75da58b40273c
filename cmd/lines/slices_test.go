package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

// TestSlicesKnowTheirRange cuts a 30,000-line file into three shards and
// starts each slice with FILE_REPOSITORY_FILE_PATH alone: it serves its
// own lines exactly, 421 for the others', 413 beyond the end, and negative
// numbers of the whole file. Started with another range's settings, the
// README sample's among them, each slice refuses to start with one message
// that says what to fix.
func TestSlicesKnowTheirRange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the shard server")
	}
	bin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	dir := t.TempDir()
	var data []byte
	for i := 1; i <= 30_000; i++ {
		data = fmt.Appendf(data, "own line %d, %s\n", i, strings.Repeat("x", i%37))
	}
	lines := testenv.Lines(data)
	src := filepath.Join(dir, "own.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	out := filepath.Join(dir, "shards")
	_, _, err := callLines("shard", src, "--shards", "3", "--out", out)
	require.NoError(t, err)
	m, err := manifest.Load(filepath.Join(out, "manifest.json"))
	require.NoError(t, err)
	require.Len(t, m.Shards, 3)

	for i, s := range m.Shards {
		t.Run(s.Name+" alone", func(t *testing.T) {
			port := testenv.FreePort(t)
			p := testenv.Start(t, bin, nil, "FILE_REPOSITORY_FILE_PATH="+m.DataPath(i), "PORT="+strconv.Itoa(port))
			testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 30*time.Second, p)
			url := func(n int64) string { return fmt.Sprintf("%s/lines/%d", testenv.URL(port), n) }
			for n := s.First; n <= s.Last; n += 1 + (n % 7) {
				got, status := get(t, url(n))
				require.Equal(t, http.StatusOK, status, "line %d", n)
				require.Equal(t, string(lines[n-1]), string(got), "line %d", n)
			}
			for _, n := range []int64{s.First, s.Last} {
				got, status := get(t, url(n))
				require.Equal(t, http.StatusOK, status, "line %d", n)
				require.Equal(t, string(lines[n-1]), string(got), "line %d", n)
				got, status = get(t, url(n-30_001))
				require.Equal(t, http.StatusOK, status, "line %d", n-30_001)
				require.Equal(t, string(lines[n-1]), string(got), "line %d is line %d", n-30_001, n)
			}
			for _, n := range []int64{1, 102, 200, 300, 10_000, 20_000, 30_000, -1, -30_000} {
				r := n
				if r < 0 {
					r += 30_001
				}
				if r >= s.First && r <= s.Last {
					continue
				}
				_, status := get(t, url(n))
				assert.Equal(t, http.StatusMisdirectedRequest, status, "line %d is another shard's", n)
			}
			for _, n := range []int64{30_001, -30_001, 1 << 40} {
				_, status := get(t, url(n))
				assert.Equal(t, http.StatusRequestEntityTooLarge, status, "line %d is beyond the end", n)
			}
			assert.Contains(t, p.Output(), `"layout":"slice (manifest.json)"`)
		})
	}

	// A slice moved away from its manifest: only the settings speak.
	alone := filepath.Join(dir, "alone")
	require.NoError(t, os.MkdirAll(alone, 0o755))
	for i := range m.Shards {
		for _, f := range []string{m.DataPath(i), m.IndexPath(i)} {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(alone, filepath.Base(f)), b, 0o644))
		}
	}
	settings := func(first, last, total int64) []string {
		return []string{
			"INDEX_FIRST_LINE_NUMBER=" + strconv.FormatInt(first, 10),
			"INDEX_LAST_LINE_NUMBER=" + strconv.FormatInt(last, 10),
			"FILE_TOTAL_LINES=" + strconv.FormatInt(total, 10),
		}
	}
	sample := [][]string{settings(1, 101, 300), settings(102, 200, 300), settings(201, 300, 300)}
	type refusal struct {
		name, data string
		env        []string
		want       string
	}
	var cases []refusal
	for i, s := range m.Shards {
		beside, moved := m.DataPath(i), filepath.Join(alone, filepath.Base(m.DataPath(i)))
		for k, env := range sample {
			cases = append(cases, refusal{fmt.Sprintf("%s with the README sample's shard-%d settings", s.Name, k+1), beside, env,
				"disagree with manifest " + filepath.Join(out, "manifest.json") + ", which says data " + beside +
					fmt.Sprintf(" holds lines %d-%d of 30000: unset", s.First, s.Last)})
		}
		for k, o := range m.Shards {
			if k != i {
				cases = append(cases, refusal{fmt.Sprintf("%s with %s's settings", s.Name, o.Name), beside, settings(o.First, o.Last, 30_000),
					"disagree with manifest"})
			}
		}
		// Moved away from its manifest, given the sample's settings.
		want := map[int]string{
			0: fmt.Sprintf("FILE_TOTAL_LINES=300, but index %s_index.txt, read as the whole file's", moved),
			1: fmt.Sprintf("index %s_index.txt is a slice of %d lines (one entry per line), but INDEX_FIRST_LINE_NUMBER=102 and INDEX_LAST_LINE_NUMBER=200 are 99 lines", moved, s.Last-s.First+1),
			2: fmt.Sprintf("index %s_index.txt is a slice of %d lines (one entry per line), but INDEX_FIRST_LINE_NUMBER=102 and INDEX_LAST_LINE_NUMBER=200 are 99 lines", moved, s.Last-s.First+1),
		}[i]
		cases = append(cases, refusal{s.Name + " without its manifest, with the sample's shard-2 settings", moved, sample[1], want})
		if i > 0 {
			cases = append(cases, refusal{s.Name + " without its manifest or settings", moved, nil,
				fmt.Sprintf("index %s_index.txt starts at byte ", moved)})
		}
	}
	cases = append(cases, refusal{"shard-1 without its manifest, with the sample's shard-1 settings", filepath.Join(alone, "shard-1.txt"), sample[0],
		fmt.Sprintf("FILE_TOTAL_LINES=300, but index %s_index.txt starts at byte 0 and has %d entries", filepath.Join(alone, "shard-1.txt"), m.Shards[0].Last)})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := testenv.FreePort(t)
			p := testenv.Start(t, bin, nil, append([]string{"FILE_REPOSITORY_FILE_PATH=" + tc.data, "PORT=" + strconv.Itoa(port)}, tc.env...)...)
			require.Equal(t, 1, p.Wait(30*time.Second), p.Output())
			assert.Contains(t, p.Output(), tc.want)
			assert.Len(t, strings.Split(strings.TrimSpace(p.Output()), "\n"), 1, "one message: %s", p.Output())
		})
	}
}
