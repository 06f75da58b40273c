package lineserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

const ndjsonType = "application/x-ndjson"

// jsonText is what the single-line JSON gives for a line: without its
// '\n', bytes that are not UTF-8 as U+FFFD.
func jsonText(line []byte) string {
	line = bytes.TrimSuffix(line, []byte("\n"))
	var b strings.Builder
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		b.WriteRune(r) // RuneError for each byte that is not UTF-8
		line = line[size:]
	}
	return b.String()
}

func TestRangeStatuses(t *testing.T) {
	t.Parallel()
	data := testenv.Varied(300)
	lines := testenv.Lines(data)
	s := open(t, data, map[string]string{"INDEX_FIRST_LINE_NUMBER": "101", "INDEX_LAST_LINE_NUMBER": "200", "FILE_TOTAL_LINES": "300"})
	for _, tc := range []struct {
		path string
		want int
		a, b int    // the lines of the body
		next string // the next link
	}{
		{"/lines/101..200", 200, 101, 200, ""},
		{"/lines/101..101", 200, 101, 101, ""},
		{"/lines/0150..00160", 200, 150, 160, ""},
		{"/lines/-200..-101", 200, 101, 200, ""},
		{"/lines/200..200", 200, 200, 200, ""},
		{"/lines/150..250", 200, 150, 200, "</lines/201..250>; rel=\"next\""},
		{"/lines/150..-1", 200, 150, 200, "</lines/201..300>; rel=\"next\""},
		{"/lines/200..201", 200, 200, 200, "</lines/201..201>; rel=\"next\""},
		{"/lines/100..150", 421, 0, 0, ""},
		{"/lines/201..250", 421, 0, 0, ""},
		{"/lines/1..-1", 421, 0, 0, ""},
		{"/lines/150..301", 413, 0, 0, ""},
		{"/lines/301..302", 413, 0, 0, ""},
		{"/lines/-301..150", 413, 0, 0, ""},
		{"/lines/150..9223372036854775807", 413, 0, 0, ""},
		{"/lines/160..150", 400, 0, 0, ""},
		{"/lines/-100..150", 400, 0, 0, ""},
		{"/lines/0..5", 400, 0, 0, ""},
		{"/lines/..5", 400, 0, 0, ""},
		{"/lines/5..", 400, 0, 0, ""},
		{"/lines/1...5", 400, 0, 0, ""},
		{"/lines/1..x", 400, 0, 0, ""},
		{"/lines/..", 400, 0, 0, ""},
		{"/lines/150..160/", 404, 0, 0, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(s, "GET", tc.path)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			assert.Equal(t, tc.next, rec.Header().Get("Link"))
			if tc.want != 200 {
				assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
				var d problem.Details
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
				assert.Equal(t, tc.want, d.Status)
				assert.NotEmpty(t, d.Detail)
				assert.Empty(t, rec.Header().Get("ETag"))
				return
			}
			assert.Equal(t, string(bytes.Join(lines[tc.a-1:tc.b], nil)), rec.Body.String())
			assert.Equal(t, strconv.Itoa(rec.Body.Len()), rec.Header().Get("Content-Length"))
		})
	}
	assert.Equal(t, 405, get(s, "POST", "/lines/150..160").Code)
}

// TestRangesOverHTTP serves the awkward files over a real connection and
// reads ranges as text and NDJSON.
func TestRangesOverHTTP(t *testing.T) {
	t.Parallel()
	for name, data := range testenv.Awkward() {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(open(t, data, nil))
			defer srv.Close()
			lines := testenv.Lines(data)
			n := len(lines)
			fetch := func(path, accept string) (*http.Response, []byte) {
				req, err := http.NewRequest("GET", srv.URL+path, nil)
				require.NoError(t, err)
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				return resp, body
			}
			if n == 0 {
				resp, _ := fetch("/lines/1..-1", "")
				assert.Equal(t, 413, resp.StatusCode, "an empty file has no lines")
				return
			}
			resp, body := fetch("/lines/1..-1", "")
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, data, body, "1..-1 is the whole file")
			pairs := [][2]int{{1, n}, {n, n}, {1, 1}}
			if n <= 10 {
				for a := 1; a <= n; a++ {
					for b := a; b <= n; b++ {
						pairs = append(pairs, [2]int{a, b})
					}
				}
			}
			for _, p := range pairs {
				path := fmt.Sprintf("/lines/%d..%d", p[0], p[1])
				resp, body := fetch(path, "")
				require.Equal(t, 200, resp.StatusCode, path)
				require.Equal(t, bytes.Join(lines[p[0]-1:p[1]], nil), body, path)
				neg := fmt.Sprintf("/lines/%d..%d", p[0]-n-1, p[1]-n-1)
				_, negBody := fetch(neg, "")
				require.Equal(t, body, negBody, neg)

				resp, body = fetch(path, ndjsonType)
				require.Equal(t, 200, resp.StatusCode, path)
				assert.Equal(t, ndjsonType, resp.Header.Get("Content-Type"))
				got := testenv.DecodeNDJSON(t, body)
				require.Len(t, got, p[1]-p[0]+1, path)
				var objs []byte
				for i, l := range got {
					k := p[0] + i
					require.Equal(t, int64(k), l.Number, path)
					require.Equal(t, jsonText(lines[k-1]), l.Line, "%s: line %d", path, k)
					// Each object is the single-line JSON's body.
					one := get(srv.Config.Handler, "GET", "/lines/"+strconv.Itoa(k), "Accept", "application/json")
					objs = append(objs, one.Body.Bytes()...)
				}
				require.Equal(t, string(objs), string(body), "%s: each line encoded as /lines/{n} encodes it", path)
			}
		})
	}
}

