package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// bigLine is the number of the line of 5 MiB in TestRangesThroughBothDoors.
const bigLine = 1500

// nextLink is a shard's Link to the rest of a range.
var nextLink = regexp.MustCompile(`^</lines/([1-9][0-9]*)\.\.([1-9][0-9]*)>; rel="next"$`)

// TestRangesThroughBothDoors cuts a file with a line of 5 MiB and a last
// line without '\n' into three shards with `lines shard`, and asks both
// front doors for ranges: the router answers each whole; through NGINX the
// client follows the next links. Both must give the file's bytes exactly.
func TestRangesThroughBothDoors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts shard processes, nginx and the router")
	}
	testenv.Command(t, "nginx")
	var data bytes.Buffer
	for i, l := range testenv.Lines(testenv.Varied(3000)) {
		if i+1 == bigLine {
			data.WriteString(strings.Repeat("five mebibytes ", 5<<20/15))
			data.WriteByte('\n')
			continue
		}
		data.Write(l)
	}
	data.WriteString("the last line, without newline")
	c := startCluster(t, data.Bytes(), []int{1, 1, 1})
	require.Equal(t, int64(3001), c.total)

	var cases [][2]int64 // positive, resolved ends
	for _, s := range c.manifest.Shards {
		cases = append(cases,
			[2]int64{s.First, s.Last},                 // exactly one shard
			[2]int64{s.First, min(s.Last+1, c.total)}, // a boundary and one more
			[2]int64{max(s.First-1, 1), s.Last},       // one before a boundary
			[2]int64{s.First + 1, s.First + 10},       // within
		)
	}
	cases = append(cases,
		[2]int64{1, c.total},                                            // the whole file
		[2]int64{bigLine - 2, bigLine + 2},                              // around the 5 MiB line
		[2]int64{c.total - 99, c.total},                                 // the tail
		[2]int64{c.manifest.Shards[0].Last, c.manifest.Shards[2].First}, // across three shards
	)
	ctx := context.Background()
	for _, rg := range cases {
		a, b := rg[0], rg[1]
		want := bytes.Join(c.lines[a-1:b], nil)
		path := fmt.Sprintf("/lines/%d..%d", a, b)

		got := c.get(ctx, c.router+path)
		require.NoError(t, got.err, "router %s", path)
		require.Equal(t, http.StatusOK, got.status, "router %s: %.200s", path, got.body)
		assert.Empty(t, got.header.Get("Link"), "router %s: the router follows the links itself", path)
		assert.True(t, bytes.Equal(want, got.body), "router %s: %d bytes, want %d", path, len(got.body), len(want))

		body, hops := c.follow(t, c.nginx, path)
		assert.True(t, bytes.Equal(want, body), "nginx %s: %d bytes, want %d", path, len(body), len(want))
		assert.Equal(t, c.shardsOf(a, b), hops, "nginx %s: one answer a shard", path)
	}

	t.Run("negative ends and leading zeros", func(t *testing.T) {
		want := bytes.Join(c.lines[c.total-100:], nil)
		for _, path := range []string{"/lines/-100..-1", "/lines/-0100..-01", fmt.Sprintf("/lines/%d..-1", c.total-99)} {
			got := c.get(ctx, c.router+path)
			require.NoError(t, got.err, "router %s", path)
			assert.Equal(t, http.StatusOK, got.status, "router %s", path)
			assert.True(t, bytes.Equal(want, got.body), "router %s", path)
			body, _ := c.follow(t, c.nginx, path)
			assert.True(t, bytes.Equal(want, body), "nginx %s", path)
		}
	})

	t.Run("NDJSON across the shards", func(t *testing.T) {
		a, b := c.manifest.Shards[0].Last-2, c.manifest.Shards[1].First+2
		path := fmt.Sprintf("/lines/%d..%d", a, b)
		got := c.get(ctx, c.router+path, "Accept", "application/x-ndjson")
		require.NoError(t, got.err)
		require.Equal(t, http.StatusOK, got.status, "%.200s", got.body)
		objs := testenv.DecodeNDJSON(t, got.body)
		require.Len(t, objs, int(b-a+1))
		for i, o := range objs {
			n := a + int64(i)
			assert.Equal(t, n, o.Number)
			assert.Equal(t, strings.TrimSuffix(string(c.line(n)), "\n"), o.Line, "line %d", n)
		}
	})

	t.Run("errors at both doors", func(t *testing.T) {
		for path, want := range map[string]int{
			"/lines/10..5": http.StatusBadRequest, "/lines/0..5": http.StatusBadRequest,
			"/lines/1...5": http.StatusBadRequest, "/lines/1..x": http.StatusBadRequest,
			"/lines/..5": http.StatusBadRequest, "/lines/5..": http.StatusBadRequest,
			"/lines/1..3002": http.StatusRequestEntityTooLarge, "/lines/3002..3003": http.StatusRequestEntityTooLarge,
			"/lines/-3002..-1": http.StatusRequestEntityTooLarge,
		} {
			for _, d := range c.doors() {
				got := c.get(ctx, d.url+path)
				require.NoError(t, got.err, "%s %s", d.name, path)
				assert.Equal(t, want, got.status, "%s %s: %.200s", d.name, path, got.body)
			}
		}
	})
}

// follow asks base for path and then for each next link, as a client of
// NGINX reads a range across shards; it returns the bodies joined and the
// number of answers.
func (c *cluster) follow(t *testing.T, base, path string) ([]byte, int) {
	t.Helper()
	var out []byte
	for hops := 1; ; hops++ {
		got := c.get(context.Background(), base+path)
		require.NoError(t, got.err, "%s", path)
		require.Equal(t, http.StatusOK, got.status, "%s: %.200s", path, got.body)
		out = append(out, got.body...)
		link := got.header.Get("Link")
		if link == "" {
			return out, hops
		}
		m := nextLink.FindStringSubmatch(link)
		require.NotNil(t, m, "%s: Link %q", path, link)
		require.Less(t, hops, 10, "%s: too many next links", path)
		path = "/lines/" + m[1] + ".." + m[2]
	}
}

// shardsOf is the number of shards that hold lines a..b.
func (c *cluster) shardsOf(a, b int64) int {
	n := 0
	for _, s := range c.manifest.Shards {
		if s.First <= b && s.Last >= a {
			n++
		}
	}
	return n
}
