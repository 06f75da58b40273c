package lineserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

// open serves data (indexed in a temporary folder) with the extra settings.
func open(t testing.TB, data []byte, env map[string]string) *Server {
	t.Helper()
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	vars := map[string]string{"FILE_REPOSITORY_FILE_PATH": path}
	for k, v := range env {
		vars[k] = v
	}
	s, err := Open(context.Background(), envconfig.MapLookuper(vars), io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() { s.Shard().Close() })
	return s
}

func get(s http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	data := testenv.Varied(300)
	lines := testenv.Lines(data)
	s := open(t, data, map[string]string{"INDEX_FIRST_LINE_NUMBER": "101", "INDEX_LAST_LINE_NUMBER": "200", "FILE_TOTAL_LINES": "300"})
	for _, tc := range []struct {
		name, method, path string
		want               int
		body               string
	}{
		{"first line of the shard", "GET", "/lines/101", 200, string(lines[100])},
		{"last line of the shard", "GET", "/lines/200", 200, string(lines[199])},
		{"leading zeros", "GET", "/lines/000150", 200, string(lines[149])},
		{"from the end", "GET", "/lines/-150", 200, string(lines[150])},
		{"head", "HEAD", "/lines/150", 200, ""},
		{"another shard's line", "GET", "/lines/100", 421, ""},
		{"another shard's line from the end", "GET", "/lines/-1", 421, ""},
		{"beyond the end", "GET", "/lines/301", 413, ""},
		{"beyond the start from the end", "GET", "/lines/-301", 413, ""},
		{"huge", "GET", "/lines/9223372036854775807", 413, ""},
		{"letters", "GET", "/lines/abc", 400, ""},
		{"decimal", "GET", "/lines/1.5", 400, ""},
		{"zero", "GET", "/lines/0", 400, ""},
		{"minus zero", "GET", "/lines/-0", 400, ""},
		{"plus", "GET", "/lines/+5", 400, ""},
		{"empty", "GET", "/lines/", 400, ""},
		{"beyond int64", "GET", "/lines/9223372036854775808", 400, ""},
		{"beyond int64, negative", "GET", "/lines/-9223372036854775808", 400, ""},
		{"space", "GET", "/lines/%201", 400, ""},
		{"deeper path", "GET", "/lines/1/2", 404, ""},
		{"no number", "GET", "/lines", 404, ""},
		{"root", "GET", "/", 404, ""},
		{"post", "POST", "/lines/150", 405, ""},
		{"delete", "DELETE", "/lines/150", 405, ""},
		{"healthz", "GET", "/healthz", 200, "ok\n"},
		{"ready, for Cloud Run", "GET", "/ready", 200, "ok\n"},
		{"readyz", "GET", "/readyz", 200, "ok\n"},
		{"readyz post", "POST", "/readyz", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(s, tc.method, tc.path)
			assert.Equal(t, tc.want, rec.Code, rec.Body.String())
			switch {
			case tc.want >= 400:
				assert.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
				var d problem.Details
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
				assert.Equal(t, tc.want, d.Status)
				assert.NotEmpty(t, d.Title)
				assert.NotEmpty(t, d.Detail)
				assert.Empty(t, rec.Header().Get("ETag"))
				if tc.want == 405 {
					assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
				}
			case tc.body != "" || tc.method == "HEAD":
				assert.Equal(t, tc.body, rec.Body.String())
			}
		})
	}
}

func TestLineHeaders(t *testing.T) {
	t.Parallel()
	s := open(t, []byte("héllo\r\nworld\n"), nil)
	rec := get(s, "GET", "/lines/1")
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "héllo\r\n", rec.Body.String(), "the \\r is part of the line")
	h := rec.Header()
	assert.Equal(t, "text/plain; charset=utf-8", h.Get("Content-Type"))
	assert.Equal(t, strconv.Itoa(len("héllo\r\n")), h.Get("Content-Length"))
	assert.Equal(t, "public, max-age=31536000, immutable", h.Get("Cache-Control"))
	assert.Equal(t, "Accept", h.Get("Vary"))
	etag := h.Get("ETag")
	assert.Regexp(t, `^"[0-9a-z]+-1"$`, etag, "a strong ETag")

	head := get(s, "HEAD", "/lines/1")
	assert.Equal(t, h.Get("Content-Length"), head.Header().Get("Content-Length"))
	assert.Equal(t, etag, head.Header().Get("ETag"))
	assert.Empty(t, head.Body.String())

	assert.NotEqual(t, etag, get(s, "GET", "/lines/2").Header().Get("ETag"), "each line its own ETag")
	asJSON := get(s, "GET", "/lines/1", "Accept", "application/json").Header().Get("ETag")
	assert.NotEqual(t, etag, asJSON, "each representation its own ETag")

	for _, inm := range []string{etag, `"x", ` + etag, "W/" + etag, "*"} {
		rec := get(s, "GET", "/lines/1", "If-None-Match", inm)
		assert.Equal(t, http.StatusNotModified, rec.Code, inm)
		assert.Empty(t, rec.Body.String())
		assert.Equal(t, etag, rec.Header().Get("ETag"))
	}
	assert.Equal(t, 200, get(s, "GET", "/lines/1", "If-None-Match", `"other"`).Code)
	assert.Equal(t, 200, get(s, "GET", "/lines/2", "If-None-Match", etag).Code)
}