// TestRangeCarriesCharactersAcrossChunks: characters cut between the 64
// KiB chunks of a range, in long lines and short, come out whole.
func TestRangeCarriesCharactersAcrossChunks(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	for i := range 4000 {
		b.WriteString(strings.Repeat("é日🙂\"\\", i%50))
		b.WriteString("\r\n")
	}
	b.WriteString(strings.Repeat("日", 100000) + "\n\xff\n")
	data := b.Bytes()
	lines := testenv.Lines(data)
	s := open(t, data, nil)
	rec := get(s, "GET", "/lines/1..-1", "Accept", ndjsonType)
	require.Equal(t, 200, rec.Code)
	got := testenv.DecodeNDJSON(t, rec.Body.Bytes())
	require.Len(t, got, len(lines))
	for i, l := range got {
		require.Equal(t, jsonText(lines[i]), l.Line, "line %d", i+1)
	}
}

func TestRandomRangesWithinAShard(t *testing.T) {
	t.Parallel()
	data := testenv.Varied(5000)
	lines := testenv.Lines(data)
	s := open(t, data, map[string]string{"INDEX_FIRST_LINE_NUMBER": "1001", "INDEX_LAST_LINE_NUMBER": "4000"})
	rng := rand.New(rand.NewPCG(1, 15))
	for range 100 {
		a := 1001 + rng.IntN(3000)
		b := a + rng.IntN(4001-a)
		rec := get(s, "GET", fmt.Sprintf("/lines/%d..%d", a, b))
		require.Equal(t, 200, rec.Code)
		require.Equal(t, string(bytes.Join(lines[a-1:b], nil)), rec.Body.String(), "lines %d..%d", a, b)
	}
}

func TestRangeWithTheLongLine(t *testing.T) {
	t.Parallel()
	data := testenv.Awkward()["5 MiB line"]
	lines := testenv.Lines(data)
	srv := httptest.NewServer(open(t, data, nil))
	defer srv.Close()
	for _, path := range []string{"/lines/1..3", "/lines/2..2", "/lines/1..2", "/lines/2..-1", "/lines/-3..-2"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		var a, b int
		fmt.Sscanf(strings.TrimPrefix(path, "/lines/"), "%d..%d", &a, &b)
		if a < 0 {
			a, b = a+len(lines)+1, b+len(lines)+1
		}
		if b < 0 {
			b += len(lines) + 1
		}
		require.Equal(t, bytes.Join(lines[a-1:b], nil), body, path)
		assert.Equal(t, int64(len(body)), resp.ContentLength)
	}
}

