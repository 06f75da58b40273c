package etag

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzIfNoneMatch fuzzes the If-None-Match parser: a list that names the
// tag, weak or strong, anywhere, matches it; one that holds neither the
// tag nor '*' does not.
func FuzzIfNoneMatch(f *testing.F) {
	for _, s := range []string{`"a"`, `W/"a", "b"`, `*`, ` , ,`, `"x-1", W/"x-2"`, `W/`} {
		f.Add(s, "x", uint32(1))
	}
	f.Fuzz(func(t *testing.T, header, gen string, n uint32) {
		// An ETag as the shard makes them: "<generation>-<n>".
		gen = strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' {
				return r
			}
			return -1
		}, gen)
		etag := `"` + gen + "-" + strconv.FormatUint(uint64(n), 10) + `"`
		got := Matches([]string{header}, etag)
		if got && !strings.Contains(header, etag) && !strings.Contains(header, "*") {
			t.Fatalf("%q matched %q, which it does not hold", header, etag)
		}
		for _, list := range []string{header + "," + etag, etag + " , " + header, header + ", W/" + etag} {
			if !Matches([]string{list}, etag) {
				t.Fatalf("%q names %q but did not match", list, etag)
			}
		}
	})
}
