package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

const totalLines = 20000

// patience bounds every wait for something that must happen (a killed
// shard's lines failing, a restarted one's served again): a guard against
// a hang, not a speed bound, so generous enough for a busy machine.
const patience = 30 * time.Second

// TestFrontDoors runs the set of issue 4 once and puts it through its
// paces in order: shard-1 and shard-2 have one replica, shard-3 two.
func TestFrontDoors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts shard processes, nginx and the router")
	}
	testenv.Command(t, "nginx")
	c := startCluster(t, testenv.Varied(totalLines), []int{1, 1, 2})

	t.Run("every line through both doors", func(t *testing.T) { everyLine(t, c) })
	t.Run("errors answered at the door", func(t *testing.T) { doorErrors(t, c) })
	t.Run("negative numbers and leading zeros", func(t *testing.T) { numberForms(t, c) })
	t.Run("a killed shard fails fast and recovers", func(t *testing.T) { killShard(t, c, "shard-2") })
	t.Run("a killed replica loses no request", func(t *testing.T) {
		underLoad(t, c, "shard-3", 0, "SIGKILL", func(r *replica) { r.proc.Kill() })
	})
	t.Run("a stopped replica loses no request", func(t *testing.T) {
		underLoad(t, c, "shard-3", 1, "SIGTERM", func(r *replica) {
			require.NoError(t, r.proc.Signal(syscall.SIGTERM))
			assert.Equal(t, 0, r.proc.Wait(12*time.Second), "the replica exits 0 after SIGTERM")
		})
	})
}

