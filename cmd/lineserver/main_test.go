package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

const pkg = "github.com/lineserver/lineserver/cmd/lineserver"

// bin is the binary under test, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lineserver-test")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "lineserver")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestEveryLine starts the real binary and reads every line of a file back,
// byte for byte, concurrently.
func TestEveryLine(t *testing.T) {
	data := append(testenv.Varied(5000), "a last line without newline"...)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	port := testenv.FreePort(t)
	start := time.Now()
	p := testenv.Start(t, bin, nil, "FILE_REPOSITORY_FILE_PATH="+path, "PORT="+strconv.Itoa(port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 10*time.Second, p)
	t.Logf("cold start to ready: %v", time.Since(start))

	lines := testenv.Lines(data)
	got := make([][]byte, len(lines))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(lines); i += 16 {
				resp, err := http.Get(fmt.Sprintf("%s/lines/%d", testenv.URL(port), i+1))
				if err != nil {
					errs <- err
					return
				}
				got[i], err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("line %d: status %d, %v", i+1, resp.StatusCode, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var all []byte
	for _, l := range got {
		all = append(all, l...)
	}
	assert.Equal(t, string(data), string(all), "lines 1..N give back the file")
}

// TestBadSettingsStopAtOnce: the process exits 1 before listening, with one
// message that names the setting or file.
func TestBadSettingsStopAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := testenv.WriteIndexed(t, dir, "data.txt", []byte("a\nb\n"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "short_index.txt"), []byte("0000000000\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "noindex.txt"), []byte("a\n"), 0o644))
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no data file", nil, "FILE_REPOSITORY_FILE_PATH is required"},
		{"missing file", []string{"FILE_REPOSITORY_FILE_PATH=" + path + ".gone"}, "data.txt.gone: no such file"},
		{"truncated index", []string{"FILE_REPOSITORY_FILE_PATH=" + path, "INDEX_FILE_PATH=" + filepath.Join(dir, "short_index.txt")}, "not a multiple of 13"},
		{"bad number", []string{"FILE_REPOSITORY_FILE_PATH=" + path, "INDEX_FIRST_LINE_NUMBER=first"}, "INDEX_FIRST_LINE_NUMBER"},
		{"missing index", []string{"FILE_REPOSITORY_FILE_PATH=" + filepath.Join(dir, "noindex.txt")}, "noindex.txt_index.txt: no such file or directory; build it with: lines index " + filepath.Join(dir, "noindex.txt")},
		{"missing index elsewhere", []string{"FILE_REPOSITORY_FILE_PATH=" + path, "INDEX_FILE_PATH=" + filepath.Join(dir, "x.idx")}, "build it with: lines index " + path + " -o " + filepath.Join(dir, "x.idx")},
		{"range beyond the index", []string{"FILE_REPOSITORY_FILE_PATH=" + path, "INDEX_LAST_LINE_NUMBER=5"}, "too few"},
		{"total lines 0", []string{"FILE_REPOSITORY_FILE_PATH=" + path, "FILE_TOTAL_LINES=0"}, "FILE_TOTAL_LINES=0 is below the last line served, 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := testenv.FreePort(t)
			env := append([]string{"PORT=" + strconv.Itoa(port), "FILE_REPOSITORY_FILE_PATH="}, tc.env...)
			p := testenv.Start(t, bin, nil, env...)
			code := p.Wait(5 * time.Second)
			assert.Equal(t, 1, code, p.Output())
			assert.Contains(t, p.Output(), tc.want)
			assert.Len(t, strings.Split(strings.TrimSpace(p.Output()), "\n"), 1, "one message: %s", p.Output())
			_, err := http.Get(testenv.URL(port) + "/healthz")
			assert.Error(t, err, "it never listened")
		})
	}
}

// TestSIGTERMFinishesInFlight: a long line being sent when SIGTERM comes
// arrives whole; /readyz turns 503; the process exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	long := make([]byte, 64<<20)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	data := append(append([]byte("x\n"), long...), '\n')
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	port := testenv.FreePort(t)
	p := testenv.Start(t, bin, nil, "FILE_REPOSITORY_FILE_PATH="+path, "PORT="+strconv.Itoa(port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 10*time.Second, p)

	resp, err := http.Get(testenv.URL(port) + "/lines/2")
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, make([]byte, 1<<20)) // the response is under way
	require.NoError(t, err)
	require.NoError(t, p.Signal(syscall.SIGTERM))
	time.Sleep(50 * time.Millisecond)
	if r, err := http.Get(testenv.URL(port) + "/readyz"); err == nil {
		assert.Equal(t, 503, r.StatusCode, "not ready while draining")
		r.Body.Close()
	}
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, len(long)+1-(1<<20), len(rest), "the line in flight arrives whole")
	assert.Equal(t, 0, p.Wait(10*time.Second), p.Output())
}

// TestUsage: --help prints the full usage, FILE and every setting, to
// standard output and exits 0; an argument is a usage error (exit 2).
func TestUsage(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		out, err := exec.Command(bin, arg).Output()
		require.NoError(t, err, "exit 0")
		for _, want := range []string{"usage: FILE_REPOSITORY_FILE_PATH=FILE [SETTING=VALUE ...] lineserver", "INDEX_FILE_PATH",
			"INDEX_FIRST_LINE_NUMBER", "INDEX_LAST_LINE_NUMBER", "FILE_TOTAL_LINES", "PORT", "LOG_FORMAT", "LOG_LEVEL", "lines index FILE"} {
			assert.Contains(t, string(out), want)
		}
	}
	cmd := exec.Command(bin, "serve")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, 2, cmd.ProcessState.ExitCode())
	assert.Equal(t, "lineserver: usage: [SETTING=VALUE ...] lineserver (the settings are environment variables; lineserver --help lists them): it takes no argument, got [\"serve\"]\n", string(out))
}

// TestLogsAddress: the shard says where it listens.
func TestLogsAddress(t *testing.T) {
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", []byte("a\n"))
	port := testenv.FreePort(t)
	p := testenv.Start(t, bin, nil, "FILE_REPOSITORY_FILE_PATH="+path, "PORT="+strconv.Itoa(port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", 30*time.Second, p)
	assert.Contains(t, p.Output(), fmt.Sprintf(`"message":"listening","address":":%d","url":"http://localhost:%d"`, port, port))
}
