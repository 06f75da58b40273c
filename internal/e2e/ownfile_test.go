package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
)

// ownFileSection is the README section whose recipe TestOwnFileRecipe runs.
const ownFileSection = "## Serve your own file"

// The ports the recipe uses.
var ownFilePorts = map[string]int{"shard-1": 9081, "shard-2": 9082, "shard-3": 9083, "router": 9090, "nginx": 9091}

// TestOwnFileRecipe runs the README's recipe for one's own file as
// written, with bash, in a folder holding bin/ as `make build` fills it and
// a generated 30,000-line big.txt: it checks lines through each shard, the
// router and NGINX, then runs the stop commands and checks that every
// process it started is gone, its ports closed and its files removed.
func TestOwnFileRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs shards, the router and nginx")
	}
	lockRecipePorts(t)
	nginx := testenv.Command(t, "nginx")
	testenv.Command(t, "curl")
	bash := testenv.Command(t, "bash")
	start, stop := recipe(t)
	for name, port := range ownFilePorts {
		if c, err := net.DialTimeout("tcp", testenv.Addr(port), time.Second); err == nil {
			c.Close()
			t.Fatalf("port %d, which the README's recipe gives %s, is taken: stop what listens there", port, name)
		}
	}

	work := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(work, "bin")+"/", "./cmd/lines", "./cmd/lineserver", "./cmd/router")
	build.Dir = filepath.Join("..", "..")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	var data []byte
	for i := 1; i <= 30_000; i++ {
		data = fmt.Appendf(data, "own %d: %s\n", i, strings.Repeat("ü", i%29))
	}
	require.NoError(t, os.WriteFile(filepath.Join(work, "big.txt"), data, 0o644))
	lines := testenv.Lines(data)

	tmp := t.TempDir() // mktemp -d makes $run in here
	env := append(os.Environ(), "TMPDIR="+tmp, "PATH="+filepath.Dir(nginx)+string(os.PathListSeparator)+os.Getenv("PATH"))
	runBash := func(script string, extra ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// Output to a file: background processes keep it open, and Wait
		// would wait for them on a pipe.
		log, err := os.CreateTemp(t.TempDir(), "bash-*.log")
		require.NoError(t, err)
		defer log.Close()
		cmd := exec.CommandContext(ctx, bash, "-c", script)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = work, append(env, extra...), log, log
		err = cmd.Run()
		b, _ := os.ReadFile(log.Name())
		require.NoError(t, err, "bash:\n%s\noutput:\n%s", script, b)
		return string(b)
	}

	printed := runBash(start)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the recipe makes one folder with mktemp -d")
	run := filepath.Join(tmp, entries[0].Name())
	pids := readPIDs(t, run)
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	require.Len(t, pids, 5, "three shards, the router and NGINX")
	assert.Contains(t, printed, string(lines[0]), "curl localhost:9081/lines/1")
	assert.Contains(t, printed, string(lines[14_999]), "curl localhost:9090/lines/15000")
	assert.Contains(t, printed, string(lines[29_999]), "curl localhost:9091/lines/-1")

	m, err := manifest.Load(filepath.Join(run, "shards", "manifest.json"))
	require.NoError(t, err)
	require.Len(t, m.Shards, 3)
	var ranges [][2]int64
	for _, s := range m.Shards {
		ranges = append(ranges, [2]int64{s.First, s.Last})
	}
	require.Equal(t, int64(1), ranges[0][0])
	require.Equal(t, int64(30_000), ranges[2][1])
	for i, r := range ranges {
		port := ownFilePorts["shard-"+strconv.Itoa(i+1)]
		for n := int64(1); n <= 30_000; n += 1 + n%53 {
			want := http.StatusMisdirectedRequest
			if n >= r[0] && n <= r[1] {
				want = http.StatusOK
			}
			body, status := fetch(t, port, n)
			require.Equal(t, want, status, "shard-%d, line %d", i+1, n)
			if want == http.StatusOK {
				require.Equal(t, string(lines[n-1]), body, "shard-%d, line %d", i+1, n)
			}
		}
		for _, n := range []int64{r[0], r[1], r[0] - 30_001, r[1] - 30_001} {
			body, status := fetch(t, port, n)
			require.Equal(t, http.StatusOK, status, "shard-%d, line %d", i+1, n)
			require.Equal(t, string(lines[(n+30_001)%30_001-1]), body, "shard-%d, line %d", i+1, n)
		}
		_, status := fetch(t, port, 30_001)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status, "shard-%d, line 30001", i+1)
	}
	for _, door := range []string{"router", "nginx"} {
		port := ownFilePorts[door]
		for n := int64(1); n <= 30_000; n += 1 + n%41 {
			body, status := fetch(t, port, n)
			require.Equal(t, http.StatusOK, status, "%s, line %d", door, n)
			require.Equal(t, string(lines[n-1]), body, "%s, line %d", door, n)
		}
		for _, n := range []int64{-1, -30_000, ranges[1][0], ranges[1][1], ranges[2][0]} {
			body, status := fetch(t, port, n)
			require.Equal(t, http.StatusOK, status, "%s, line %d", door, n)
			require.Equal(t, string(lines[(n+30_001)%30_001-1]), body, "%s, line %d", door, n)
		}
		for _, n := range []int64{30_001, -30_001} {
			_, status := fetch(t, port, n)
			assert.Equal(t, http.StatusRequestEntityTooLarge, status, "%s, line %d", door, n)
		}
	}

	runBash(stop, "run="+run)
	for _, pid := range pids {
		assert.Eventually(t, func() bool { return gone(pid) }, 30*time.Second, 50*time.Millisecond, "process %d is still running after the stop commands", pid)
	}
	for name, port := range ownFilePorts {
		assert.Eventually(t, func() bool {
			c, err := net.DialTimeout("tcp", testenv.Addr(port), time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		}, 30*time.Second, 50*time.Millisecond, "%s's port %d still answers after the stop commands", name, port)
	}
	_, err = os.Stat(run)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the stop commands remove $run: %v", err)
	testenv.DirHolds(t, work, "bin", "big.txt")
}

