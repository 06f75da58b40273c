package apispec

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// notReached are responses of the description that the real binaries
// cannot be made to give here, each with the reason and where it is tested.
var notReached = map[key]string{
	{"shard", "GET", "/lines/{n}", 503, "application/problem+json"}:      "a shard answers 503 for a line only when it is served by a framework that did not open it first (a buildpacks deployment); cmd/lineserver refuses to start instead. function_test.go's cold-start test covers it",
	{"shard", "HEAD", "/lines/{n}", 503, ""}:                             "as GET's 503",
	{"shard", "GET", "/lines/{a}..{b}", 503, "application/problem+json"}: "as /lines/{n}'s 503",
	{"shard", "HEAD", "/lines/{a}..{b}", 503, ""}:                        "as /lines/{n}'s 503",
}

// notReachedWhy says why the test does not reach k, or "".
func notReachedWhy(k key) string { return notReached[k] }

// TestServersMatchSpec starts a shard and the router in front of it and of a
// second shard, sends requests that reach every response docs/openapi.yaml
// describes (failures included: a stopped shard, a killed one, a changed
// file), and validates each request and answer against the description.
// An answer it does not describe fails the test; so does a response it
// describes that no request reached. Then it removes each response from
// the description in turn and checks that the answers it described no
// longer validate.
func TestServersMatchSpec(t *testing.T) {
	raw, err := readSpec()
	require.NoError(t, err)
	sp, err := loadSpec(raw)
	require.NoError(t, err)

	c := newCluster(t)
	var log []exchange
	record := func(ex ...exchange) { log = append(log, ex...) }

	// What both servers answer alike, but where the shard owns only lines
	// 1..100: there a line of the other shard is a 421.
	for _, srv := range []*server{c.shard, c.router} {
		other := http.StatusOK
		if srv.name == "shard" {
			other = http.StatusMisdirectedRequest
		}
		first := srv.do(t, "GET", "/lines/1", nil, false)
		require.Equal(t, http.StatusOK, first.status, "%v", first)
		etag := first.rheader.Get("ETag")
		json := h("Accept", "application/json")
		for _, tc := range []struct {
			method, path string
			header       http.Header
			invalid      bool
			want         int
		}{
			{"GET", "/lines/-1", nil, false, other},
			{"GET", "/lines/150", nil, false, other},
			{"HEAD", "/lines/150", nil, false, other},
			{"GET", "/lines/007", json, false, http.StatusOK},
			{"GET", "/lines/2", h("Accept", "application/json;q=0.5, text/plain"), false, http.StatusOK},
			{"HEAD", "/lines/1", nil, false, http.StatusOK},
			{"HEAD", "/lines/1", json, false, http.StatusOK},
			{"GET", "/lines/1", h("If-None-Match", etag), false, http.StatusNotModified},
			{"HEAD", "/lines/1", h("If-None-Match", "*"), false, http.StatusNotModified},
			{"GET", "/lines/abc", nil, true, http.StatusBadRequest},
			{"GET", "/lines/1.5", nil, true, http.StatusBadRequest},
			{"GET", "/lines/0", nil, true, http.StatusBadRequest},
			{"GET", "/lines/-0", nil, true, http.StatusBadRequest},
			{"GET", "/lines/+5", nil, true, http.StatusBadRequest},
			{"HEAD", "/lines/abc", nil, true, http.StatusBadRequest},
			{"GET", "/lines/9223372036854775808", nil, false, http.StatusBadRequest},
			{"GET", "/lines/301", nil, false, http.StatusRequestEntityTooLarge},
			{"GET", "/lines/-301", json, false, http.StatusRequestEntityTooLarge},
			{"HEAD", "/lines/301", nil, false, http.StatusRequestEntityTooLarge},
			{"POST", "/lines/1", nil, false, http.StatusMethodNotAllowed},
			{"DELETE", "/healthz", nil, false, http.StatusMethodNotAllowed},
			{"PUT", "/readyz", nil, false, http.StatusMethodNotAllowed},
			{"POST", "/ready", nil, false, http.StatusMethodNotAllowed},
			{"POST", "/metrics", nil, false, http.StatusMethodNotAllowed},
			{"GET", "/nope", nil, false, http.StatusNotFound},
			{"GET", "/lines/1/2", nil, false, http.StatusNotFound},
			{"GET", "/healthz", nil, false, http.StatusOK},
			{"HEAD", "/healthz", nil, false, http.StatusOK},
			{"GET", "/readyz", nil, false, http.StatusOK},
			{"HEAD", "/readyz", nil, false, http.StatusOK},
			{"GET", "/ready", nil, false, http.StatusOK},
			{"HEAD", "/ready", nil, false, http.StatusOK},
			{"GET", "/metrics", nil, false, http.StatusOK},
		} {
			ex := srv.do(t, tc.method, tc.path, tc.header, tc.invalid)
			assert.Equal(t, tc.want, ex.status, "%v", ex)
			record(first, ex)
		}
		record(srv.do(t, "HEAD", "/metrics", nil, false)) // the router: 200, a shard: 405
	}
	record(c.ranges(t)...)
	record(c.routerRanges(t)...)

	// The router's own failures, on the lines of the second shard: for a
	// line, a range within the second shard, and one across both.
	record(c.gatewayTimeout(t)...)
	for _, path := range []string{"/lines/150", "/lines/150..160", "/lines/90..150"} {
		record(c.badGateway(t, "GET", path)...)
		record(c.badGateway(t, "HEAD", path)...)
	}
	record(c.unavailable(t)...)
	// Last, as it leaves the second shard failing: its files change.
	record(c.damaged(t)...)

	reached := map[key]bool{}
	byKey := map[key][]exchange{}
	for _, ex := range log {
		k, err := sp.validate(ex)
		if assert.NoError(t, err) {
			reached[k] = true
			byKey[k] = append(byKey[k], ex)
		}
	}
	var missing []string
	for k := range sp.described() {
		if !reached[k] && notReachedWhy(k) == "" {
			missing = append(missing, k.String())
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "responses the description lists that no request reached")

	t.Run("a response removed from the description fails", func(t *testing.T) {
		for k, exs := range byKey {
			cut, err := loadSpec(raw)
			require.NoError(t, err)
			cut.remove(k)
			for _, ex := range exs {
				_, err := cut.validate(ex)
				assert.Error(t, err, "%v validates without the response %v", ex, k)
			}
		}
	})
}

// TestSpecWithoutAStatusFails shows the check on its own: with 413 taken
// out of GET /lines/{n}, a real 413 no longer validates, and with it back
// it does.
func TestSpecWithoutAStatusFails(t *testing.T) {
	raw, err := readSpec()
	require.NoError(t, err)
	ex := exchange{
		server: "shard", method: "GET", path: "/lines/301", header: http.Header{},
		status:  http.StatusRequestEntityTooLarge,
		rheader: http.Header{"Content-Type": {"application/problem+json"}},
		body:    []byte(`{"type":"urn:lineserver:problem:beyond-end","title":"Line beyond the end of the file","status":413,"detail":"line 301: beyond the end"}` + "\n"),
	}
	whole, err := loadSpec(raw)
	require.NoError(t, err)
	_, err = whole.validate(ex)
	require.NoError(t, err)

	cut, err := loadSpec(raw)
	require.NoError(t, err)
	cut.doc.Paths.Value("/lines/{n}").Get.Responses.Delete("413")
	_, err = cut.validate(ex)
	assert.ErrorContains(t, err, "status 413 is not described")
}

// cluster is two shards of testdata/sample.txt (lines 1..100 and
// 101..300, each on a copy of its own) and the router in front of them.
type cluster struct {
	dir           string
	shardBin      string
	shard, router *server
	second        *server // the shard of lines 101..300
	secondProc    *testenv.Process
	secondPort    int
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{dir: t.TempDir()}
	c.shardBin = testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	routerBin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/router")

	firstPort := testenv.FreePort(t)
	p := c.startShard(t, "a", 1, 100, firstPort)
	c.shard = &server{name: "shard", base: testenv.URL(firstPort), proc: p}
	c.secondPort = testenv.FreePort(t)
	c.secondProc = c.startShard(t, "b", 101, 300, c.secondPort)
	c.second = &server{name: "shard", base: testenv.URL(c.secondPort)}

	manifest := fmt.Sprintf(`{"total_lines": 300, "shards": [
		{"name": "shard-1", "first": 1, "last": 100, "data": "a/sample.txt", "urls": [%q]},
		{"name": "shard-2", "first": 101, "last": 300, "data": "b/sample.txt", "urls": [%q]}]}`,
		testenv.URL(firstPort), testenv.URL(c.secondPort))
	mpath := filepath.Join(c.dir, "manifest.json")
	require.NoError(t, os.WriteFile(mpath, []byte(manifest), 0o644))
	routerPort := testenv.FreePort(t)
	rp := testenv.Start(t, routerBin, []string{"--manifest", mpath, "--listen", testenv.Addr(routerPort),
		"--response-timeout", "1s", "--log-format", "text"})
	c.router = &server{name: "router", base: testenv.URL(routerPort), proc: rp}
	testenv.WaitHTTP(t, c.router.base+"/readyz", time.Minute, rp)
	return c
}

// startShard serves lines first..last of a copy of the sample in dir/sub.
func (c *cluster) startShard(t *testing.T, sub string, first, last, port int) *testenv.Process {
	dir := filepath.Join(c.dir, sub)
	if _, err := os.Stat(dir); err != nil {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for _, name := range []string{"sample.txt", "sample.txt_index.txt"} {
			b, err := os.ReadFile(filepath.Join("../../testdata", name))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		}
	}
	p := testenv.Start(t, c.shardBin, nil,
		"FILE_REPOSITORY_FILE_PATH="+filepath.Join(dir, "sample.txt"),
		"INDEX_FIRST_LINE_NUMBER="+strconv.Itoa(first), "INDEX_LAST_LINE_NUMBER="+strconv.Itoa(last),
		"FILE_TOTAL_LINES=300", "PORT="+strconv.Itoa(port), "LOG_FORMAT=text")
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", time.Minute, p)
	return p
}

// restartSecond starts the second shard again and waits until the router
// finds it healthy.
func (c *cluster) restartSecond(t *testing.T) {
	c.secondProc.Kill()
	c.secondProc = c.startShard(t, "b", 101, 300, c.secondPort)
	testenv.WaitHTTP(t, c.router.base+"/readyz", time.Minute, c.router.proc)
}

// attempts bounds the tries at a failure that a health check may turn
// into another (a 503 where a 502 or 504 was wanted) on a busy machine.
const attempts = 4

// gatewayTimeout stops the second shard (SIGSTOP: its connections stay
// open and nothing answers) and asks the router for its lines.
func (c *cluster) gatewayTimeout(t *testing.T) []exchange {
	var all []exchange
	for range attempts {
		require.NoError(t, c.secondProc.Signal(syscall.SIGSTOP))
		got := c.router.concurrently(t, "GET /lines/150", "HEAD /lines/150",
			"GET /lines/150..160", "HEAD /lines/90..150", "GET /lines/90..150")
		require.NoError(t, c.secondProc.Signal(syscall.SIGCONT))
		all = append(all, got...)
		if allStatus(got, http.StatusGatewayTimeout) {
			testenv.WaitHTTP(t, c.router.base+"/readyz", time.Minute, c.router.proc)
			return all
		}
		c.restartSecond(t)
	}
	t.Fatalf("no 504 from the router in %d attempts: %v", attempts, all)
	return nil
}

// badGateway kills the second shard and asks the router for path, which
// needs its lines, before a health check notices.
func (c *cluster) badGateway(t *testing.T, method, path string) []exchange {
	var all []exchange
	for range attempts {
		c.secondProc.Kill()
		ex := c.router.do(t, method, path, nil, false)
		all = append(all, ex)
		c.restartSecond(t)
		if ex.status == http.StatusBadGateway {
			return all
		}
	}
	t.Fatalf("no 502 from the router in %d attempts: %v", attempts, all)
	return nil
}

// unavailable kills the second shard, waits until the router's /readyz
// says so, and asks for its lines.
func (c *cluster) unavailable(t *testing.T) []exchange {
	c.secondProc.Kill()
	var all []exchange
	deadline := time.Now().Add(time.Minute)
	for {
		ex := c.router.do(t, "GET", "/readyz", nil, false)
		all = append(all, ex)
		if ex.status == http.StatusServiceUnavailable {
			break
		}
		require.True(t, time.Now().Before(deadline), "the router's /readyz stays 200 with a shard gone")
		time.Sleep(100 * time.Millisecond)
	}
	for _, req := range []struct{ method, path string }{
		{"HEAD", "/readyz"}, {"GET", "/ready"}, {"HEAD", "/ready"},
		{"GET", "/lines/150..160"}, {"HEAD", "/lines/-10..-1"}, {"GET", "/lines/90..150"}, {"HEAD", "/lines/1..-1"},
		{"GET", "/lines/150"}, {"HEAD", "/lines/-1"},
	} {
		ex := c.router.do(t, req.method, req.path, nil, false)
		assert.Equal(t, http.StatusServiceUnavailable, ex.status, "%v", ex)
		all = append(all, ex)
	}
	assert.Equal(t, "1", all[len(all)-2].rheader.Get("Retry-After"), "the router's 503 for a line says when to ask again")
	c.restartSecond(t)
	return all
}

// damaged changes the second shard's data file (its times; the bytes stay)
// and asks for its lines through the router and directly: a shard that
// finds its files changed answers 500 for lines and 503 on /readyz.
//
// The router passes a shard's 500 on until its next health check (every
// second) finds the shard's /readyz at 503 and ejects it; from then on it
// answers 503. So the test first waits until the shard itself answers 500,
// then sends all the requests through the router at once, and tries again
// on a restarted shard when a health check came first.
func (c *cluster) damaged(t *testing.T) []exchange {
	data := filepath.Join(c.dir, "b", "sample.txt")
	var all []exchange
	for i := range damagedAttempts {
		later := time.Now().Add(time.Duration(i+1) * time.Hour)
		require.NoError(t, os.Chtimes(data, later, later))
		require.Eventually(t, func() bool {
			ex, err := c.second.send("HEAD", "/lines/150", nil)
			return err == nil && ex.status == http.StatusInternalServerError
		}, time.Minute, 10*time.Millisecond, "the second shard never found its file changed")
		// Lines and ranges within the shard (its 500 passed on) and across
		// both (the router's 500 for the failed part).
		got := c.router.concurrently(t, "HEAD /lines/150", "GET /lines/150",
			"GET /lines/200..210", "HEAD /lines/-100..-1", "GET /lines/90..150", "HEAD /lines/90..150")
		all = append(all, got...)
		if allStatus(got, http.StatusInternalServerError) {
			for _, req := range []struct{ method, path string }{
				{"GET", "/lines/200"}, {"HEAD", "/lines/200"},
				{"GET", "/lines/200..210"}, {"HEAD", "/lines/-100..-1"},
				{"GET", "/readyz"}, {"HEAD", "/readyz"}, {"GET", "/ready"}, {"HEAD", "/ready"},
			} {
				ex := c.second.do(t, req.method, req.path, nil, false)
				assert.Contains(t, []int{http.StatusInternalServerError, http.StatusServiceUnavailable}, ex.status, "%v", ex)
				all = append(all, ex)
			}
			return all
		}
		c.restartSecond(t)
	}
	t.Fatalf("no 500 through the router in %d attempts: %v", damagedAttempts, all)
	return nil
}

// damagedAttempts bounds the tries at passing a shard's 500 on before a
// health check ejects the shard: each has most of a second, so on a busy
// machine a few may miss.
const damagedAttempts = 10

// ranges asks the first shard (lines 1..100 of 300) for ranges: its own,
// one that goes on in the second shard (a next link), and every error.
func (c *cluster) ranges(t *testing.T) []exchange {
	s := c.shard
	nd := h("Accept", "application/x-ndjson")
	var all []exchange
	text := s.do(t, "GET", "/lines/1..10", nil, false)
	require.Equal(t, http.StatusOK, text.status, "%v", text)
	next := s.do(t, "GET", "/lines/90..150", nd, false)
	require.Equal(t, http.StatusOK, next.status, "%v", next)
	assert.Equal(t, `</lines/101..150>; rel="next"`, next.rheader.Get("Link"))
	all = append(all, text, next)
	for _, tc := range []struct {
		method, path string
		header       http.Header
		invalid      bool
		want         int
	}{
		{"GET", "/lines/001..-0291", nd, false, http.StatusOK},
		{"GET", "/lines/95..-1", nil, false, http.StatusOK},
		{"HEAD", "/lines/1..10", nil, false, http.StatusOK},
		{"HEAD", "/lines/90..150", nd, false, http.StatusOK},
		{"GET", "/lines/1..10", h("If-None-Match", text.rheader.Get("ETag")), false, http.StatusNotModified},
		{"GET", "/lines/90..150", h("Accept", "application/x-ndjson", "If-None-Match", next.rheader.Get("ETag")), false, http.StatusNotModified},
		{"HEAD", "/lines/1..10", h("If-None-Match", "*"), false, http.StatusNotModified},
		{"GET", "/lines/10..5", nil, false, http.StatusBadRequest},
		{"GET", "/lines/0..5", nil, true, http.StatusBadRequest},
		{"GET", "/lines/1..x", nil, true, http.StatusBadRequest},
		{"GET", "/lines/1...5", nil, true, http.StatusBadRequest},
		{"HEAD", "/lines/5..-0", nil, true, http.StatusBadRequest},
		{"GET", "/lines/1..301", nil, false, http.StatusRequestEntityTooLarge},
		{"HEAD", "/lines/-301..5", nil, false, http.StatusRequestEntityTooLarge},
		{"GET", "/lines/150..160", nd, false, http.StatusMisdirectedRequest},
		{"HEAD", "/lines/-1..-1", nil, false, http.StatusMisdirectedRequest},
		{"POST", "/lines/1..5", nil, false, http.StatusMethodNotAllowed},
	} {
		ex := s.do(t, tc.method, tc.path, tc.header, tc.invalid)
		assert.Equal(t, tc.want, ex.status, "%v", ex)
		all = append(all, ex)
	}
	return all
}

// routerRanges asks the router for ranges: within the first shard, within
// the second, across both (the router follows the next link itself), as
// text and NDJSON, their 304s and HEADs, and its own 400s and 413s.
func (c *cluster) routerRanges(t *testing.T) []exchange {
	r := c.router
	nd := h("Accept", "application/x-ndjson")
	var all []exchange
	within := r.do(t, "GET", "/lines/1..10", nil, false)
	require.Equal(t, http.StatusOK, within.status, "%v", within)
	across := r.do(t, "GET", "/lines/90..150", nil, false)
	require.Equal(t, http.StatusOK, across.status, "%v", across)
	acrossND := r.do(t, "GET", "/lines/90..150", nd, false)
	require.Equal(t, http.StatusOK, acrossND.status, "%v", acrossND)
	all = append(all, within, across, acrossND)

	// The router's range is the shards' parts, and never carries a link.
	first := c.shard.do(t, "GET", "/lines/90..150", nil, false)
	rest := c.second.do(t, "GET", "/lines/101..150", nil, false)
	assert.Equal(t, string(first.body)+string(rest.body), string(across.body))
	assert.Equal(t, strconv.Itoa(len(across.body)), across.rheader.Get("Content-Length"))
	firstND := c.shard.do(t, "GET", "/lines/90..150", nd, false)
	restND := c.second.do(t, "GET", "/lines/101..150", nd, false)
	assert.Equal(t, string(firstND.body)+string(restND.body), string(acrossND.body))

	for _, tc := range []struct {
		method, path string
		header       http.Header
		invalid      bool
		want         int
	}{
		{"GET", "/lines/150..160", nd, false, http.StatusOK},
		{"GET", "/lines/-10..-1", nil, false, http.StatusOK},
		{"GET", "/lines/1..-1", nil, false, http.StatusOK},
		{"GET", "/lines/001..-0291", nd, false, http.StatusOK},
		{"HEAD", "/lines/1..10", nil, false, http.StatusOK},
		{"HEAD", "/lines/90..150", nil, false, http.StatusOK},
		{"HEAD", "/lines/90..150", nd, false, http.StatusOK},
		{"GET", "/lines/1..10", h("If-None-Match", within.rheader.Get("ETag")), false, http.StatusNotModified},
		{"GET", "/lines/90..150", h("If-None-Match", across.rheader.Get("ETag")), false, http.StatusNotModified},
		{"GET", "/lines/90..150", h("Accept", "application/x-ndjson", "If-None-Match", acrossND.rheader.Get("ETag")), false, http.StatusNotModified},
		{"HEAD", "/lines/90..150", h("If-None-Match", "*"), false, http.StatusNotModified},
		{"GET", "/lines/10..5", nil, false, http.StatusBadRequest},
		{"GET", "/lines/0..5", nil, true, http.StatusBadRequest},
		{"GET", "/lines/1..x", nil, true, http.StatusBadRequest},
		{"GET", "/lines/1...5", nil, true, http.StatusBadRequest},
		{"HEAD", "/lines/5..-0", nil, true, http.StatusBadRequest},
		{"GET", "/lines/1..301", nil, false, http.StatusRequestEntityTooLarge},
		{"HEAD", "/lines/-301..5", nil, false, http.StatusRequestEntityTooLarge},
		{"POST", "/lines/1..5", nil, false, http.StatusMethodNotAllowed},
	} {
		ex := r.do(t, tc.method, tc.path, tc.header, tc.invalid)
		assert.Equal(t, tc.want, ex.status, "%v", ex)
		assert.Empty(t, ex.rheader.Get("Link"), "%v: the router follows the next links itself", ex)
		all = append(all, ex)
	}
	return all
}

// server is one of the servers under test.
type server struct {
	name string // "shard" or "router": whom the description's x-served-by names
	base string
	proc *testenv.Process
}

var client = &http.Client{
	Timeout: time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// do sends one request and records the answer.
func (s *server) do(t *testing.T, method, path string, header http.Header, invalid bool) exchange {
	t.Helper()
	ex, err := s.send(method, path, header)
	require.NoError(t, err)
	ex.invalid = invalid
	return ex
}

func (s *server) send(method, path string, header http.Header) (exchange, error) {
	ex := exchange{server: s.name, method: method, path: path, header: header.Clone()}
	if ex.header == nil {
		ex.header = http.Header{}
	}
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		return ex, err
	}
	req.Header = ex.header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return ex, fmt.Errorf("%s %s %s: %w", s.name, method, path, err)
	}
	defer resp.Body.Close()
	ex.body, err = io.ReadAll(resp.Body)
	ex.status, ex.rheader = resp.StatusCode, resp.Header
	return ex, err
}

// concurrently sends the requests ("METHOD /path" each) at once.
func (s *server) concurrently(t *testing.T, requests ...string) []exchange {
	t.Helper()
	out := make([]exchange, len(requests))
	errs := make([]error, len(requests))
	var wg sync.WaitGroup
	for i, r := range requests {
		method, path, _ := strings.Cut(r, " ")
		wg.Go(func() { out[i], errs[i] = s.send(method, path, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return out
}

// allStatus reports whether every exchange got status.
func allStatus(exs []exchange, status int) bool {
	for _, ex := range exs {
		if ex.status != status {
			return false
		}
	}
	return true
}

func h(kv ...string) http.Header {
	out := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}
