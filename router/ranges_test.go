package router

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

const ndjson = "application/x-ndjson"

// liveShards are real shards (cmd/lineserver), each serving a slice of a
// file that the real `lines shard` cut, as in production.
type liveShards struct {
	data  []byte
	lines [][]byte
	m     *manifest.Manifest // with each shard's URL
	procs []*testenv.Process
}

// startSlices cuts data into shards of perShard lines with `lines shard`
// and serves each slice from its folder, with its own settings alone.
func startSlices(t *testing.T, data []byte, perShard int) *liveShards {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and starts the shard server")
	}
	linesBin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lines")
	shardBin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	dir := t.TempDir()
	src := filepath.Join(dir, "file.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	out, err := exec.Command(linesBin, "shard", src, "--lines-per-shard", strconv.Itoa(perShard), "--out", filepath.Join(dir, "shards")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	m, err := manifest.Load(filepath.Join(dir, "shards", "manifest.json"))
	require.NoError(t, err)
	ls := &liveShards{data: data, lines: testenv.Lines(data), m: m}
	for i := range m.Shards {
		port := testenv.FreePort(t)
		p := testenv.Start(t, shardBin, nil, "FILE_REPOSITORY_FILE_PATH="+m.DataPath(i), "PORT="+strconv.Itoa(port), "LOG_FORMAT=text")
		testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", time.Minute, p)
		m.Shards[i].URLs = []string{testenv.URL(port)}
		ls.procs = append(ls.procs, p)
	}
	return ls
}

// want is the file's bytes of lines a to b.
func (ls *liveShards) want(a, b int64) string {
	return string(bytes.Join(ls.lines[a-1:b], nil))
}

// follow asks the shards directly for lines a..b, following their next
// links as a client of NGINX would, and returns the bodies and ETags.
func (ls *liveShards) follow(t *testing.T, a, b int64, accept string) (body []byte, etags []string) {
	t.Helper()
	link := regexp.MustCompile(`^</lines/(\d+)\.\.(\d+)>; rel="next"$`)
	for {
		i, ok := ls.m.Find(a)
		require.True(t, ok)
		req, err := http.NewRequest("GET", fmt.Sprintf("%s/lines/%d..%d", ls.m.Shards[i].URLs[0], a, b), nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		resp, err := client.Do(req)
		require.NoError(t, err)
		part, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "%s", part)
		body = append(body, part...)
		etags = append(etags, resp.Header.Get("ETag"))
		next := resp.Header.Get("Link")
		if next == "" {
			return body, etags
		}
		mm := link.FindStringSubmatch(next)
		require.NotNil(t, mm, next)
		a, _ = strconv.ParseInt(mm[1], 10, 64)
	}
}

// rangeFile is 3001 lines: varied ones, a line of 5 MiB as line 1500, and a
// last line without '\n'. Cut 1001 lines a shard, its shards serve
// 1..1001, 1002..2002 and 2003..3001.
func rangeFile() []byte {
	lines := testenv.Lines(testenv.Varied(2999))
	var b bytes.Buffer
	for i, l := range lines {
		if i == 1499 {
			b.WriteString(strings.Repeat("0123456789abcdef", 5<<20/16) + "\n")
		}
		b.Write(l)
	}
	b.WriteString("the last line, without newline")
	return b.Bytes()
}