func TestETagChangesWithTheData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := testenv.WriteIndexed(t, dir, "data.txt", []byte("one\ntwo\n"))
	env := envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": path})
	s1, err := Open(context.Background(), env, io.Discard)
	require.NoError(t, err)
	testenv.WriteIndexed(t, dir, "data.txt", []byte("uno\ndos\n"))
	s2, err := Open(context.Background(), env, io.Discard)
	require.NoError(t, err)
	assert.NotEqual(t, get(s1, "GET", "/lines/1").Header().Get("ETag"), get(s2, "GET", "/lines/1").Header().Get("ETag"))
}

// TestETagChangesWithSameSizeAndTimes: new data of the same size, and
// an index of the same size, with the times set back to the old ones (as
// image builds that normalise file times do), still get new ETags.
func TestETagChangesWithSameSizeAndTimes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stamp := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	// The tag of line 1 of a shard opened on data; asked at once, as the
	// next rewrite damages the shard.
	tag := func(data string) string {
		path := testenv.WriteIndexed(t, dir, "data.txt", []byte(data))
		for _, p := range []string{path, path + "_index.txt"} {
			require.NoError(t, os.Chtimes(p, stamp, stamp))
		}
		s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": path}), io.Discard)
		require.NoError(t, err)
		rec := get(s, "GET", "/lines/1")
		require.Equal(t, 200, rec.Code)
		return rec.Header().Get("ETag")
	}
	one, uno := tag("one\ntwo\n"), tag("uno\ndos\n")
	assert.NotEqual(t, one, uno)
	assert.Equal(t, uno, tag("uno\ndos\n"), "the same files, the same tags")
}

