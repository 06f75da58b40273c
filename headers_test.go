package lineserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzAccept fuzzes the Accept header's parser: it never panics, a header
// that names neither JSON nor a wildcard never gets JSON, and naming
// application/json alone always does; no q value leaves [0, 1].
func FuzzAccept(f *testing.F) {
	for _, s := range []string{
		"application/json", "text/plain", "application/json, text/plain", "text/plain;q=0.5, application/json",
		"*/*", "application/*;q=0.9, text/*;q=0.8", "application/json;q=abc", "application/json;q=2", ";;,,/",
		"APPLICATION/JSON; Q=0.1", "application/json, text/plain, */*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := wantsJSON([]string{header})
		for _, q := range []float64{quality([]string{header}, "application", "json"), quality([]string{header}, "text", "plain")} {
			if q < 0 || q > 1 {
				t.Fatalf("q %v out of [0, 1] for %q", q, header)
			}
		}
		lower := strings.ToLower(header)
		if got && !strings.Contains(lower, "json") && !strings.Contains(lower, "*") {
			t.Fatalf("%q names neither JSON nor a wildcard, yet gets JSON", header)
		}
		if !wantsJSON([]string{"application/json"}) {
			t.Fatal("application/json alone must get JSON")
		}
		// Two header lines say what their join says.
		if a, b, ok := strings.Cut(header, ","); ok && wantsJSON([]string{a, b}) != got {
			t.Fatalf("%q split at its first comma decides otherwise", header)
		}
	})
}

// TestLineAllocations: a line costs the handler two allocations beside
// net/http's own: the string that holds its ETag and Content-Length, and
// the slice that holds them (JSON: a third, its Content-Length). The
// constant header values are shared; parsing Accept and If-None-Match, the
// metrics and the pooled buffers allocate nothing.
func TestLineAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	data := []byte(strings.Repeat("a line of about forty bytes of text, and then some more ...\n", 10_000))
	s := open(t, data, nil)
	etag := get(s, "GET", "/lines/1234").Header().Get("ETag")
	for _, tc := range []struct {
		name, header, value string
		want                float64
	}{
		{"text", "", "", 2},
		{"json", "Accept", "text/plain;q=0.5, application/json", 3},
		{"304", "If-None-Match", `"x", ` + etag, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/lines/1234", nil)
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			w := &discardWriter{h: http.Header{}}
			allocs := testing.AllocsPerRun(1000, func() {
				clear(w.h)
				s.ServeHTTP(w, req)
			})
			t.Logf("%v allocations a request", allocs)
			assert.LessOrEqual(t, allocs, tc.want)
		})
	}
}
