package nginx

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/problem"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from the current output")

const sampleManifest = "../testdata/sample-manifest.json"

func render(t testing.TB, m *manifest.Manifest, opts Options) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, Render(&b, m, opts))
	return b.String()
}

func loadSample(t testing.TB) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Load(sampleManifest)
	require.NoError(t, err)
	return m
}

// TestRenderGolden compares the config of the sample manifest with
// testdata/golden/nginx.conf; go test ./nginx/ -update rewrites it.
func TestRenderGolden(t *testing.T) {
	got := render(t, loadSample(t), Options{})
	path := filepath.Join("..", "testdata", "golden", "nginx.conf")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./nginx/ -update to write it")
	assert.Equal(t, string(want), got, "the rendered config differs from %s; review, then rewrite it with -update", path)
}

func TestRenderNeverSetsWhatTheCallerSets(t *testing.T) {
	conf := render(t, loadSample(t), Options{})
	depth := 0
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		if depth == 0 {
			for _, d := range []string{"pid", "daemon", "user", "error_log"} {
				assert.False(t, strings.HasPrefix(line, d+" "), "top-level %q", line)
			}
		}
		if !strings.HasPrefix(line, "#") {
			depth += strings.Count(line, "{") - strings.Count(line, "}")
		}
	}
}

func TestRenderListen(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "listen 8080 backlog=4096;"},
		{"8080", "listen 8080 backlog=4096;"},
		{":8080", "listen 8080 backlog=4096;"},
		{":80", "listen 80 backlog=4096;"},
		{"127.0.0.1:8080", "listen 127.0.0.1:8080 backlog=4096;"},
		{"[::1]:8080", "listen [::1]:8080 backlog=4096;"},
		{"[::]:9000", "listen [::]:9000 backlog=4096;"},
		{"localhost:8081", "listen localhost:8081 backlog=4096;"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			assert.Contains(t, render(t, loadSample(t), Options{Listen: tc.in}), "\n        "+tc.want+"\n")
		})
	}
	for _, bad := range []string{"0", "65536", "08080", "x", ":", "1.2.3.4", "::1:8080", "host:", "a b:80", "h;x:80", "[::1]", ":http"} {
		t.Run("bad "+bad, func(t *testing.T) {
			err := Render(&bytes.Buffer{}, loadSample(t), Options{Listen: bad})
			assert.ErrorIs(t, err, ErrListen)
		})
	}
}

func TestRenderUpstreams(t *testing.T) {
	m := &manifest.Manifest{TotalLines: 10, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 5, Data: "d", URLs: []string{"http://10.0.0.1", "http://[fd00::1]:8080/"}},
		{Name: "b", First: 6, Last: 10, Data: "d", URLs: []string{"https://b-xyz.a.run.app"}},
	}}
	require.NoError(t, m.Validate())
	conf := render(t, m, Options{})
	for _, want := range []string{
		"server 10.0.0.1:80 max_fails=2 fail_timeout=1s;",
		"server [fd00::1]:8080 max_fails=2 fail_timeout=1s;",
		"server b-xyz.a.run.app:443 max_fails=2 fail_timeout=1s;",
		"proxy_pass http://a/;", "proxy_pass https://b/;",
		`set $lines_host "10.0.0.1";`, `set $lines_host "b-xyz.a.run.app";`,
		"proxy_ssl_server_name on;", `proxy_ssl_name "b-xyz.a.run.app";`,
	} {
		assert.Contains(t, conf, want)
	}
	assert.NotContains(t, render(t, loadSample(t), Options{}), "proxy_ssl", "no TLS settings without an https shard")
}

// sharedReplicas is a manifest whose shards a, b share their replicas,
// as e and f do (the same server line, with a Host of their own); c has
// them in another order and d with another scheme, so each has its own.
func sharedReplicas(t testing.TB) *manifest.Manifest {
	t.Helper()
	pair := []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}
	m := &manifest.Manifest{TotalLines: 60, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 10, Data: "d", URLs: pair},
		{Name: "b", First: 11, Last: 20, Data: "d", URLs: []string{"http://10.0.0.1:8080/", "http://10.0.0.2:8080"}},
		{Name: "c", First: 21, Last: 30, Data: "d", URLs: []string{pair[1], pair[0]}},
		{Name: "d", First: 31, Last: 40, Data: "d", URLs: []string{"https://10.0.0.1:8080"}},
		{Name: "e", First: 41, Last: 50, Data: "d", URLs: []string{"http://h"}},
		{Name: "f", First: 51, Last: 60, Data: "d", URLs: []string{"http://h:80"}},
	}}
	require.NoError(t, m.Validate())
	return m
}

var (
	upstreamBlock = regexp.MustCompile(`(?m)^    upstream (\S+) \{$`)
	shardBlock    = regexp.MustCompile(`(?s)location \^~ /\.shard/(\S+)/ \{\n(.*?)\n        \}`)
)

