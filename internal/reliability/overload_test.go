package reliability

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lineserver/lineserver/internal/problem"
)

// concurrent is how many connections TestOverload holds open at once.
const concurrent = 5000

// Bounds of TestOverload. burstLimit guards against a hang, it is no
// speed bound: on a busy machine a burst is answered in many seconds, and
// that is fine. The burst must leave the server's peak memory under
// memoryLimit.
const (
	burstLimit  = time.Minute
	memoryLimit = 512 << 10 // KiB
)

// outcome is how one connection of the burst ended.
type outcome int

const (
	rightLine  outcome = iota // 200 with the line's exact bytes
	cleanError                // a 5xx with a problem+json body
	wrongLine                 // 200 with other bytes: never allowed
	badAnswer                 // another status, or a broken answer
	noConnect                 // the connection could not be opened
)

var outcomeNames = [...]string{"right line", "clean 5xx", "WRONG LINE", "bad or broken answer", "not connected"}

// TestOverload opens 5,000 connections to a shard and to the router, all at
// once, each sending its request as soon as it is open: every answer must
// be the right line or a clean problem+json 5xx, with the server's memory
// under memoryLimit, and the server alive afterwards.
func TestOverload(t *testing.T) {
	raiseNoFile(t, 2*concurrent+1000)
	f := newFixture(t)
	a := startShard(t, f, 1, firstOfB-1)
	b := startShard(t, f, firstOfB, totalLines)
	manifest := writeManifest(t, f, a, b)
	t.Run("shard", func(t *testing.T) { burst(t, f, a, 1, firstOfB-1, false) })
	t.Run("router", func(t *testing.T) { burst(t, f, startRouter(t, manifest), 1, totalLines, false) })
}

// TestRouterBurstLosesNothing asks more of the router than TestOverload:
// the shards behind it answer every request of the same burst themselves,
// so the router should pass them all on.
func TestRouterBurstLosesNothing(t *testing.T) {
	raiseNoFile(t, 2*concurrent+1000)
	f := newFixture(t)
	manifest := startShards(t, f)
	burst(t, f, startRouter(t, manifest), 1, totalLines, true)
}

// TestNginxBurstLosesNothing puts NGINX through the same burst.
func TestNginxBurstLosesNothing(t *testing.T) {
	raiseNoFile(t, 2*concurrent+1000)
	f := newFixture(t)
	manifest := startShards(t, f)
	burst(t, f, startNginx(t, manifest), 1, totalLines, true)
}

// burst opens concurrent connections to s at the same moment, each of
// which asks for a line of lo..hi as soon as it is open. (Each sends at
// once: a connection that says nothing for longer than a server's header
// timeout is a slow client, cut on purpose, and on a busy machine opening
// 5,000 connections takes longer than the router's.) strict fails on clean
// errors too.
func burst(t *testing.T, f *fixture, s *server, lo, hi int, strict bool) {
	before := s.memory(t)
	var counts [len(outcomeNames)]int
	statuses := map[int]int{}
	var mu sync.Mutex
	var firstBad string
	var lastOpen time.Time // when the last connection opened
	record := func(o outcome, code int, why string) {
		mu.Lock()
		defer mu.Unlock()
		counts[o]++
		if code != 0 {
			statuses[code]++
		}
		if o > cleanError && firstBad == "" {
			firstBad = why
		}
	}

	gate := make(chan struct{})
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: burstLimit}
	for i := range concurrent {
		n := lo + i%(hi-lo+1)
		wg.Go(func() {
			<-gate
			c, err := d.Dial("tcp", s.addr)
			if err != nil {
				record(noConnect, 0, err.Error())
				return
			}
			defer c.Close()
			mu.Lock()
			lastOpen = time.Now()
			mu.Unlock()
			record(ask(c, time.Now().Add(burstLimit), n, f.line(n)))
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	after := s.memory(t)

	summary := ""
	for o, n := range counts {
		if n > 0 {
			summary += fmt.Sprintf(", %s: %d", outcomeNames[o], n)
		}
	}
	report(t, "%s, %d concurrent connections opened in %v, answered in %v%s (statuses %v); memory before %v, after %v",
		s.name, concurrent, lastOpen.Sub(start).Round(time.Millisecond), elapsed.Round(time.Millisecond), summary, statuses, before, after)
	if counts[wrongLine] > 0 {
		t.Errorf("%d connections got a wrong line", counts[wrongLine])
	}
	if strict && counts[cleanError] > 0 {
		t.Errorf("%d of %d requests failed with a 5xx", counts[cleanError], concurrent)
	}
	if n := counts[badAnswer] + counts[noConnect]; n > 0 {
		t.Errorf("%d connections got no clean answer; the first: %s", n, firstBad)
	}
	if after.hwm > memoryLimit {
		t.Errorf("peak memory %d KiB, above the bound of %d KiB", after.hwm, memoryLimit)
	}
	if s.name == "nginx" {
	}
	s.alive(t)
}

// ask sends a request for line n on c and sorts the answer, whose status
// it returns (0 for none).
func ask(c net.Conn, deadline time.Time, n int, line []byte) (outcome, int, string) {
	c.SetDeadline(deadline)
	if _, err := fmt.Fprintf(c, "GET /lines/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", n); err != nil {
		return badAnswer, 0, err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return badAnswer, 0, err.Error()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case err != nil:
		return badAnswer, code, err.Error()
	case code == http.StatusOK && string(body) == string(line):
		return rightLine, code, ""
	case code == http.StatusOK:
		return wrongLine, code, fmt.Sprintf("line %d: %q", n, body)
	case code >= 500 && resp.Header.Get("Content-Type") == problem.ContentType:
		return cleanError, code, ""
	}
	return badAnswer, code, fmt.Sprintf("line %d: status %d %q", n, code, body)
}