// TestRanges asks the router in front of three real shards for ranges
// within a shard, across two and three, from the end, on the shards'
// boundaries, and with the 5 MiB line, as text and as NDJSON: each body is
// the file's bytes exactly, or the shards' own NDJSON, part after part.
func TestRanges(t *testing.T) {
	ls := startSlices(t, rangeFile(), 1001)
	require.Len(t, ls.m.Shards, 3)
	require.EqualValues(t, 3001, ls.m.TotalLines)
	require.EqualValues(t, 1001, ls.m.Shards[0].Last)
	require.EqualValues(t, 2002, ls.m.Shards[1].Last)
	rt := newRouter(t, ls.m, Options{})

	type tc struct {
		path string
		a, b int64
	}
	cases := []tc{
		{"/lines/1..-1", 1, 3001},
		{"/lines/-100..-1", 2902, 3001},
		{"/lines/-2500..-10", 502, 2992},
		{"/lines/0001..03", 1, 3},
		{"/lines/1001..1001", 1001, 1001},
		{"/lines/1001..1002", 1001, 1002},
		{"/lines/1002..2002", 1002, 2002},
		{"/lines/1..1001", 1, 1001},
		{"/lines/1001..2003", 1001, 2003},
		{"/lines/2002..2003", 2002, 2003},
		{"/lines/1002..3001", 1002, 3001},
		{"/lines/1400..1600", 1400, 1600},
		{"/lines/1500..1500", 1500, 1500},
		{"/lines/990..1500", 990, 1500},
		{"/lines/1500..2500", 1500, 2500},
		{"/lines/3001..3001", 3001, 3001},
	}
	rng := rand.New(rand.NewPCG(15, 15))
	for range 12 { // within one shard
		s := ls.m.Shards[rng.IntN(3)]
		a := s.First + rng.Int64N(s.Last-s.First+1)
		b := a + rng.Int64N(s.Last-a+1)
		cases = append(cases, tc{fmt.Sprintf("/lines/%d..%d", a, b), a, b})
	}
	for range 8 { // across two or three
		a := 1 + rng.Int64N(1001)
		b := 1002 + rng.Int64N(2000)
		cases = append(cases, tc{fmt.Sprintf("/lines/%d..%d", a, b), a, b})
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/lines/"), func(t *testing.T) {
			rec := get(rt, c.path)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			require.Equal(t, ls.want(c.a, c.b), rec.Body.String(), "the file's bytes exactly")
			assert.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, strconv.Itoa(rec.Body.Len()), rec.Header().Get("Content-Length"))
			assert.Equal(t, "public, max-age=31536000, immutable", rec.Header().Get("Cache-Control"))
			assert.Equal(t, "Accept", rec.Header().Get("Vary"))
			assert.Empty(t, rec.Header().Get("Link"), "the router follows the next links itself")
			direct, etags := ls.follow(t, c.a, c.b, "")
			require.Equal(t, string(direct), rec.Body.String())
			if len(etags) == 1 {
				assert.Equal(t, etags[0], rec.Header().Get("ETag"), "within a shard, the shard's answer as is")
			} else {
				sum := sha256.Sum256([]byte(strings.Join(etags, "")))
				assert.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, rec.Header().Get("ETag"))
			}

			nd := get(rt, c.path, "Accept", ndjson)
			require.Equal(t, 200, nd.Code, nd.Body.String())
			assert.Equal(t, ndjson, nd.Header().Get("Content-Type"))
			if cl := nd.Header().Get("Content-Length"); len(etags) > 1 {
				assert.Empty(t, cl, "NDJSON across shards is sent as it is encoded")
			} else if cl != "" { // a shard's short NDJSON may have one
				assert.Equal(t, strconv.Itoa(nd.Body.Len()), cl)
			}
			got := testenv.DecodeNDJSON(t, nd.Body.Bytes())
			require.Len(t, got, int(c.b-c.a+1))
			for i, l := range got {
				require.Equal(t, c.a+int64(i), l.Number)
				require.Equal(t, strings.TrimSuffix(string(ls.lines[l.Number-1]), "\n"), l.Line)
			}
			directND, _ := ls.follow(t, c.a, c.b, ndjson)
			require.Equal(t, string(directND), nd.Body.String(), "the shards' own NDJSON, part after part")
			assert.NotEqual(t, rec.Header().Get("ETag"), nd.Header().Get("ETag"))
		})
	}
}