func TestRangeHeaders(t *testing.T) {
	t.Parallel()
	s := open(t, []byte("héllo\r\nworld\n\nlast"), nil)
	text := get(s, "GET", "/lines/1..3")
	require.Equal(t, 200, text.Code)
	h := text.Header()
	assert.Equal(t, "text/plain; charset=utf-8", h.Get("Content-Type"))
	assert.Equal(t, strconv.Itoa(len("héllo\r\nworld\n\n")), h.Get("Content-Length"))
	assert.Equal(t, "public, max-age=31536000, immutable", h.Get("Cache-Control"))
	assert.Equal(t, "Accept", h.Get("Vary"))
	assert.Empty(t, h.Get("Link"))
	etag := h.Get("ETag")
	assert.Regexp(t, `^"[^"W/]+"$`, etag, "a strong ETag")

	nd := get(s, "GET", "/lines/1..3", "Accept", ndjsonType)
	require.Equal(t, 200, nd.Code)
	assert.Empty(t, nd.Header().Get("Content-Length"), "NDJSON is sent as it is encoded")
	tags := map[string]bool{etag: true}
	for _, other := range []*httptest.ResponseRecorder{
		nd, get(s, "GET", "/lines/1..2"), get(s, "GET", "/lines/2..3"), get(s, "GET", "/lines/1"), get(s, "GET", "/lines/1..1"),
	} {
		require.Equal(t, 200, other.Code)
		tag := other.Header().Get("ETag")
		assert.False(t, tags[tag], "ETag %s is not unique", tag)
		tags[tag] = true
	}
	assert.Equal(t, etag, get(s, "GET", "/lines/-4..-2").Header().Get("ETag"), "the same lines, the same tag")

	for _, accept := range []string{"", ndjsonType} {
		want := get(s, "GET", "/lines/1..3", "Accept", accept)
		head := get(s, "HEAD", "/lines/1..3", "Accept", accept)
		require.Equal(t, 200, head.Code)
		assert.Empty(t, head.Body.String())
		for _, k := range []string{"Content-Type", "Content-Length", "ETag", "Cache-Control", "Vary"} {
			assert.Equal(t, want.Header().Get(k), head.Header().Get(k), "HEAD's %s", k)
		}
		tag := want.Header().Get("ETag")
		nm := get(s, "GET", "/lines/1..3", "Accept", accept, "If-None-Match", `"x", `+tag)
		require.Equal(t, 304, nm.Code)
		assert.Empty(t, nm.Body.String())
		assert.Equal(t, tag, nm.Header().Get("ETag"))
		assert.Equal(t, 200, get(s, "GET", "/lines/1..2", "Accept", accept, "If-None-Match", tag).Code, "another range's tag")
	}

	// The file's last line has no '\n'; NDJSON still ends each object with one.
	all := get(s, "GET", "/lines/1..-1", "Accept", ndjsonType)
	assert.Equal(t, `{"number":1,"line":"héllo\r"}`+"\n"+`{"number":2,"line":"world"}`+"\n"+
		`{"number":3,"line":""}`+"\n"+`{"number":4,"line":"last"}`+"\n", all.Body.String())
}

func TestRangeMetrics(t *testing.T) {
	t.Parallel()
	s := open(t, []byte("a\nb\nc\n"), nil)
	get(s, "GET", "/lines/1..3")
	get(s, "GET", "/lines/2..3", "Accept", ndjsonType)
	get(s, "HEAD", "/lines/1..3")
	get(s, "GET", "/lines/1..9")
	body := get(s, "GET", "/metrics").Body.String()
	assert.Contains(t, body, "lineserver_ranges_total 2\n")
	assert.Contains(t, body, "lineserver_range_lines_total 5\n")
	assert.Contains(t, body, `lineserver_requests_total{code="413"} 1`)
}

// TestRangeDamagedMidStream truncates the data while a long range is being
// sent: the client must see a broken response, not a short range.
func TestRangeDamagedMidStream(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("a line of text\n"), 1<<20)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": path}), io.Discard)
	require.NoError(t, err)
	defer s.Shard().Close()
	srv := httptest.NewServer(s)
	defer srv.Close()
	var bodies []io.ReadCloser
	for _, accept := range []string{"", ndjsonType} {
		req, _ := http.NewRequest("GET", srv.URL+"/lines/1..-1", nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		_, err = io.ReadFull(resp.Body, make([]byte, 1024))
		require.NoError(t, err)
		bodies = append(bodies, resp.Body)
	}
	require.NoError(t, os.Truncate(path, 1<<20))
	for _, body := range bodies {
		_, err = io.ReadAll(body)
		body.Close()
		assert.Error(t, err, "the body must end in an error, not look whole")
	}
	assert.Equal(t, 500, get(s, "GET", "/lines/1..2").Code)
	assert.Equal(t, 500, get(s, "HEAD", "/lines/1..2").Code)
}