func TestJSON(t *testing.T) {
	t.Parallel()
	data := []byte("plain\n\"quoted\" \\ \t tab\r\nnaïve 日本 🙂\n\xff\xfe bad\n\u2028sep\nlast without newline")
	s := open(t, data, nil)
	lines := testenv.Lines(data)
	for i, raw := range lines {
		n := i + 1
		for _, accept := range []string{"application/json", "text/plain;q=0.5, application/json", "application/*", "application/json;q=0.9, text/*;q=0.1"} {
			rec := get(s, "GET", "/lines/"+strconv.Itoa(n-len(lines)-1), "Accept", accept)
			require.Equal(t, 200, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, strconv.Itoa(rec.Body.Len()), rec.Header().Get("Content-Length"))
			var got struct {
				Number int64  `json:"number"`
				Line   string `json:"line"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), rec.Body.String())
			assert.Equal(t, int64(n), got.Number, "the positive number, also when asked from the end")
			assert.Equal(t, string([]rune(strings.TrimSuffix(string(raw), "\n"))), got.Line, "each invalid byte becomes U+FFFD, as encoding/json does")
		}
	}
	for _, accept := range []string{"", "*/*", "text/plain", "text/html,application/xhtml+xml,*/*;q=0.8", "application/json;q=0", "application/json;q=0.5, text/plain"} {
		rec := get(s, "GET", "/lines/1", "Accept", accept)
		assert.Equal(t, "plain\n", rec.Body.String(), "Accept %q gives text", accept)
	}
}

func TestAwkwardFilesOverHTTP(t *testing.T) {
	t.Parallel()
	for name, data := range testenv.Awkward() {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(open(t, data, nil))
			defer srv.Close()
			var all []byte
			lines := testenv.Lines(data)
			for i := range lines {
				resp, err := http.Get(srv.URL + "/lines/" + strconv.Itoa(i+1))
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				require.Equal(t, int64(len(lines[i])), resp.ContentLength)
				all = append(all, body...)
			}
			assert.Equal(t, string(data), string(all), "lines 1..N give back the file byte for byte")
			resp, err := http.Get(srv.URL + "/lines/" + strconv.Itoa(len(lines)+1))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, 413, resp.StatusCode)
		})
	}
}

func TestLongLineAsJSON(t *testing.T) {
	t.Parallel()
	// Multi-byte characters cut across the 64 KiB chunks.
	long := strings.Repeat("é日🙂\"\n"[:9], 40000) + "\n"
	srv := httptest.NewServer(open(t, []byte("a\n"+long+"z"), nil))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/lines/2", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var got struct{ Line string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, strings.TrimSuffix(long, "\n"), got.Line)
}

// TestDamagedMidStream truncates the data while a long line is being sent:
// the client must see a broken response, not a short line.
func TestDamagedMidStream(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("x"), 8<<20)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", append(append([]byte("short\n"), long...), '\n'))
	s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": path}), io.Discard)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/lines/2")
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, make([]byte, 1024))
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, 1<<20))
	_, err = io.ReadAll(resp.Body)
	assert.Error(t, err, "the body must end in an error, not look whole")

	assert.Equal(t, 503, get(s, "GET", "/readyz").Code, "not ready once the data is damaged")
	assert.Equal(t, 500, get(s, "GET", "/lines/1").Code)
	assert.Equal(t, 200, get(s, "GET", "/healthz").Code, "still alive")
}

// TestBodilessAnswersCheckTheFiles: HEAD and 304 send no line, but they
// still say a line is there with that length and tag; after the index is
// rewritten in place (same size, entries shifted by one) they answer 500
// like GET, and /readyz does not give the file's path away.
func TestBodilessAnswersCheckTheFiles(t *testing.T) {
	t.Parallel()
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", []byte("a\nbbbbbbbbbb\nccc\n"))
	s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": path}), io.Discard)
	require.NoError(t, err)
	head := get(s, "HEAD", "/lines/1")
	require.Equal(t, 200, head.Code)
	assert.Equal(t, "2", head.Header().Get("Content-Length"))
	etag := head.Header().Get("ETag")
	assert.Equal(t, 304, get(s, "GET", "/lines/1", "If-None-Match", etag).Code)

	// File times move with the kernel's tick (a few ms): a rewrite in the
	// same tick as the open would keep the times the shard saw.
	time.Sleep(20 * time.Millisecond)
	idx, err := os.ReadFile(path + "_index.txt")
	require.NoError(t, err)
	rotated := append(append([]byte(nil), idx[13:]...), idx[:13]...)
	f, err := os.OpenFile(path+"_index.txt", os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(rotated, 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	assert.Equal(t, 500, get(s, "HEAD", "/lines/1").Code)
	assert.Equal(t, 500, get(s, "GET", "/lines/1", "If-None-Match", etag).Code)
	assert.Equal(t, 500, get(s, "GET", "/lines/2").Code)
	ready := get(s, "GET", "/readyz")
	assert.Equal(t, 503, ready.Code)
	assert.Contains(t, ready.Body.String(), "changed after it opened them")
	assert.NotContains(t, ready.Body.String(), path, "no file names in answers")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := open(t, []byte("a\nb\n"), nil)
	get(s, "GET", "/lines/1")
	get(s, "GET", "/lines/9")
	rec := get(s, "GET", "/metrics")
	require.Equal(t, 200, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, body, `lineserver_requests_total{code="200"} 1`)
	assert.Contains(t, body, `lineserver_requests_total{code="413"} 1`)
	assert.Contains(t, body, "lineserver_request_duration_seconds_bucket")
	assert.Contains(t, body, "process_resident_memory_bytes")
}

func TestDrain(t *testing.T) {
	t.Parallel()
	s := open(t, []byte("a\n"), nil)
	assert.False(t, get(s, "GET", "/lines/1").Flushed, "before draining, net/http flushes after the handler")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.inflight.Add(1) // a request in flight
	assert.ErrorIs(t, s.Drain(ctx), context.Canceled)
	assert.Equal(t, 503, get(s, "GET", "/readyz").Code)
	assert.Equal(t, 200, get(s, "GET", "/lines/1").Code, "requests are still served while draining")
	s.inflight.Add(-1)
	assert.NoError(t, s.Drain(context.Background()))
	assert.True(t, get(s, "GET", "/lines/1").Flushed, "while draining, an answer is flushed before it counts as done")
}

func TestOpenRejectsBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := testenv.WriteIndexed(t, dir, "data.txt", []byte("a\nb\nc\n"))
	empty := filepath.Join(dir, "empty_index.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no data file", map[string]string{}, "FILE_REPOSITORY_FILE_PATH is required"},
		{"missing data file", map[string]string{"FILE_REPOSITORY_FILE_PATH": path + ".nope"}, "FILE_REPOSITORY_FILE_PATH"},
		{"missing index", map[string]string{"FILE_REPOSITORY_FILE_PATH": path, "INDEX_FILE_PATH": path + ".gone"}, "INDEX_FILE_PATH"},
		{"data as its own index", map[string]string{"FILE_REPOSITORY_FILE_PATH": path, "INDEX_FILE_PATH": path}, "not a multiple of 13"},
		{"total lines set to 0", map[string]string{"FILE_REPOSITORY_FILE_PATH": path, "FILE_TOTAL_LINES": "0"}, "FILE_TOTAL_LINES=0 is below the last line served, 3"},
		{"empty index of a non-empty file", map[string]string{"FILE_REPOSITORY_FILE_PATH": path, "INDEX_FILE_PATH": empty}, "is empty but data"},
		{"first beyond the index", map[string]string{"FILE_REPOSITORY_FILE_PATH": path, "INDEX_FIRST_LINE_NUMBER": "2", "INDEX_LAST_LINE_NUMBER": "9"}, "too few"},
		{"bad number", map[string]string{"FILE_REPOSITORY_FILE_PATH": path, "INDEX_LAST_LINE_NUMBER": "two"}, `INDEX_LAST_LINE_NUMBER="two"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), envconfig.MapLookuper(tc.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func FuzzJSONLine(f *testing.F) {
	f.Add([]byte("plain\n"), 3)
	f.Add([]byte("é日🙂\xff\u2028\"\\\t\r\n"), 1)
	f.Fuzz(func(t *testing.T, line []byte, cut int) {
		// Encoded in two chunks cut anywhere, the line decodes to itself
		// without its final '\n', with invalid UTF-8 replaced. As in the
		// server, the last chunk is never empty: it holds the final byte.
		cut = max(0, min(cut, len(line)-1))
		enc := jsonLine{out: []byte(`{"line":"`)}
		var body []byte
		body = append(body, enc.encode(append([]byte(nil), line[:cut]...), false)...)
		body = append(body, enc.encode(append([]byte(nil), line[cut:]...), true)...)
		var got struct{ Line string }
		require.NoError(t, json.Unmarshal(body, &got), "%q", body)
		assert.Equal(t, string([]rune(strings.TrimSuffix(string(line), "\n"))), got.Line)
	})
}

func BenchmarkHandler(b *testing.B) {
	data := []byte(strings.Repeat("a line of about forty bytes of text ...\n", 100_000))
	s := open(b, data, nil)
	for _, tc := range []struct{ name, accept string }{{"text", ""}, {"json", "application/json"}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/lines/12345", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				s.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// TestRegisteredFunction calls the function as the Functions Framework
// registered it: it opens the shard from the environment on first use.
func TestRegisteredFunction(t *testing.T) {
	t.Setenv("FILE_REPOSITORY_FILE_PATH", "testdata/sample.txt")
	t.Setenv("LOG_FORMAT", "text")
	rec := httptest.NewRecorder()
	serveLines(rec, httptest.NewRequest("GET", "/lines/1", nil))
	assert.Equal(t, 200, rec.Code)
	assert.True(t, strings.HasPrefix(rec.Body.String(), "line 1:"), rec.Body.String())
	s, err := Start()
	require.NoError(t, err)
	assert.Equal(t, int64(300), s.Shard().Total(), "Start returns the shard opened at cold start")
}

func TestSampleIndexIsCurrent(t *testing.T) {
	data, err := os.ReadFile("testdata/sample.txt")
	require.NoError(t, err)
	idx, err := os.ReadFile("testdata/sample.txt_index.txt")
	require.NoError(t, err)
	want, err := index.Of(data)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(idx), "rebuild it with: go run ./cmd/lines index testdata/sample.txt")
}