// TestRangeCaching: a range across shards has one strong ETag, a 304 for
// it (or *), and a HEAD with GET's headers; as text and as NDJSON.
func TestRangeCaching(t *testing.T) {
	ls := startSlices(t, rangeFile(), 1001)
	rt := newRouter(t, ls.m, Options{})
	for _, path := range []string{"/lines/900..2100", "/lines/1400..1600", "/lines/-2..-1"} {
		for _, accept := range []string{"", ndjson} {
			t.Run(path+" "+accept, func(t *testing.T) {
				full := get(rt, path, "Accept", accept)
				require.Equal(t, 200, full.Code)
				etag := full.Header().Get("ETag")
				require.Regexp(t, `^"[^"]+"$`, etag)

				head := do(rt, "HEAD", path, "Accept", accept)
				require.Equal(t, 200, head.Code)
				assert.Zero(t, head.Body.Len())
				for _, h := range []string{"ETag", "Cache-Control", "Vary", "Content-Type"} {
					assert.Equal(t, full.Header().Get(h), head.Header().Get(h), h)
				}
				if accept == "" {
					assert.Equal(t, strconv.Itoa(full.Body.Len()), head.Header().Get("Content-Length"))
				} else if path == "/lines/900..2100" {
					assert.Empty(t, head.Header().Get("Content-Length"), "NDJSON across shards has none")
				}

				for _, inm := range []string{etag, "*", `"other", ` + etag, "W/" + etag} {
					nm := get(rt, path, "Accept", accept, "If-None-Match", inm)
					require.Equal(t, 304, nm.Code, inm)
					assert.Zero(t, nm.Body.Len())
					assert.Equal(t, etag, nm.Header().Get("ETag"))
					assert.Equal(t, "public, max-age=31536000, immutable", nm.Header().Get("Cache-Control"))
					assert.Empty(t, nm.Header().Get("Link"))
					headNM := do(rt, "HEAD", path, "Accept", accept, "If-None-Match", inm)
					assert.Equal(t, 304, headNM.Code)
				}
				other := get(rt, path, "Accept", accept, "If-None-Match", `"other"`)
				require.Equal(t, 200, other.Code)
				assert.Equal(t, full.Body.String(), other.Body.String())
			})
		}
	}
}

// TestRangeErrors: the router answers every 4xx of a range itself, with
// the shards' problem bodies, and asks no shard.
func TestRangeErrors(t *testing.T) {
	rt, fs := threeShards(t) // 300 lines
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/lines/10..5", 400},
		{"/lines/-1..1", 400},
		{"/lines/250..-100", 400},
		{"/lines/0..5", 400},
		{"/lines/..5", 400},
		{"/lines/5..", 400},
		{"/lines/1...5", 400},
		{"/lines/1..x", 400},
		{"/lines/-0..5", 400},
		{"/lines/1..5..7", 400},
		{"/lines/1..99999999999999999999", 400},
		{"/lines/1..301", 413},
		{"/lines/301..302", 413},
		{"/lines/-301..5", 413},
		{"/lines/5..-301", 413},
		{"/lines/301..5", 413},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			t.Run(method+" "+tc.path, func(t *testing.T) {
				rec := do(rt, method, tc.path, "Accept", ndjson)
				require.Equal(t, tc.want, rec.Code, rec.Body.String())
				assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
				assert.Empty(t, rec.Header().Get("ETag"))
				if method == "GET" {
					var d problem.Details
					require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
					assert.Equal(t, tc.want, d.Status)
					assert.NotEmpty(t, d.Detail)
				}
			})
		}
	}
	rec := do(rt, "POST", "/lines/1..5")
	assert.Equal(t, 405, rec.Code)
	for _, f := range fs {
		assert.Zero(t, f.hits.Load(), "%s was asked", f.name)
	}
}

// TestRangeErrorsAsAShard: the router's 4xx bodies for ranges are the
// shard's own, byte for byte.
func TestRangeErrorsAsAShard(t *testing.T) {
	ls := startSlices(t, testenv.Varied(30), 10)
	rt := newRouter(t, ls.m, Options{})
	shard := ls.m.Shards[0].URLs[0]
	for _, path := range []string{"/lines/10..5", "/lines/0..5", "/lines/..5", "/lines/5..", "/lines/1...5", "/lines/1..x", "/lines/1..31", "/lines/-31..5", "/lines/3..-31"} {
		resp, err := client.Get(shard + path)
		require.NoError(t, err)
		want, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rec := get(rt, path)
		assert.Equal(t, resp.StatusCode, rec.Code, path)
		assert.Equal(t, string(want), rec.Body.String(), path)
	}
}

