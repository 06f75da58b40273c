package shard

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// watchTimeout is how long a test waits for the watcher's event on a busy
// machine; it asserts no speed.
const watchTimeout = 30 * time.Second

// openVaried opens a shard on a file of n varied lines and returns it, the
// file's path and its lines. With writers, the test holds both files open
// for writing before the shard opens them, as another process could, so
// the kernel grants no lease and the shard falls back to fstat.
func openVaried(t *testing.T, n int, writers bool) (*Shard, string, [][]byte, [2]*os.File) {
	t.Helper()
	data := testenv.Varied(n)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	var w [2]*os.File
	if writers {
		for i, p := range []string{path, path + "_index.txt"} {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			w[i] = f
		}
	}
	sh, err := Open(Options{DataPath: path, IndexPath: path + "_index.txt"})
	require.NoError(t, err)
	t.Cleanup(func() { sh.Close() })
	return sh, path, testenv.Lines(data), w
}

// leased skips the test unless the kernel granted both leases here.
func leased(t *testing.T, sh *Shard) {
	t.Helper()
	if !sh.guard.files[0].leased || !sh.guard.files[1].leased {
		t.Skipf("no leases on this filesystem (%s)", sh.Guard())
	}
}

// serveAll reads every line: each is either right or fails with
// ErrDamaged. It returns how many failed.
func serveAll(t *testing.T, sh *Shard, lines [][]byte) int {
	t.Helper()
	buf := make([]byte, 64<<10)
	failed := 0
	for n := int64(1); n <= int64(len(lines)); n++ {
		sp, err := sh.Locate(n)
		if err == nil {
			var c []byte
			if c, err = sh.Chunk(buf, sp, 0); err == nil {
				require.Equal(t, string(lines[n-1]), string(c), "line %d: served, so it must be right", n)
			}
		}
		if err != nil {
			require.ErrorIs(t, err, ErrDamaged)
			failed++
		}
	}
	return failed
}

func TestGuardModes(t *testing.T) {
	sh, _, _, _ := openVaried(t, 10, false)
	t.Log(sh.Guard())
	assert.Contains(t, sh.Guard(), "inotify")
	sh, _, _, _ = openVaried(t, 10, true)
	assert.Equal(t, "data: fstat, index: fstat, inotify", sh.Guard(), "a file open for writing elsewhere gets no lease")
}

// TestLeaseMarksBeforeTheWrite: with leases, a same-shape rewrite cannot
// begin before the shard is marked damaged, so it fails every line at once,
// with no wait for the watcher.
func TestLeaseMarksBeforeTheWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
	}{
		{"data rewritten, same shape", func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(path, bytes.ReplaceAll(b, []byte("e"), []byte("E")), 0o644)
		}},
		{"data written in place without truncation", func(path string) error {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte("X"), 0)
			return err
		}},
		{"index shifted by one line", func(path string) error {
			b, err := os.ReadFile(path + "_index.txt")
			if err != nil {
				return err
			}
			return os.WriteFile(path+"_index.txt", append(b[13:], b[len(b)-13:]...), 0o644)
		}},
		{"index truncated", func(path string) error { return os.Truncate(path+"_index.txt", 13) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh, path, lines, _ := openVaried(t, 500, false)
			leased(t, sh)
			require.NoError(t, tc.damage(path))
			require.ErrorIs(t, sh.Ready(), ErrDamaged, "marked before the write could begin")
			assert.Equal(t, len(lines), serveAll(t, sh, lines), "every line fails")
		})
	}
}

// TestFstatWithoutLease: files another process holds open for writing get
// no lease; a same-shape rewrite through that descriptor, which breaks no
// lease, is caught by fstat on the next read.
func TestFstatWithoutLease(t *testing.T) {
	sh, _, lines, w := openVaried(t, 500, true)
	require.Zero(t, serveAll(t, sh, lines))
	for i, l := range lines {
		if len(l) > 3 {
			off := int64(len(bytes.Join(lines[:i], nil)))
			_, err := w[0].WriteAt(bytes.ToUpper(l[:2]), off)
			require.NoError(t, err)
			break
		}
	}
	assert.Equal(t, len(lines), serveAll(t, sh, lines), "every line fails: the data's times changed")
	require.ErrorIs(t, sh.Ready(), ErrDamaged)
}

