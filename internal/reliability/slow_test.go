package reliability

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Slow clients: each sends a request line, then trickles a header one byte
// a second and never ends it.
const (
	tricklers = 20
	// idlers hold a connection to the shard with half a request, to measure
	// what idle connections cost it.
	idlers = 2000
	// watch is how long the shard is watched: longer than the router's
	// (5 s) and NGINX's (10 s) header timeouts.
	watch = 12 * time.Second
	// cutSlack is how long after its header timeout a door may take to cut
	// a slow client: a busy machine runs its timers late.
	cutSlack = 20 * time.Second
)

// TestSlowClients trickles headers at the router and NGINX, which must cut
// them within their header timeouts (5 s and 10 s) while still answering
// other clients at once; and measures what the same does to a shard
// exposed directly, whose server (the Functions Framework's
// http.ListenAndServe) has no timeouts at all.
func TestSlowClients(t *testing.T) {
	raiseNoFile(t, idlers+tricklers+1000)
	f := newFixture(t)
	a := startShard(t, f, 1, firstOfB-1)
	b := startShard(t, f, firstOfB, totalLines)
	manifest := writeManifest(t, f, a, b)
	for _, d := range []struct {
		name    string
		start   func(*testing.T) *server
		timeout time.Duration
	}{
		{"router", func(t *testing.T) *server { return startRouter(t, manifest) }, 10 * time.Second}, // the router's headerTimeout
		{"nginx", func(t *testing.T) *server { return startNginx(t, manifest) }, 10 * time.Second},
	} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := d.start(t)
			limit := d.timeout + cutSlack
			cuts, others := slowloris(t, f, s, tricklers, limit)
			if len(cuts) < tricklers {
				t.Errorf("%d of %d slow clients were not cut within %v", tricklers-len(cuts), tricklers, limit)
			}
			report(t, "%s cut %d slow clients after %v (first) to %v (last), header timeout %v; a normal request meanwhile took %v",
				s.name, len(cuts), first(cuts), last(cuts), d.timeout, others)
			s.alive(t)
		})
	}
	t.Run("shard", func(t *testing.T) {
		t.Parallel()
		shardUnderSlowloris(t, f, a)
	})
}

// shardUnderSlowloris holds idlers half-sent requests and trickles
// tricklers more at the shard for watch, and reports what it costs.
func shardUnderSlowloris(t *testing.T, f *fixture, s *server) {
	before := s.memory(t)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range idlers {
		c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
		if err != nil {
			t.Fatalf("after %d idle connections: %v", len(held), err)
		}
		held = append(held, c)
		if _, err := c.Write([]byte("GET /lines/1 HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	cuts, others := slowloris(t, f, s, tricklers, watch)
	after := s.memory(t)
	// Are the idle ones still open? A read that times out says so.
	open := 0
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); timedOut(err) {
			open++
		}
	}
	perConn := float64(after.rss-before.rss) / float64(idlers+tricklers)
	report(t, "shard held %d idle half-sent requests and %d header tricklers for %v: %d idle still open, %d tricklers cut; "+
		"a normal request meanwhile took %v; memory %v -> %v (about %.0f KiB per held connection); its open-file limit: %s",
		idlers, tricklers, watch, open, len(cuts), others, before, after, perConn, openFileLimit(s))
	if open != idlers || len(cuts) > 0 {
		t.Logf("the shard now cuts slow clients: update README's Reliability section and unskip TestShardCutsSlowClients")
	}
	s.alive(t)
}

// slowloris starts n clients that trickle a header at s one byte a second,
// for at most limit, and while they do, times a normal request. It returns
// when each trickler was cut, sorted, and the normal request's time.
func slowloris(t *testing.T, f *fixture, s *server, n int, limit time.Duration) (cuts []time.Duration, normal time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if cut, ok := trickle(s.addr, limit); ok {
				mu.Lock()
				cuts = append(cuts, cut)
				mu.Unlock()
			}
		})
	}
	time.Sleep(2 * time.Second) // the tricklers are under way
	start := time.Now()
	a := exchange(s.addr, get("/lines/7"), 1, "GET")[0]
	normal = time.Since(start).Round(time.Millisecond)
	if a.err != nil || a.status != 200 || string(a.body) != string(f.line(7)) {
		t.Errorf("%s: a normal request during the slow clients: %d %v", s.name, a.status, a.err)
	}
	wg.Wait()
	slices.Sort(cuts)
	return cuts, normal
}

// trickle sends a request line and then a header a byte a second, never
// ending it, until the server closes the connection (or answers) or limit
// passes. It reports when the server cut it.
func trickle(addr string, limit time.Duration) (time.Duration, bool) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(limit + time.Second))
	if _, err := c.Write([]byte("GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		return time.Since(start), true
	}
	closed := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 512))
		closed <- err
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			if timedOut(err) {
				return 0, false
			}
			return time.Since(start).Round(10 * time.Millisecond), true
		case <-tick.C:
			if time.Since(start) > limit {
				return 0, false
			}
			if _, err := c.Write([]byte("a")); err != nil {
				return time.Since(start).Round(10 * time.Millisecond), true
			}
		}
	}
}

func first(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[0]
}

func last(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// openFileLimit is the "Max open files" soft limit of s's process, which
// bounds how many connections it can hold.
func openFileLimit(s *server) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", s.proc.Cmd.Process.Pid))
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			return strings.Fields(l)[3]
		}
	}
	return "unknown"
}