// TestRenderSharesUpstreams checks that shards with the same replicas, in
// the same order and with the same scheme, share one upstream, named after
// the first of them, each from its own location with its own Host, and that
// keepalive is each upstream's share, not each shard's.
func TestRenderSharesUpstreams(t *testing.T) {
	m := sharedReplicas(t)
	// 512 worker connections: half of them shared out over the 4
	// upstreams is 64 each (over the 6 shards it would be 42).
	conf := render(t, m, Options{OpenFiles: 1024})
	var names []string
	for _, g := range upstreamBlock.FindAllStringSubmatch(conf, -1) {
		names = append(names, g[1])
	}
	assert.Equal(t, []string{"a", "c", "d", "e"}, names)
	servers := func(first, second string) string {
		return "server " + first + " max_fails=2 fail_timeout=1s;\n        server " + second + " "
	}
	assert.Equal(t, 1, strings.Count(conf, servers("10.0.0.1:8080", "10.0.0.2:8080")), "a's servers, once for a and b")
	assert.Equal(t, 1, strings.Count(conf, servers("10.0.0.2:8080", "10.0.0.1:8080")), "c's servers")
	assert.Equal(t, 4, strings.Count(conf, "keepalive 64;"))
	assert.Equal(t, 4, strings.Count(conf, "zone lines 264k;"), "4 upstreams and 6 servers")

	locations := map[string][]string{
		"a": {`set $lines_host "10.0.0.1:8080";`, "proxy_pass http://a/;"},
		"b": {`set $lines_host "10.0.0.1:8080";`, "proxy_pass http://a/;"},
		"c": {`set $lines_host "10.0.0.2:8080";`, "proxy_pass http://c/;"},
		"d": {`set $lines_host "10.0.0.1:8080";`, `proxy_ssl_name "10.0.0.1";`, "proxy_pass https://d/;"},
		"e": {`set $lines_host "h";`, "proxy_pass http://e/;"},
		"f": {`set $lines_host "h:80";`, "proxy_pass http://e/;"},
	}
	got := map[string]string{}
	for _, g := range shardBlock.FindAllStringSubmatch(conf, -1) {
		got[g[1]] = g[2]
	}
	require.Len(t, got, len(locations), "a location a shard")
	for shard, lines := range locations {
		for _, line := range lines {
			assert.Contains(t, got[shard], line, "shard %s", shard)
		}
	}

	routes := parseRoutes(t, conf)
	for _, n := range inputs(m) {
		if got, want := decideLine(t, routes, m, n), want(m, n); got != want {
			t.Fatalf("/lines/%s: the config answers %s, the Go servers %s", n, got, want)
		}
	}
}

func TestRenderRefusesAnInvalidManifest(t *testing.T) {
	m := loadSample(t)
	m.Shards[1].First = 150
	assert.ErrorIs(t, Render(&bytes.Buffer{}, m, Options{}), manifest.ErrInvalid)
}

func TestRenderRefusesURLsItCannotProxyTo(t *testing.T) {
	for name, urls := range map[string][]string{
		"mixed schemes": {"http://a:8080", "https://b"},
		"odd host":      {"http://a;b:80"},
		"dollar":        {"http://a$b"},
	} {
		t.Run(name, func(t *testing.T) {
			m := &manifest.Manifest{TotalLines: 1, Shards: []manifest.Shard{{Name: "s", First: 1, Last: 1, Data: "d", URLs: urls}}}
			assert.ErrorIs(t, Render(&bytes.Buffer{}, m, Options{}), ErrURL)
		})
	}
}

// parseRoutes reads the routing of a rendered config back (eval_test.go),
// so that tests check the config itself rather than the data it was made
// from.
func parseRoutes(t testing.TB, conf string) *routing {
	t.Helper()
	r, err := parseRouting(conf)
	require.NoError(t, err)
	require.NotEmpty(t, r.locations)
	return r
}

// decideLine is what the config answers for "/lines/"+n: a status, or the
// name of the shard it proxies to, which must be sent the path as it came.
// For a 413 it checks the body against the Go servers'.
func decideLine(t testing.TB, r *routing, m *manifest.Manifest, n string) string {
	t.Helper()
	action, shard, body, err := r.decide("/lines/" + n)
	require.NoError(t, err, "/lines/%q", n)
	switch action {
	case "proxy":
		if want := "/lines/" + n; body != want {
			t.Fatalf("/lines/%q is sent to shard %s as %q", n, shard, body)
		}
		return shard
	case "413":
		if w := goBody(m, n); body != w {
			t.Fatalf("/lines/%q: the 413 body is\n%s\nnot the Go servers'\n%s", n, body, w)
		}
	}
	return action
}

// start parses n, a line number or a range, as the Go servers do, and
// returns the line (a range's first) that decides where it goes.
func start(n string) (int64, error) {
	if lineno.IsRange(n) {
		a, _, err := lineno.ParseRange(n)
		return a, err
	}
	return lineno.Parse(n)
}

// goBody is the problem body the shard and the router answer n with when
// n, or the first line of the range n, is beyond the end of the file.
func goBody(m *manifest.Manifest, n string) string {
	v, err := start(n)
	if err == nil {
		_, err = lineno.Resolve(v, m.TotalLines)
	}
	if err == nil {
		return ""
	}
	return string(problem.Body(problem.Status(err), err.Error()))
}