// TestNextLinksOfLinesShard cuts a file with the real `lines shard` and
// serves each slice as its shard would, from its folder alone: following
// the next links from any shard gives back the range whole.
func TestNextLinksOfLinesShard(t *testing.T) {
	t.Parallel()
	data := append(testenv.Varied(3000), "the last line, without newline"...)
	lines := testenv.Lines(data)
	total := len(lines)
	dir := t.TempDir()
	src := filepath.Join(dir, "file.txt")
	require.NoError(t, os.WriteFile(src, data, 0o644))
	linesBin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lines")
	out, err := exec.Command(linesBin, "shard", src, "--shards", "3", "--out", filepath.Join(dir, "shards")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	m, err := manifest.Load(filepath.Join(dir, "shards", "manifest.json"))
	require.NoError(t, err)
	require.Len(t, m.Shards, 3)
	shards := make([]*Server, len(m.Shards))
	owner := func(n int64) *Server {
		for i, sh := range m.Shards {
			if sh.First <= n && n <= sh.Last {
				return shards[i]
			}
		}
		t.Fatalf("no shard for line %d", n)
		return nil
	}
	for i := range m.Shards {
		s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{
			"FILE_REPOSITORY_FILE_PATH": m.DataPath(i),
		}), io.Discard)
		require.NoError(t, err)
		t.Cleanup(func() { s.Shard().Close() })
		shards[i] = s
	}
	link := regexp.MustCompile(`^</lines/(\d+)\.\.(\d+)>; rel="next"$`)
	follow := func(path, accept string) (body []byte, hops int) {
		a, _, err := parseRangePath(path)
		require.NoError(t, err)
		if a < 0 {
			a += int64(total) + 1
		}
		for {
			s := owner(a)
			rec := get(s, "GET", path, "Accept", accept)
			require.Equal(t, 200, rec.Code, "%s: %s", path, rec.Body.String())
			body = append(body, rec.Body.Bytes()...)
			next := rec.Header().Get("Link")
			if next == "" {
				return body, hops
			}
			mm := link.FindStringSubmatch(next)
			require.NotNil(t, mm, "Link %q", next)
			path = "/lines/" + mm[1] + ".." + mm[2]
			a, _ = strconv.ParseInt(mm[1], 10, 64)
			hops++
		}
	}
	b1, b2 := m.Shards[0].Last, m.Shards[1].Last
	for _, tc := range []struct {
		path string
		a, b int64
		hops int
	}{
		{"/lines/1..-1", 1, int64(total), 2},
		{fmt.Sprintf("/lines/%d..%d", b1, b1+1), b1, b1 + 1, 1},
		{fmt.Sprintf("/lines/%d..%d", b1+1, b2), b1 + 1, b2, 0},
		{fmt.Sprintf("/lines/%d..%d", b1-5, b2+5), b1 - 5, b2 + 5, 2},
		{fmt.Sprintf("/lines/%d..-1", b2), b2, int64(total), 1},
		{"/lines/-10..-1", int64(total) - 9, int64(total), 0},
		{fmt.Sprintf("/lines/%d..%d", b1, b1), b1, b1, 0},
	} {
		body, hops := follow(tc.path, "")
		assert.Equal(t, tc.hops, hops, tc.path)
		require.Equal(t, string(bytes.Join(lines[tc.a-1:tc.b], nil)), string(body), tc.path)
		nd, _ := follow(tc.path, ndjsonType)
		got := testenv.DecodeNDJSON(t, nd)
		require.Len(t, got, int(tc.b-tc.a+1), tc.path)
		for i, l := range got {
			require.Equal(t, tc.a+int64(i), l.Number)
			require.Equal(t, jsonText(lines[l.Number-1]), l.Line)
		}
	}
}

// parseRangePath resolves the first line of a range path of a file, only
// for positive numbers and -N from the end as the tests use them.
func parseRangePath(path string) (int64, int64, error) {
	var a, b int64
	_, err := fmt.Sscanf(strings.TrimPrefix(path, "/lines/"), "%d..%d", &a, &b)
	return a, b, err
}

func BenchmarkRange(b *testing.B) {
	data := []byte(strings.Repeat("a line of about forty bytes of text ...\n", 100_000))
	s := open(b, data, nil)
	for _, tc := range []struct {
		name, accept string
		lines        int
	}{{"single lines", "", 1}, {"1000-line ranges", "", 1000}, {"1000-line ranges NDJSON", ndjsonType, 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			sent := 0
			for i := 0; b.Loop(); i++ {
				a := 1 + (i*tc.lines)%(100_000-tc.lines)
				path := "/lines/" + strconv.Itoa(a)
				if tc.lines > 1 {
					path += ".." + strconv.Itoa(a+tc.lines-1)
				}
				req := httptest.NewRequest("GET", path, nil)
				if tc.accept != "" {
					req.Header.Set("Accept", tc.accept)
				}
				clear(w.h)
				s.ServeHTTP(w, req)
				sent += tc.lines
			}
			b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// FuzzNDJSON encodes data cut into chunks at arbitrary points, as a range
// is read, and compares it with each line encoded whole, as /lines/{n}
// with JSON encodes it.
func FuzzNDJSON(f *testing.F) {
	f.Add([]byte("a\nb\r\n\n日本\xff\"x"), uint8(3))
	f.Add([]byte("é\n🙂🙂\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		if len(data) == 0 {
			return
		}
		size := int(step%16) + 1
		nd := &ndjson{line: 1}
		var got []byte
		line := int64(1)
		for off := 0; off < len(data); off += size {
			chunk := data[off:min(off+size, len(data))]
			out := nd.encode(chunk, line, off+size >= len(data))
			got = append(got, out...)
			if out != nil {
				nd.out = out[:0]
			}
			line += int64(bytes.Count(chunk, []byte("\n")))
		}
		var want []byte
		for i, l := range testenv.Lines(data) {
			enc := jsonLine{out: []byte(`{"number":` + strconv.Itoa(i+1) + `,"line":"`)}
			want = append(want, enc.encode(l, true)...)
		}
		require.Equal(t, string(want), string(got))
	})
}