// TestRangeManifestDisagrees: a router whose manifest puts the shards'
// boundaries elsewhere than the shards themselves never serves a range
// the shards' answers would not make whole: it answers 502 and logs the
// shard.
func TestRangeManifestDisagrees(t *testing.T) {
	ls := startSlices(t, testenv.Varied(300), 100) // 1..100, 101..200, 201..300
	for _, tc := range []struct {
		name       string
		boundary   int64 // where the router's manifest ends the first shard
		path       string
		wantShard  string
		wantStatus int
	}{
		// The first shard sends its next link to 101, the manifest says 96.
		{"link to the wrong line", 95, "/lines/1..150", "shard-1", 502},
		{"HEAD too", 95, "/lines/50..250", "shard-1", 502},
		// The second shard is asked for lines it does not have: 421.
		{"a line the shard does not serve", 95, "/lines/96..99", "shard-2", 502},
		// The manifest says the first shard serves it whole; it sends a next link.
		{"a next link within a shard", 105, "/lines/1..103", "shard-1", 502},
		{"across, with a link where the range ends", 105, "/lines/1..150", "shard-1", 502},
		{"what both agree on", 95, "/lines/1..90", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *ls.m
			m.Shards = append([]manifest.Shard(nil), ls.m.Shards...)
			m.Shards[0].Last = tc.boundary
			m.Shards[1].First = tc.boundary + 1
			var logs testenv.Buffer
			rt := newRouter(t, &m, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			for _, method := range []string{"GET", "HEAD"} {
				for _, accept := range []string{"", ndjson} {
					rec := do(rt, method, tc.path, "Accept", accept)
					require.Equal(t, tc.wantStatus, rec.Code, "%s %s: %s", method, tc.path, rec.Body.String())
					assert.Empty(t, rec.Header().Get("Link"))
					if tc.wantStatus == 502 {
						assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
						assert.Empty(t, rec.Header().Get("ETag"))
					}
				}
			}
			if tc.wantShard != "" {
				assert.Contains(t, logs.String(), "shard disagrees with the manifest")
				assert.Contains(t, logs.String(), "shard="+tc.wantShard)
			} else {
				assert.Empty(t, logs.String())
			}
		})
	}
}

// TestRangeShardDiesMidStream: the second shard of a range is killed
// while the client reads the first part; the client gets an error and
// fewer bytes than whole, never a clean end. The first part (24 MiB) is
// far more than the socket buffers between router and client hold, so
// the router cannot have asked the second shard for its part before the
// client has read most of the first: the kill comes first, whatever the
// machine's speed.
func TestRangeShardDiesMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the shard server")
	}
	shardBin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	big := strings.Repeat("0123456789abcdef", 8<<20/16) + "\n"
	data := strings.Repeat(big, 3)
	for i := 4; i <= 100; i++ {
		data += fmt.Sprintf("line %d\n", i)
	}
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", []byte(data))
	for _, accept := range []string{"", ndjson} {
		t.Run("accept "+accept, func(t *testing.T) {
			start := func(first, last int) (*testenv.Process, string) {
				port := testenv.FreePort(t)
				p := testenv.Start(t, shardBin, nil, "FILE_REPOSITORY_FILE_PATH="+path,
					"INDEX_FIRST_LINE_NUMBER="+strconv.Itoa(first), "INDEX_LAST_LINE_NUMBER="+strconv.Itoa(last),
					"FILE_TOTAL_LINES=100", "PORT="+strconv.Itoa(port), "LOG_FORMAT=text")
				testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", time.Minute, p)
				return p, testenv.URL(port)
			}
			_, url1 := start(1, 3)
			second, url2 := start(4, 100)
			m := &manifest.Manifest{TotalLines: 100, Shards: []manifest.Shard{
				{Name: "first", First: 1, Last: 3, Data: "data.txt", URLs: []string{url1}},
				{Name: "second", First: 4, Last: 100, Data: "data.txt", URLs: []string{url2}},
			}}
			var logs testenv.Buffer
			rt := newRouter(t, m, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

			c, err := net.Dial("tcp", addr(rt))
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.(*net.TCPConn).SetReadBuffer(64<<10))
			c.SetDeadline(time.Now().Add(2 * time.Minute))
			fmt.Fprintf(c, "GET /lines/1..100 HTTP/1.1\r\nHost: x\r\nAccept: %s\r\n\r\n", accept)
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			first := make([]byte, 1024)
			_, err = io.ReadFull(resp.Body, first)
			require.NoError(t, err)

			second.Kill()
			rest, err := io.ReadAll(resp.Body)
			require.Error(t, err, "the body must end in an error, not look whole")
			got := append(first, rest...)
			if accept == "" {
				assert.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Content-Length"))
				assert.Less(t, len(got), len(data))
				assert.True(t, strings.HasPrefix(data, string(got)), "what came is the file's bytes")
				assert.LessOrEqual(t, len(got), 3*len(big), "nothing of the second part")
			} else {
				assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
				assert.NotContains(t, string(got), `"number":4,`, "nothing of the second part")
			}
			assert.Contains(t, logs.String(), "range broke off after its status was sent")
			assert.Contains(t, logs.String(), "shard=second")
			assert.Zero(t, counterValue(rt.metrics.ranges), "a range cut short is not counted")
		})
	}
}

