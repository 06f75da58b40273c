package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
)

// checkingShards are replicas that answer every request and record a
// violation when one asks a replica for anything but a positive line
// number of its own shard, with the replica's own Host.
type checkingShards struct {
	mu  sync.Mutex
	bad []string
}

func (c *checkingShards) start(t testing.TB, s *manifest.Shard) string {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.check(r, s, srv.Listener.Addr().String()); err != nil {
			c.mu.Lock()
			c.bad = append(c.bad, err.Error())
			c.mu.Unlock()
		}
		w.Write([]byte("line\n"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// total is the number of lines of FuzzHandle's file.
const total = 300

// checkRange checks a request for a range: a..b spelled as positive
// numbers, a one of the shard's lines, b within the file and not before a.
func checkRange(raw string, s *manifest.Shard, host string, total int64) error {
	as, bs, _ := strings.Cut(raw, lineno.Sep)
	a, errA := strconv.ParseInt(as, 10, 64)
	b, errB := strconv.ParseInt(bs, 10, 64)
	if errA != nil || errB != nil || strconv.FormatInt(a, 10) != as || strconv.FormatInt(b, 10) != bs {
		return fmt.Errorf("asked %s for %q", host, raw)
	}
	if lineno.Within(a, s.First, s.Last) != nil || b < a || b > total {
		return fmt.Errorf("asked %s (%d-%d) for lines %d..%d", s.Name, s.First, s.Last, a, b)
	}
	return nil
}

func (c *checkingShards) check(r *http.Request, s *manifest.Shard, host string) error {
	if r.Host != host {
		return fmt.Errorf("asked %s with Host %q", host, r.Host)
	}
	if r.URL.Path == "/readyz" {
		return nil
	}
	raw, ok := strings.CutPrefix(r.URL.Path, "/lines/")
	if ok && lineno.IsRange(raw) && r.URL.RawQuery == "" && r.URL.RawPath == "" {
		return checkRange(raw, s, host, total)
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if !ok || err != nil || strconv.FormatInt(n, 10) != raw || r.URL.RawQuery != "" || r.URL.RawPath != "" {
		return fmt.Errorf("asked %s for %q", host, r.URL.String())
	}
	if lineno.Within(n, s.First, s.Last) != nil {
		return fmt.Errorf("asked %s (%d-%d) for line %d", s.Name, s.First, s.Last, n)
	}
	return nil
}

// FuzzHandle sends arbitrary request targets and methods: nothing panics,
// every answer is one the API allows, and only the manifest's replicas are
// asked, only for their own lines (or ranges that start in them).
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		"/lines/1", "/lines/-1", "/lines/0", "/lines/007", "/lines/300", "/lines/301",
		"/lines/-300", "/lines/-301", "/lines/", "/lines/abc", "/lines/1/2", "//evil/lines/1",
		"/lines/99999999999999999999", "/lines/-9223372036854775808", "/lines/%2F1",
		"/lines/1?x=http://evil", "/healthz", "/readyz", "/nope", "", "/lines/\x00",
		"http://evil/lines/1", "/lines/%2e%2e/1", "/lines/../lines/5", "*",
		"/lines/1..5", "/lines/90..150", "/lines/1..-1", "/lines/-10..-1", "/lines/5..1",
		"/lines/0..5", "/lines/1...5", "/lines/..5", "/lines/5..", "/lines/1..301", "/lines/250..251",
	} {
		f.Add("GET", seed)
	}
	f.Add("HEAD", "/lines/5")
	f.Add("POST", "/lines/5")
	m := &manifest.Manifest{TotalLines: total, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 100, Data: "d"},
		{Name: "b", First: 101, Last: 250, Data: "d"},
		{Name: "c", First: 251, Last: 300, Data: "d"},
	}}
	var shards checkingShards
	for i := range m.Shards {
		s := &m.Shards[i]
		s.URLs = []string{shards.start(f, s)}
		if i == 1 {
			s.URLs = append(s.URLs, shards.start(f, s))
		}
	}
	rt, err := New(m, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(target)
		req.Header.SetHost("router.test")
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		rt.Handle(&ctx)
		switch code := ctx.Response.StatusCode(); code {
		case 200, 400, 404, 405, 413:
		case 502:
			// These shards' answers have no ETag nor next link, which a
			// range across shards needs: the router must refuse them.
			if !strings.Contains(string(ctx.Path()), lineno.Sep) {
				t.Errorf("%s %q: 502", method, target)
			}
		case 503:
			if p := string(ctx.Path()); p != "/readyz" && p != "/ready" {
				t.Errorf("%s %q: 503", method, target)
			}
		default:
			t.Errorf("%s %q: status %d", method, target, code)
		}
		ctx.Response.CloseBodyStream()
		shards.mu.Lock()
		defer shards.mu.Unlock()
		if len(shards.bad) > 0 {
			t.Fatalf("%s %q: %s", method, target, strings.Join(shards.bad, "; "))
		}
	})
}
