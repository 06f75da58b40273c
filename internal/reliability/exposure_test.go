package reliability

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lineserver/lineserver/internal/testenv"
)

// The shard's exposure to slowloris: shardFiles is the open-file limit it
// runs under here (a common default), exposureStep how many idle
// half-sent requests are added between two probes, probeWait how long a
// probe waits for its answer before the shard counts as no longer
// answering.
const (
	shardFiles   = 1024
	exposureStep = 64
	probeWait    = 10 * time.Second
)

// TestShardSlowlorisExposure measures how many idle half-sent requests a
// shard exposed directly holds before it stops answering other clients.
// The Functions Framework serves it with http.ListenAndServe, which has no
// header timeout: every such connection stays open and holds a file, and
// once the shard's open-file limit is spent it accepts nobody. The test
// records the figure and asserts no speed; it checks that the shard
// answers again once the idle connections close.
func TestShardSlowlorisExposure(t *testing.T) {
	raiseNoFile(t, 2*shardFiles+1000)
	f := newFixture(t)
	s := startLimitedShard(t, f, shardFiles)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	answeredWith, stoppedAt := -1, -1
	for len(held) <= shardFiles+4*exposureStep {
		if probeTwice(s.addr, f) {
			answeredWith = len(held)
		} else {
			stoppedAt = len(held)
			break
		}
		for range exposureStep {
			c, err := net.DialTimeout("tcp", s.addr, ioTimeout)
			if err != nil {
				t.Fatalf("after %d idle connections: %v", len(held), err)
			}
			held = append(held, c)
			if _, err := c.Write([]byte("GET /lines/1 HTTP/1.1\r\nHost: x\r\n")); err != nil {
				t.Fatalf("after %d idle connections: %v", len(held), err)
			}
		}
	}
	mem := s.memory(t)
	if stoppedAt < 0 {
		report(t, "shard with an open-file limit of %d still answered with %d idle half-sent requests held; %v",
			shardFiles, answeredWith, mem)
		t.Logf("the shard no longer runs out of files: update docs/reliability.md")
	} else {
		report(t, "shard with an open-file limit of %d answered others with %d idle half-sent requests held, "+
			"and no longer with %d (a request unanswered for %v); %v", shardFiles, answeredWith, stoppedAt, probeWait, mem)
	}

	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline := time.Now().Add(ioTimeout)
	for !probe(s.addr, f) {
		if time.Now().After(deadline) {
			t.Fatalf("the shard did not answer again within %v of the idle connections closing", ioTimeout)
		}
	}
	s.alive(t)
}

// probe asks addr for line 7 on a new connection and reports whether the
// right line came within probeWait.
// probeTwice asks twice, so that one answer lost to a busy machine does not
// count as the shard refusing.
func probeTwice(addr string, f *fixture) bool {
	for range 2 {
		if probe(addr, f) {
			return true
		}
	}
	return false
}

func probe(addr string, f *fixture) bool {
	c, err := net.DialTimeout("tcp", addr, probeWait)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeWait))
	if _, err := c.Write([]byte(get("/lines/7"))); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK && string(body) == string(f.line(7))
}

// startLimitedShard starts cmd/lineserver on the whole fixture with its
// open-file limit (soft and hard, so the Go runtime cannot raise it) set to
// files, and waits until it is ready.
func startLimitedShard(t testing.TB, f *fixture, files int) *server {
	t.Helper()
	port := testenv.FreePort(t)
	p := testenv.Start(t, "/bin/sh", []string{"-c", `ulimit -n "$0" && exec "$1"`, strconv.Itoa(files), bins.lineserver},
		"FILE_REPOSITORY_FILE_PATH="+f.path,
		"FILE_TOTAL_LINES="+strconv.Itoa(totalLines),
		"PORT="+strconv.Itoa(port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", startWait, p)
	return &server{name: "shard", addr: testenv.Addr(port), proc: p}
}