// TestRangeMetrics: ranges sent whole are counted with their lines, by
// the router's own metrics; HEADs and 304s are not.
func TestRangeMetrics(t *testing.T) {
	ls := startSlices(t, rangeFile(), 1001)
	rt := newRouter(t, ls.m, Options{})
	lines := 0
	for _, path := range []string{"/lines/1..10", "/lines/1400..1600", "/lines/900..2100"} {
		for _, accept := range []string{"", ndjson} {
			rec := get(rt, path, "Accept", accept)
			require.Equal(t, 200, rec.Code)
			a, b, _ := strings.Cut(strings.TrimPrefix(path, "/lines/"), "..")
			ai, _ := strconv.Atoi(a)
			bi, _ := strconv.Atoi(b)
			lines += bi - ai + 1
			etag := rec.Header().Get("ETag")
			assert.Equal(t, 304, get(rt, path, "Accept", accept, "If-None-Match", etag).Code)
			assert.Equal(t, 200, do(rt, "HEAD", path, "Accept", accept).Code)
		}
	}
	assert.Equal(t, 200, get(rt, "/lines/5").Code)
	assert.Equal(t, 400, get(rt, "/lines/5..1").Code)
	// A range is counted once its body is read whole, which may be a
	// moment after its client has it.
	require.Eventually(t, func() bool {
		return counterValue(rt.metrics.ranges) == 6 && counterValue(rt.metrics.rangeLines) == float64(lines)
	}, time.Minute, 10*time.Millisecond, "ranges %v, lines %v of %d",
		counterValue(rt.metrics.ranges), counterValue(rt.metrics.rangeLines), lines)
	body := get(rt, "/metrics").Body.String()
	assert.Contains(t, body, "lineserver_router_ranges_total 6\n")
	assert.Contains(t, body, fmt.Sprintf("lineserver_router_range_lines_total %d\n", lines))
}

// counterValue is c's value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestRangeAcrossShardsInConstantMemory: a range of 256 MiB across two
// shards streams through the router without the router holding it: the
// heap grows by far less than the range. The shards here make their lines
// up as they send them (four lines of 64 MiB), with the headers a real
// shard sends, so that no test writes such a file.
func TestRangeAcrossShardsInConstantMemory(t *testing.T) {
	const lineLen = 64 << 20
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	fs := fakes(2)
	for i, f := range fs {
		first, last := int64(2*i+1), int64(2*i+2)
		f.handle = func(w http.ResponseWriter, r *http.Request) {
			var a, b int64
			_, err := fmt.Sscanf(r.URL.Path, "/lines/%d..%d", &a, &b)
			if err != nil || a < first || a > last {
				http.Error(w, "misdirected", http.StatusMisdirectedRequest)
				return
			}
			end := min(b, last)
			h := w.Header()
			h.Set("ETag", fmt.Sprintf(`"fake-%d..%d"`, a, b))
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Content-Length", strconv.FormatInt((end-a+1)*lineLen, 10))
			if b > last {
				h.Set("Link", fmt.Sprintf(`</lines/%d..%d>; rel="next"`, last+1, b))
			}
			if r.Method == http.MethodHead {
				return
			}
			for range end - a + 1 {
				for range lineLen/len(chunk) - 1 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
				w.Write(append(chunk[:len(chunk)-1:len(chunk)-1], '\n'))
			}
		}
	}
	m := &manifest.Manifest{TotalLines: 4, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 2, Data: "d", URLs: []string{fs[0].start(t)}},
		{Name: "shard-2", First: 3, Last: 4, Data: "d", URLs: []string{fs[1].start(t)}},
	}}
	rt := newRouter(t, m, Options{})
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := http.Get("http://" + addr(rt) + "/lines/1..4")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.EqualValues(t, 4*lineLen, resp.ContentLength)
	var n, lines int64
	buf := make([]byte, 1<<20)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if n%(32<<20) < int64(k) {
			runtime.ReadMemStats(&peak)
			assert.Less(t, peak.HeapInuse, before.HeapInuse+64<<20, "heap after %d bytes", n)
		}
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
	}
	assert.Equal(t, int64(4*lineLen), n)
	assert.Equal(t, int64(4), lines)
}
