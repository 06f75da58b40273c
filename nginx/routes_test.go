package nginx

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

// manifestOf cuts total lines into k shards, k <= total: at random places,
// with now and then a run of one-line shards or shards around a power of
// ten, so that buckets hold several boundaries.
func manifestOf(r *rand.Rand, k int, total int64) *manifest.Manifest {
	cuts := map[int64]bool{} // lasts of shards other than the final one
	for len(cuts) < k-1 {
		var c int64
		switch r.IntN(10) {
		case 0: // next to another cut
			c = 1 + r.Int64N(total-1)
			for d := int64(0); d < 5 && len(cuts) < k-1 && c+d < total; d++ {
				cuts[c+d] = true
			}
			continue
		case 1: // around a power of ten
			p := pow10(r.IntN(len(strconv.FormatInt(total, 10))))
			c = p - 2 + r.Int64N(4)
		default:
			c = 1 + r.Int64N(total-1)
		}
		if c >= 1 && c < total {
			cuts[c] = true
		}
	}
	lasts := append(slices.Sorted(func(yield func(int64) bool) {
		for c := range cuts {
			if !yield(c) {
				return
			}
		}
	}), total)
	m := &manifest.Manifest{TotalLines: total}
	first := int64(1)
	for i, last := range lasts {
		m.Shards = append(m.Shards, manifest.Shard{
			Name: "s" + strconv.Itoa(i+1), First: first, Last: last, Data: "d",
			URLs: []string{"http://127.0.0.1:9"},
		})
		first = last + 1
	}
	return m
}

// boundaryInputs are, for every shard, its first and last line and the
// line after it, positive and counted from the end, and ranges that start
// there; for a few shards also with leading zeros, which the locations
// take off before the maps.
func boundaryInputs(m *manifest.Manifest) []string {
	var out []string
	total := strconv.FormatInt(m.TotalLines, 10)
	for i, s := range m.Shards {
		for _, n := range []int64{s.First, s.Last, s.Last + 1} {
			pos, neg := strconv.FormatInt(n, 10), strconv.FormatInt(m.TotalLines+1-n, 10)
			out = append(out, pos, "-"+neg, pos+"..-1", "-"+neg+".."+total)
			if i%50 == 0 {
				out = append(out, "00"+pos, "-0"+neg, "00"+pos+"..1", "-0"+neg+"..-01")
			}
		}
	}
	return out
}

// TestRoutesAtEveryBoundary checks, through the config's own maps (read
// back by the evaluator), the shard of every boundary of random manifests
// of 1 to 10,000 shards, against the manifest.
func TestRoutesAtEveryBoundary(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	cases := []struct {
		shards int
		total  int64
	}{
		{1, 1}, {1, 5}, {2, 2}, {3, 300}, {7, 10}, {10, 10}, {50, 1000},
		{100, 1_000_000}, {1000, 1_000_000_000}, {1000, 1 << 40}, {1000, 10_000},
		{10_000, 10_000_000}, {10_000, 1_000_000_000_000}, {10_000, math.MaxInt64},
	}
	for range 6 {
		k := 1 + r.IntN(10_000)
		cases = append(cases, struct {
			shards int
			total  int64
		}{k, int64(k) + r.Int64N(1<<(10+r.IntN(50)))})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d shards of %d lines", tc.shards, tc.total), func(t *testing.T) {
			m := manifestOf(r, tc.shards, tc.total)
			require.NoError(t, m.Validate())
			routes := parseRoutes(t, render(t, m, Options{}))
			for _, n := range boundaryInputs(m) {
				if got, want := decideLine(t, routes, m, n), want(m, n); got != want {
					t.Fatalf("/lines/%s: the config answers %s, the manifest says %s", n, got, want)
				}
			}
		})
	}
}