// recipe returns the command blocks of the README's own-file section that
// start the sharded set and stop it: the sh blocks of its sub-section, the
// one that runs `bin/lines shard` and the one that runs `kill`.
func recipe(t *testing.T) (start, stop string) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n"+ownFileSection+"\n")
	require.True(t, ok, "README.md has the section %q", ownFileSection)
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			break
		}
		block, after, ok := strings.Cut(after, "```\n")
		require.True(t, ok, "an sh block ends")
		blocks = append(blocks, block)
		rest = after
	}
	for _, b := range blocks {
		switch {
		case strings.Contains(b, "bin/lines shard "):
			start = b
		case strings.Contains(b, "kill "):
			stop = b
		}
	}
	require.NotEmpty(t, start, "the section has a block that runs bin/lines shard")
	require.NotEmpty(t, stop, "the section has a block that stops what it started")
	return start, stop
}

func readPIDs(t *testing.T, run string) []int {
	b, err := os.ReadFile(filepath.Join(run, "pids"))
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// lockRecipePorts makes copies of TestOwnFileRecipe in several test
// processes (make test-busy runs this package twice at once) take the
// recipe's fixed ports in turn: it holds an exclusive lock on a file in the
// temporary folder until the test's other cleanups have run, the kill of
// whatever it started included.
func lockRecipePorts(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "lineserver-own-file-recipe.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { f.Close() }) // registered first, so it runs last; closing unlocks
}

// gone reports whether process pid has exited (a zombie has).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z")
}

func fetch(t *testing.T, port int, n int64) (string, int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/lines/%d", testenv.URL(port), n))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b), resp.StatusCode
}
