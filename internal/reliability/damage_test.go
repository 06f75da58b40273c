package reliability

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

// Each damage scenario loads the shard for loadBefore, damages its files,
// and goes on loading it for loadAfter, and until minAfter answers came
// after the damage.
const (
	loadBefore = 300 * time.Millisecond
	loadAfter  = 700 * time.Millisecond
	minAfter   = 100
	loaders    = 8
)

// tally counts the answers of a load, before and after the damage.
type tally struct {
	right, failed, wrong, other [2]atomic.Int64
	firstWrong                  atomic.Pointer[string]
}

// after is how many answers came after the damage.
func (c *tally) after() int64 {
	return c.right[1].Load() + c.failed[1].Load() + c.wrong[1].Load() + c.other[1].Load()
}

func (c *tally) String() string {
	return fmt.Sprintf("before: %d right, %d 500; after: %d right, %d 500; wrong lines: %d, other answers: %d",
		c.right[0].Load(), c.failed[0].Load(), c.right[1].Load(), c.failed[1].Load(),
		c.wrong[0].Load()+c.wrong[1].Load(), c.other[0].Load()+c.other[1].Load())
}

// TestDamagedWhileServing damages the files of a running shard (the real
// binary) under load. Every 200 must be the line's exact bytes as they were
// when the shard opened the file; a line that can no longer be read so is a
// problem+json 500 and /readyz turns 503. A write or truncation breaks the
// shard's read lease (or shows in its fstat where it has none) before a
// byte changes; a rename, delete or chmod reaches its inotify watcher: so
// even a data file replaced by rename (the old one intact) fails closed.
func TestDamagedWhileServing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, data, idx string)
		// ready is what /readyz answers afterwards; failures says whether
		// some requests must fail.
		ready    int
		failures bool
	}{
		{"data truncated to half", func(t *testing.T, data, _ string) {
			st, err := os.Stat(data)
			must(t, err)
			must(t, os.Truncate(data, st.Size()/2))
		}, 503, true},
		{"data rewritten in place, same size and shape", func(t *testing.T, data, _ string) {
			// Every letter changes, every '\n' stays: the index still fits,
			// only the file's state tells the lines are not the same.
			b, err := os.ReadFile(data)
			must(t, err)
			must(t, os.WriteFile(data, bytes.ReplaceAll(b, []byte("a"), []byte("b")), 0o644))
		}, 503, true},
		{"data replaced by rename", func(t *testing.T, data, _ string) {
			// The shard still holds the old file, intact, but the watcher
			// sees the new file on its path: the shard fails closed until
			// it is restarted on the new file with its new index.
			other := data + ".new"
			must(t, os.WriteFile(other, bytes.ToUpper(testenv.Varied(totalLines)), 0o644))
			must(t, os.Rename(other, data))
		}, 503, true},
		{"data chmod'ed, contents unchanged", func(t *testing.T, data, _ string) {
			// Any change of attributes counts: the shard cannot tell a
			// chmod from a rewrite that restored the mtime.
			must(t, os.Chmod(data, 0o444))
		}, 503, true},
		{"index truncated to half", func(t *testing.T, _, idx string) {
			must(t, os.Truncate(idx, int64(totalLines/2)*index.EntrySize))
		}, 503, true},
		{"index rewritten with another file's", func(t *testing.T, _, idx string) {
			// The index of the same lines without the first: every offset
			// is off by the first line's length.
			lines := testenv.Lines(testenv.Varied(totalLines))
			b, err := index.Of(bytes.Join(lines[1:], nil))
			must(t, err)
			must(t, os.WriteFile(idx, b, 0o644))
		}, 503, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := startShard(t, f, 1, totalLines)
			c := load(t, f, s, func() { tc.damage(t, f.path, f.path+"_index.txt") })
			ready := exchange(s.addr, get("/readyz"), 1, "GET")[0]
			report(t, "%s; /readyz after: %d", c, ready.status)
			if n := c.wrong[0].Load() + c.wrong[1].Load(); n > 0 {
				t.Errorf("%d wrong lines served; the first: %s", n, *c.firstWrong.Load())
			}
			if n := c.other[0].Load() + c.other[1].Load(); n > 0 {
				t.Errorf("%d answers neither the line nor a problem+json 500", n)
			}
			if c.failed[0].Load() > 0 {
				t.Errorf("%d requests failed before the damage", c.failed[0].Load())
			}
			if tc.failures && c.failed[1].Load() == 0 {
				t.Errorf("no request failed after the damage")
			}
			if !tc.failures && c.failed[1].Load() > 0 {
				t.Errorf("%d requests failed after a change that is not damage", c.failed[1].Load())
			}
			if ready.status != tc.ready {
				t.Errorf("/readyz answered %d, want %d", ready.status, tc.ready)
			}
			s.alive(t)
		})
	}
}

// TestIndexShiftedInPlace rewrites a running shard's index with entries
// that each name the start of the next line: every span is a whole line of
// the data, so the newline checks all pass; the index's lease, or its fstat
// where it has none, is what catches it.
func TestIndexShiftedInPlace(t *testing.T) {
	f := newFixture(t)
	s := startShard(t, f, 1, totalLines)
	c := load(t, f, s, func() {
		b, err := os.ReadFile(f.path + "_index.txt")
		must(t, err)
		shifted := append(b[index.EntrySize:], b[len(b)-index.EntrySize:]...)
		must(t, os.WriteFile(f.path+"_index.txt", shifted, 0o644))
	})
	report(t, "%s", c)
	if n := c.wrong[0].Load() + c.wrong[1].Load(); n > 0 {
		t.Errorf("%d wrong lines served; the first: %s", n, *c.firstWrong.Load())
	}
}

// load asks s for random lines from loaders clients at once, calls damage
// after loadBefore, and goes on for loadAfter.
func load(t *testing.T, f *fixture, s *server, damage func()) *tally {
	c := &tally{}
	var phase atomic.Int32
	stop := make(chan struct{})
	client := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: loaders}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for w := range loaders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := 1 + rng.IntN(totalLines)
				resp, err := client.Get(fmt.Sprintf("http://%s/lines/%d", s.addr, n))
				// Counted before the damage only if it ended before the
				// damage began.
				p := phase.Load()
				if err != nil {
					c.other[p].Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					c.other[p].Add(1)
				case resp.StatusCode == http.StatusOK && bytes.Equal(body, f.line(n)):
					c.right[p].Add(1)
				case resp.StatusCode == http.StatusOK:
					c.wrong[p].Add(1)
					msg := fmt.Sprintf("line %d: %q, want %q", n, body, f.line(n))
					c.firstWrong.CompareAndSwap(nil, &msg)
				case resp.StatusCode == http.StatusInternalServerError && resp.Header.Get("Content-Type") == problem.ContentType:
					c.failed[p].Add(1)
				default:
					c.other[p].Add(1)
				}
			}
		})
	}
	time.Sleep(loadBefore)
	phase.Store(1)
	damage()
	// For loadAfter, and on a busy machine until minAfter answers came
	// after the damage (within ioTimeout more).
	time.Sleep(loadAfter)
	for end := time.Now().Add(ioTimeout); c.after() < minAfter && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