// want is what NGINX must do with n, a line number or a range: what the Go
// servers answer for a malformed one (400) or one that starts beyond the
// end (413), else the shard of the line, or of the range's first line
// (the shard checks the range's end), by lineno's parsers, Resolve and
// the manifest's Find.
func want(m *manifest.Manifest, n string) string {
	if strings.Contains(n, "/") {
		return "404" // /lines/a/b is no line: the shard and the router answer 404 before parsing
	}
	v, err := start(n)
	if err != nil {
		return "400"
	}
	line, err := lineno.Resolve(v, m.TotalLines)
	if err != nil {
		return "413"
	}
	i, ok := m.Find(line)
	if !ok {
		return "no shard"
	}
	return m.Shards[i].Name
}

// randomManifest cuts total lines into 1 to 7 shards at random places.
func randomManifest(r *rand.Rand, total int64) *manifest.Manifest {
	lasts := []int64{total}
	for range r.IntN(7) {
		if total > 1 {
			lasts = append(lasts, 1+r.Int64N(total-1))
		}
	}
	slices.Sort(lasts)
	lasts = slices.Compact(lasts)
	m := &manifest.Manifest{TotalLines: total}
	first := int64(1)
	for _, last := range lasts {
		name := fmt.Sprintf("shard-%d", len(m.Shards)+1)
		m.Shards = append(m.Shards, manifest.Shard{Name: name, First: first, Last: last, Data: "d", URLs: []string{"http://127.0.0.1:9"}})
		first = last + 1
	}
	return m
}

// inputs are the numbers a test sends: every one in [-(total+3), total+3]
// with and without leading zeros when total is small, those around the
// shard bounds otherwise, and strings that are not line numbers.
func inputs(m *manifest.Manifest) []string {
	ns := map[int64]bool{}
	add := func(n int64) {
		for d := int64(-2); d <= 2; d++ {
			if (d > 0 && n > math.MaxInt64-d) || (d < 0 && n < -math.MaxInt64-d) {
				continue
			}
			ns[n+d], ns[-(n+d)] = true, true
		}
	}
	if m.TotalLines < 5000 {
		for n := int64(0); n <= m.TotalLines+3; n++ {
			ns[n], ns[-n] = true, true
		}
	}
	for _, s := range m.Shards {
		add(s.First)
		add(s.Last)
		add(m.TotalLines + 1 - s.First)
		add(m.TotalLines + 1 - s.Last)
	}
	add(math.MaxInt64 - 2)
	var out []string
	for n := range ns {
		s := strconv.FormatInt(n, 10)
		out = append(out, s)
		digits, sign := strings.CutPrefix(s, "-")
		signs := map[bool]string{true: "-", false: ""}[sign]
		out = append(out, signs+"0"+digits, signs+"000000000000000000000"+digits, "+"+digits)
		// Ranges that start at n: routed by n, whatever the end, if the
		// end is a line number at all.
		out = append(out, s+"..-1", s+".."+s, signs+"00"+digits+"..0"+digits, s+"..9223372036854775807",
			s+"..0", s+"..x", s+"...5", s+"..", s+"..1..2", s+"..9223372036854775808", s+"..+1", s+"..5\n")
	}
	return append(out, "", "-", "0", "-0", "00", "-00", "abc", "1.5", "1e3", " 1", "1 ", "--1", "1-", "0x1", "١",
		"9223372036854775807", "-9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"09223372036854775808", "99999999999999999999", "18446744073709551617",
		// PCRE's $ matches before a final newline; the patterns must not.
		"5\n", "-1\n", "1\n\n", "\n5", "5\r", "5\x00",
		// Ranges with a side that is not a line number.
		"..5", "..", "...", "0..5", "-0..5", ".5", "5.", "1.5..2", "1..2.", " 1..2", "1..2 ", "x..1",
		"9223372036854775808..1", "-9223372036854775808..-1", "9223372036854775807..9223372036854775807",
		"-9223372036854775807..1")
}

// TestRenderedRoutesMatchTheGoServers reads the routing back from rendered
// configs of random manifests and checks that, for every input, NGINX
// would answer what the router and the shards answer: the same 400s and
// 413s, and the owning shard for every line, counted from either end.
func TestRenderedRoutesMatchTheGoServers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	totals := []int64{0, 1, 2, 9, 10, 11, 99, 100, 300, 1000, 4321, 20000, 99999, 1 << 40, math.MaxInt64 - 1, math.MaxInt64}
	for i, total := range totals {
		t.Run(strconv.FormatInt(total, 10), func(t *testing.T) {
			m := randomManifest(r, total)
			if total == 0 {
				m.Shards = []manifest.Shard{{Name: "only", First: 1, Last: 0, Data: "d", URLs: []string{"http://127.0.0.1:9"}}}
			}
			require.NoError(t, m.Validate(), "manifest %d", i)
			routes := parseRoutes(t, render(t, m, Options{}))
			for _, n := range inputs(m) {
				if got, want := decideLine(t, routes, m, n), want(m, n); got != want {
					t.Fatalf("/lines/%s: the config answers %s, the Go servers %s", n, got, want)
				}
			}
		})
	}
}