// TestWatcher: changes that leave the open files' bytes as they were (a
// rename onto a path, a delete, a chmod, the folder moved) still turn the
// shard not ready once the watcher's event arrives; until then it serves
// the old bytes, which are right.
func TestWatcher(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string) string
	}{
		{"data replaced by rename", func(t *testing.T, path string) string {
			require.NoError(t, os.WriteFile(path+".new", bytes.ToUpper(testenv.Varied(500)), 0o644))
			require.NoError(t, os.Rename(path+".new", path))
			return path
		}},
		{"index replaced by rename", func(t *testing.T, path string) string {
			b, err := os.ReadFile(path + "_index.txt")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path+".new", b, 0o644))
			require.NoError(t, os.Rename(path+".new", path+"_index.txt"))
			return path + "_index.txt"
		}},
		{"data deleted", func(t *testing.T, path string) string {
			require.NoError(t, os.Remove(path))
			return path
		}},
		{"data chmod'ed", func(t *testing.T, path string) string {
			require.NoError(t, os.Chmod(path, 0o444))
			return path
		}},
		{"folder moved away", func(t *testing.T, path string) string {
			dir := filepath.Dir(path)
			require.NoError(t, os.Rename(dir, dir+".old"))
			t.Cleanup(func() { os.RemoveAll(dir + ".old") })
			return dir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh, path, lines, _ := openVaried(t, 500, false)
			what := tc.change(t, path)
			serveAll(t, sh, lines)
			require.Eventually(t, func() bool { return sh.Ready() != nil }, watchTimeout, time.Millisecond)
			assert.ErrorIs(t, sh.Ready(), ErrDamaged)
			assert.Contains(t, sh.Ready().Error(), what)
			assert.Equal(t, len(lines), serveAll(t, sh, lines), "not ready: every line fails")
		})
	}
}

// TestOtherFilesIgnored: files created, written and renamed beside the
// shard's leave it ready.
func TestOtherFilesIgnored(t *testing.T) {
	sh, path, lines, _ := openVaried(t, 100, false)
	dir := filepath.Dir(path)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.txt"), []byte("x\n"), 0o644))
	require.NoError(t, os.Rename(filepath.Join(dir, "other.txt"), filepath.Join(dir, "other2.txt")))
	require.NoError(t, os.Remove(filepath.Join(dir, "other2.txt")))
	// Events reach a watcher in order: the first to mark the shard is
	// the data's chmod, not one of the other files'.
	require.NoError(t, os.Chmod(path, 0o600))
	require.Eventually(t, func() bool { return sh.Ready() != nil }, watchTimeout, time.Millisecond)
	assert.Contains(t, sh.Ready().Error(), "file "+path+" changed")
	assert.Equal(t, len(lines), serveAll(t, sh, lines))
}

// TestSameShapeRewriteUnderLoad rewrites the data in place, same shape,
// over and over while readers read every line: no read may return a byte
// of the new contents, with a lease or with fstat.
func TestSameShapeRewriteUnderLoad(t *testing.T) {
	for _, writers := range []bool{false, true} {
		t.Run(fmt.Sprintf("held open for writing=%v", writers), func(t *testing.T) {
			sh, path, lines, w := openVaried(t, 2000, writers)
			var stop atomic.Bool
			var served, failed atomic.Int64
			var wg sync.WaitGroup
			for r := range 4 {
				wg.Go(func() {
					buf := make([]byte, 64<<10)
					for n := int64(1 + r); !stop.Load(); n = n%int64(len(lines)) + 1 {
						sp, err := sh.Locate(n)
						if err == nil {
							var c []byte
							if c, err = sh.Chunk(buf, sp, 0); err == nil {
								if !bytes.Equal(c, lines[n-1]) {
									t.Errorf("line %d: served %q, want %q", n, c, lines[n-1])
									stop.Store(true)
								}
								served.Add(1)
								continue
							}
						}
						failed.Add(1)
					}
				})
			}
			time.Sleep(50 * time.Millisecond)
			upper := bytes.ToUpper(bytes.Join(lines, nil))
			for range 20 {
				if writers {
					_, err := w[0].WriteAt(upper, 0)
					require.NoError(t, err)
				} else {
					require.NoError(t, os.WriteFile(path, upper, 0o644))
				}
			}
			time.Sleep(50 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			t.Logf("%d served, %d failed; %s", served.Load(), failed.Load(), sh.Guard())
			assert.ErrorIs(t, sh.Ready(), ErrDamaged)
		})
	}
}

// TestWatcherWindow measures, without asserting it, how long after a
// write returns the watcher marks the shard (the window a watcher alone
// would leave, which leases and fstat close), and how long a lease holds
// a writer's open.
func TestWatcherWindow(t *testing.T) {
	const rounds = 30
	var window, held []time.Duration
	for range rounds {
		sh, _, _, w := openVaried(t, 50, true)
		start := time.Now()
		_, err := w[0].WriteAt([]byte("X"), 0)
		require.NoError(t, err)
		for sh.Ready() == nil {
			if time.Since(start) > watchTimeout {
				t.Fatal("no event")
			}
			time.Sleep(20 * time.Microsecond)
		}
		window = append(window, time.Since(start))
		sh.Close()

		sh, path, _, _ := openVaried(t, 50, false)
		leased(t, sh)
		start = time.Now()
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		require.NoError(t, err)
		held = append(held, time.Since(start))
		f.Close()
		require.Error(t, sh.Ready())
		sh.Close()
	}
	testenv.Figure("shard", "write to not ready by the watcher alone, "+quantiles(window))
	testenv.Figure("shard", "open for writing held by the lease until the shard is marked, "+quantiles(held))
}

func quantiles(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	var b strings.Builder
	fmt.Fprintf(&b, "%d rounds: median %v, p90 %v, max %v (busy shared machine)", len(d), q(0.5), q(0.9), d[len(d)-1])
	return b.String()
}