// TestRoutesOfAShardNamedLikeAMapParameter: "default" is a shard name the
// manifest allows and a word that map reads as its own.
func TestRoutesOfAShardNamedLikeAMapParameter(t *testing.T) {
	m := &manifest.Manifest{TotalLines: 40}
	for i, name := range []string{"default", "include", "hostnames", "volatile"} {
		m.Shards = append(m.Shards, manifest.Shard{Name: name, First: int64(10*i + 1), Last: int64(10*i + 10), Data: "d", URLs: []string{"http://127.0.0.1:9"}})
	}
	require.NoError(t, m.Validate())
	conf := render(t, m, Options{})
	routes := parseRoutes(t, conf)
	for _, n := range inputs(m) {
		require.Equal(t, want(m, n), decideLine(t, routes, m, n), "/lines/%q", n)
	}
	bin := testenv.Command(t, "nginx")
	dir := writeConf(t, m, Options{Listen: "127.0.0.1:1"})
	out, err := exec.Command(bin, append([]string{"-t"}, nginxArgs(dir)...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestNginxRoutesEveryBoundary sends every boundary of a manifest of a
// hundred shards, some of one line, through real NGINX and reads the shard
// it chose from its access log.
func TestNginxRoutesEveryBoundary(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	m := manifestOf(r, 100, 123_456)
	for i := range m.Shards {
		m.Shards[i].URLs = []string{testenv.URL(testenv.FreePort(t))}
	}
	require.NoError(t, m.Validate())
	base, p := startNginx(t, m)
	ins := boundaryInputs(m)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	statuses := make([]int, len(ins))
	for i, n := range ins {
		resp, err := client.Get(base + "/lines/" + url.PathEscape(n) + "?i=" + strconv.Itoa(i))
		require.NoError(t, err)
		resp.Body.Close()
		statuses[i] = resp.StatusCode
	}
	logged := loggedShards(t, p, len(ins))
	for i, n := range ins {
		switch want := want(m, n); want {
		case "400", "413":
			assert.Equal(t, want, strconv.Itoa(statuses[i]), "/lines/%s", n)
		default:
			assert.Equal(t, http.StatusBadGateway, statuses[i], "/lines/%s", n)
			assert.Equal(t, want, logged[i], "/lines/%s went to the wrong shard", n)
		}
	}
}

// TestNginxLoadsTenThousandShards renders the config of 10,000 shards and
// has NGINX check it. The times go to the figures file, not to an
// assertion.
func TestNginxLoadsTenThousandShards(t *testing.T) {
	bin := testenv.Command(t, "nginx")
	r := rand.New(rand.NewPCG(15, 16))
	for _, k := range []int{1000, 10_000} {
		m := manifestOf(r, k, 10_000_000_000)
		require.NoError(t, m.Validate())
		start := time.Now()
		var b bytes.Buffer
		require.NoError(t, Render(&b, m, Options{Listen: "127.0.0.1:1"}))
		rendered := time.Since(start)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), b.Bytes(), 0o644))
		start = time.Now()
		out, err := exec.Command(bin, append([]string{"-t"}, nginxArgs(dir)...)...).CombinedOutput()
		checked := time.Since(start)
		require.NoError(t, err, "%s", out)
		assert.NotContains(t, string(out), "[warn]")
		testenv.Figure("nginx", fmt.Sprintf("%d shards: config of %d KB with %d map keys rendered in %v, nginx -t in %v",
			k, b.Len()/1024, newRouteTable(m).Keys, rendered.Round(time.Millisecond), checked.Round(time.Millisecond)))
	}
}

// FuzzRoutes renders the config of a manifest made of the input and checks
// a number's shard through the evaluator against the manifest.
func FuzzRoutes(f *testing.F) {
	f.Add(int64(300), []byte{100, 200}, "150")
	f.Add(int64(1_000_000), []byte{1, 1, 1, 9, 9}, "-999999")
	f.Add(int64(math.MaxInt64), []byte{255, 3}, "9223372036854775806")
	f.Add(int64(10), []byte{}, "010")
	f.Fuzz(func(t *testing.T, total int64, cuts []byte, n string) {
		if total < 1 || len(cuts) > 64 {
			t.Skip()
		}
		// Each byte is a cut at that fraction of the file, or next to the
		// previous cut.
		lasts := map[int64]bool{total: true}
		prev := int64(0)
		for _, c := range cuts {
			at := int64(float64(total) * float64(c) / 256)
			if c%16 == 0 {
				at = prev + 1
			}
			if at >= 1 && at < total {
				lasts[at] = true
				prev = at
			}
		}
		m := &manifest.Manifest{TotalLines: total}
		first := int64(1)
		for _, last := range slices.Sorted(func(yield func(int64) bool) {
			for l := range lasts {
				if !yield(l) {
					return
				}
			}
		}) {
			m.Shards = append(m.Shards, manifest.Shard{Name: "s" + strconv.Itoa(len(m.Shards)+1), First: first, Last: last, Data: "d", URLs: []string{"http://127.0.0.1:9"}})
			first = last + 1
		}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		routes := parseRoutes(t, render(t, m, Options{}))
		for _, in := range append(boundaryInputs(m), n, strings.TrimPrefix(n, "-")) {
			if got, want := decideLine(t, routes, m, in), want(m, in); got != want {
				t.Fatalf("/lines/%q: the config answers %s, the manifest says %s", in, got, want)
			}
		}
	})
}

// FuzzParseRouting: the evaluator's reader of a config refuses what it
// cannot read with an error, never a panic, and what it reads it can
// evaluate.
func FuzzParseRouting(f *testing.F) {
	f.Add(`map $uri $lines_shard { default ""; "~^/(?<x>a)" $x; b c; }`+"\n", "/a")
	f.Add("map $a $b {\n \"x\\\"\" '$b';\n}\nlocation ~ \"^/\" {\nreturn 400 '$a';\n", "/x")
	f.Fuzz(func(t *testing.T, conf, uri string) {
		conf = strings.NewReplacer("{ ", "{\n", "; ", ";\n").Replace(conf)
		r, err := parseRouting(conf)
		if err != nil {
			return
		}
		_, _, _, _ = r.decide(uri)
	})
}