func everyLine(t *testing.T, c *cluster) {
	for _, d := range c.doors() {
		start := time.Now()
		var bad atomic.Int64
		var mu sync.Mutex
		var first []string
		var wg sync.WaitGroup
		const workers = 32
		for w := range workers {
			wg.Go(func() {
				for n := int64(w + 1); n <= c.total; n += workers {
					a := c.get(context.Background(), fmt.Sprintf("%s/lines/%d", d.url, n))
					if why := c.check(a, n); why != "" {
						bad.Add(1)
						mu.Lock()
						if len(first) < 5 {
							first = append(first, fmt.Sprintf("line %d: %s", n, why))
						}
						mu.Unlock()
						continue
					}
					if a.header.Get("Content-Type") != "text/plain; charset=utf-8" || a.header.Get("ETag") == "" {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		report(t, "%s: read all %d lines in %v, %d wrong", d.name, c.total, time.Since(start).Round(time.Millisecond), bad.Load())
		assert.Zero(t, bad.Load(), "%s: %s", d.name, strings.Join(first, "\n"))
	}
}

func doorErrors(t *testing.T, c *cluster) {
	for _, d := range c.doors() {
		for _, tc := range []struct {
			path string
			want int
		}{
			{"/lines/abc", 400},
			{"/lines/0", 400},
			{"/lines/-0", 400},
			{"/lines/000", 400},
			{"/lines/+5", 400},
			{"/lines/1.5", 400},
			{"/lines/99999999999999999999", 400},
			{"/lines/", 400},
			{"/lines/20001", 413},
			{"/lines/-20001", 413},
			{"/lines/9223372036854775807", 413},
			{"/lines/-9223372036854775807", 413},
			{"/nope", 404},
			{"/lines/1/2", 404},
		} {
			a := c.get(context.Background(), d.url+tc.path)
			require.NoError(t, a.err)
			if assert.Equal(t, tc.want, a.status, "%s %s: %s", d.name, tc.path, a.body) {
				assert.Equal(t, problem.ContentType, a.header.Get("Content-Type"), "%s %s", d.name, tc.path)
				var p problem.Details
				assert.NoError(t, json.Unmarshal(a.body, &p), "%s %s: %s", d.name, tc.path, a.body)
				assert.Equal(t, tc.want, p.Status, "%s %s", d.name, tc.path)
			}
		}
		req, err := http.NewRequest(http.MethodPost, d.url+"/lines/1", nil)
		require.NoError(t, err)
		resp, err := c.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, d.name)
		assert.Contains(t, resp.Header.Get("Allow"), "GET", d.name)
	}
}

func numberForms(t *testing.T, c *cluster) {
	// The first and last line of each shard, written as a negative number,
	// with leading zeros, and both.
	type form struct {
		n    string
		want int64
	}
	var forms []form
	for _, s := range c.manifest.Shards {
		for _, line := range []int64{s.First, s.Last} {
			neg := line - c.total - 1
			forms = append(forms,
				form{fmt.Sprint(neg), line},
				form{fmt.Sprintf("00%d", line), line},
				form{fmt.Sprintf("-000%d", -neg), line})
		}
	}
	forms = append(forms, form{"-1", c.total}, form{"007", 7})
	for _, d := range c.doors() {
		for _, f := range forms {
			a := c.get(context.Background(), d.url+"/lines/"+f.n)
			assert.Empty(t, c.check(a, f.want), "%s /lines/%s", d.name, f.n)
		}
		a := c.get(context.Background(), d.url+"/lines/-2", "Accept", "application/json")
		require.Equal(t, 200, a.status, "%s: %s", d.name, a.body)
		var j struct {
			Number int64  `json:"number"`
			Line   string `json:"line"`
		}
		require.NoError(t, json.Unmarshal(a.body, &j))
		assert.Equal(t, int64(totalLines-1), j.Number, d.name)
		assert.Equal(t, strings.TrimSuffix(string(c.line(totalLines-1)), "\n"), j.Line, d.name)

		req, err := http.NewRequest(http.MethodHead, d.url+"/lines/-1", nil)
		require.NoError(t, err)
		resp, err := c.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s HEAD", d.name)
		assert.Equal(t, fmt.Sprint(len(c.line(c.total))), resp.Header.Get("Content-Length"), "%s HEAD", d.name)

		etag := c.get(context.Background(), d.url+"/lines/9").header.Get("ETag")
		a = c.get(context.Background(), d.url+"/lines/9", "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, a.status, d.name)
	}
}

// killShard kills the only replica of a shard: its lines must fail through
// both doors with a clean 502 or 503 while the other shards answer, and be
// served again after a restart. How soon is reported, not asserted: on a
// busy machine it takes longer, and waits are bounded by patience alone.
func killShard(t *testing.T, c *cluster, name string) {
	r := c.replicas[name][0]
	mine := (r.shard.First + r.shard.Last) / 2
	others := []int64{1, c.total}
	for _, d := range c.doors() {
		require.Empty(t, c.check(c.get(context.Background(), fmt.Sprintf("%s/lines/%d", d.url, mine)), mine), d.name)
	}

	r.proc.Kill()
	killed := time.Now()
	// Both doors are watched at once, each from the moment of the kill.
	type watch struct{ failedAfter, slowest time.Duration }
	watches := make([]watch, len(c.doors()))
	var wg sync.WaitGroup
	for i, d := range c.doors() {
		wg.Go(func() {
			w := &watches[i]
			for time.Since(killed) < patience {
				a := c.get(context.Background(), fmt.Sprintf("%s/lines/%d", d.url, mine))
				w.slowest = max(w.slowest, a.took)
				if a.err != nil || (a.status != http.StatusBadGateway && a.status != http.StatusServiceUnavailable) {
					w.failedAfter = 0
					continue
				}
				if a.header.Get("Content-Type") != problem.ContentType {
					t.Errorf("%s: %d with Content-Type %q", d.name, a.status, a.header.Get("Content-Type"))
				}
				if w.failedAfter == 0 {
					w.failedAfter = time.Since(killed)
				}
				if time.Since(killed) > w.failedAfter+200*time.Millisecond {
					return // it keeps failing, fast
				}
			}
		})
	}
	wg.Wait()
	for i, d := range c.doors() {
		w := watches[i]
		report(t, "%s: %s killed: its lines fail (502/503) %v after the kill; slowest answer %v",
			d.name, name, w.failedAfter.Round(time.Millisecond), w.slowest.Round(time.Millisecond))
		assert.NotZero(t, w.failedAfter, "%s: %s's lines did not fail within %v", d.name, name, patience)
		for _, n := range others {
			a := c.get(context.Background(), fmt.Sprintf("%s/lines/%d", d.url, n))
			assert.Empty(t, c.check(a, n), "%s: line %d of another shard", d.name, n)
		}
	}

	restarted := time.Now()
	c.start(r)
	served := map[string]time.Duration{}
	for time.Since(restarted) < patience && len(served) < 2 {
		for _, d := range c.doors() {
			if _, ok := served[d.name]; ok {
				continue
			}
			if c.check(c.get(context.Background(), fmt.Sprintf("%s/lines/%d", d.url, mine)), mine) == "" {
				served[d.name] = time.Since(restarted)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range c.doors() {
		took, ok := served[d.name]
		report(t, "%s: %s restarted: served again %v after the restart", d.name, name, took.Round(time.Millisecond))
		assert.True(t, ok, "%s: not served again within %v", d.name, patience)
	}
}

// underLoad sends a bounded loop of concurrent requests for the lines of
// shard through both doors for about two seconds, stops replica which of
// its two with stop after half a second, and counts what was lost. Then
// it restarts the replica and waits until both doors use it again.
func underLoad(t *testing.T, c *cluster, shard string, which int, how string, stop func(*replica)) {
	rs := c.replicas[shard]
	require.Len(t, rs, 2)
	victim := rs[which]
	first, last := victim.shard.First, victim.shard.Last

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	type tally struct {
		sent, lost atomic.Int64
		mu         sync.Mutex
		why        []string
	}
	tallies := map[string]*tally{}
	var wg sync.WaitGroup
	for _, d := range c.doors() {
		tl := &tally{}
		tallies[d.name] = tl
		for w := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for ctx.Err() == nil {
					n := first + rng.Int64N(last-first+1)
					a := c.get(context.Background(), fmt.Sprintf("%s/lines/%d", d.url, n))
					tl.sent.Add(1)
					if why := c.check(a, n); why != "" {
						tl.lost.Add(1)
						tl.mu.Lock()
						if len(tl.why) < 5 {
							tl.why = append(tl.why, fmt.Sprintf("line %d: %s", n, why))
						}
						tl.mu.Unlock()
					}
				}
			})
		}
	}
	time.Sleep(500 * time.Millisecond)
	stop(victim)
	wg.Wait()
	for _, d := range c.doors() {
		tl := tallies[d.name]
		report(t, "%s: %s one of two replicas of %s under load: %d requests, %d lost",
			d.name, how, shard, tl.sent.Load(), tl.lost.Load())
		assert.Zero(t, tl.lost.Load(), "%s: %s", d.name, strings.Join(tl.why, "\n"))
		assert.Positive(t, tl.sent.Load(), d.name)
	}

	// Bring the replica back, and wait until both doors use it again, so
	// the next step starts whole.
	c.start(victim)
	c.waitReady(t, victim)
	healthy := fmt.Sprintf(`lineserver_router_replica_healthy{replica=%q,shard=%q} 1`, testenv.URL(victim.port), shard)
	require.Eventually(t, func() bool {
		a := c.get(context.Background(), c.router+"/metrics")
		return a.err == nil && strings.Contains(string(a.body), healthy)
	}, patience, 20*time.Millisecond, "the router takes the replica back")
	seen := len(c.nginxP.Output())
	served := fmt.Sprintf("upstream=%s upstream_status=200", testenv.Addr(victim.port))
	require.Eventually(t, func() bool {
		c.get(context.Background(), fmt.Sprintf("%s/lines/%d", c.nginx, first))
		return strings.Contains(c.nginxP.Output()[seen:], served)
	}, patience, 20*time.Millisecond, "nginx takes the replica back")
}
