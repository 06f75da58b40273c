package reliability

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"github.com/lineserver/lineserver/internal/testenv"
)

// The file every test serves: totalLines varied lines, in two shards of the
// same file (each shard reads the whole file's index and serves its half).
const (
	totalLines = 3000
	firstOfB   = 1501
)

// bins holds the binaries TestMain builds once for the whole package.
var bins struct {
	dir                     string
	lineserver, router, cli string
	// routerErr says why there is no router binary (cmd/router is not in
	// the module yet), so router tests skip instead of failing.
	routerErr error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reliability-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		const mod = "github.com/lineserver/lineserver/cmd/"
		if err := build(mod+"lineserver", mod+"lines"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		bins.lineserver, bins.cli = filepath.Join(dir, "lineserver"), filepath.Join(dir, "lines")
		if bins.routerErr = build(mod + "router"); bins.routerErr == nil {
			bins.router = filepath.Join(dir, "router")
		}
		return m.Run()
	}()
	os.Exit(code)
}

func build(pkgs ...string) error {
	out, err := exec.Command("go", append([]string{"build", "-o", bins.dir + "/"}, pkgs...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// fixture is the served file on disk: its path, its lines, and a manifest
// whose URLs are filled in as shards start.
type fixture struct {
	dir   string
	path  string
	lines [][]byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	data := testenv.Varied(totalLines)
	return &fixture{dir: dir, path: testenv.WriteIndexed(t, dir, "data.txt", data), lines: testenv.Lines(data)}
}

// line is the bytes of line n (1-based), '\n' included.
func (f *fixture) line(n int) []byte { return f.lines[n-1] }

// server is a started process that answers HTTP on addr.
type server struct {
	name string
	addr string
	proc *testenv.Process
	// pids are the processes whose memory counts (nginx's master and
	// workers); empty means proc alone.
	pids func() []int
}

// startShard starts cmd/lineserver on lines first..last of the fixture's
// file and waits until it is ready.
func startShard(t testing.TB, f *fixture, first, last int) *server {
	t.Helper()
	port := testenv.FreePort(t)
	p := testenv.Start(t, bins.lineserver, nil,
		"FILE_REPOSITORY_FILE_PATH="+f.path,
		"INDEX_FIRST_LINE_NUMBER="+strconv.Itoa(first),
		"INDEX_LAST_LINE_NUMBER="+strconv.Itoa(last),
		"FILE_TOTAL_LINES="+strconv.Itoa(totalLines),
		"PORT="+strconv.Itoa(port))
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", startWait, p)
	return &server{name: "shard", addr: testenv.Addr(port), proc: p}
}

// writeManifest writes the manifest of the two shards a and b and returns
// its path.
func writeManifest(t testing.TB, f *fixture, a, b *server) string {
	t.Helper()
	type shard struct {
		Name  string   `json:"name"`
		First int      `json:"first"`
		Last  int      `json:"last"`
		Data  string   `json:"data"`
		Index string   `json:"index"`
		URLs  []string `json:"urls"`
	}
	m := struct {
		TotalLines int     `json:"total_lines"`
		Shards     []shard `json:"shards"`
	}{totalLines, []shard{
		{"shard-a", 1, firstOfB - 1, "data.txt", "data.txt_index.txt", []string{"http://" + a.addr}},
		{"shard-b", firstOfB, totalLines, "data.txt", "data.txt_index.txt", []string{"http://" + b.addr}},
	}}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, "manifest.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startShards starts the two shards of the fixture and writes their
// manifest.
func startShards(t testing.TB, f *fixture) (manifest string) {
	t.Helper()
	a := startShard(t, f, 1, firstOfB-1)
	b := startShard(t, f, firstOfB, totalLines)
	return writeManifest(t, f, a, b)
}

// startRouter starts cmd/router on the manifest; it skips the test while
// cmd/router is not in the module.
func startRouter(t testing.TB, manifest string) *server {
	t.Helper()
	if bins.router == "" {
		if testenv.InCI() {
			t.Fatalf("no router binary: %v", bins.routerErr)
		}
		t.Skipf("no router binary: %v", bins.routerErr)
	}
	port := testenv.FreePort(t)
	p := testenv.Start(t, bins.router, []string{"--manifest", manifest, "--listen", testenv.Addr(port)})
	testenv.WaitHTTP(t, testenv.URL(port)+"/readyz", startWait, p)
	return &server{name: "router", addr: testenv.Addr(port), proc: p}
}

// startNginx renders the configuration of the manifest with `lines nginx`
// and runs NGINX on it; it skips (fails in CI) without nginx.
func startNginx(t testing.TB, manifest string) *server {
	t.Helper()
	bin := testenv.Command(t, "nginx")
	port := testenv.FreePort(t)
	dir := t.TempDir()
	var conf, errb bytes.Buffer
	cmd := exec.Command(bins.cli, "nginx", manifest, "--listen", testenv.Addr(port))
	cmd.Stdout, cmd.Stderr = &conf, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lines nginx: %v\n%s", err, errb.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	global := "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"
	p := testenv.Start(t, bin, []string{"-p", dir, "-c", "nginx.conf", "-e", "stderr", "-g", global})
	testenv.WaitHTTP(t, testenv.URL(port)+"/healthz", startWait, p)
	master := p.Cmd.Process.Pid
	return &server{name: "nginx", addr: testenv.Addr(port), proc: p, pids: func() []int {
		return append([]int{master}, children(master)...)
	}}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(raw)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// memory is a process's peak and current resident memory, in KiB, summed
// over its processes.
type memory struct{ hwm, rss int64 }

func (m memory) String() string {
	return fmt.Sprintf("VmHWM %.1f MiB, VmRSS %.1f MiB", float64(m.hwm)/1024, float64(m.rss)/1024)
}

func (s *server) memory(t testing.TB) memory {
	t.Helper()
	pids := []int{s.proc.Cmd.Process.Pid}
	if s.pids != nil {
		pids = s.pids()
	}
	var m memory
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, l := range strings.Split(string(raw), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmHWM:":
				m.hwm += n
			case "VmRSS:":
				m.rss += n
			}
		}
	}
	return m
}

// alive fails the test unless the server's process is still running and
// answers /healthz with 200.
func (s *server) alive(t testing.TB) {
	t.Helper()
	select {
	case <-s.proc.Done:
		t.Fatalf("%s exited: %v; output of %s", s.name, s.proc.Cmd.ProcessState, s.proc.Tail(t))
	default:
	}
	a := exchange(s.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1, "GET")
	if a[0].err != nil || a[0].status != http.StatusOK {
		t.Fatalf("%s no longer answers /healthz: %d %v", s.name, a[0].status, a[0].err)
	}
}

// answer is one response read off a raw connection.
type answer struct {
	status int
	ctype  string
	header http.Header
	body   []byte
	err    error
}

// ioTimeout bounds every exchange: a server that answers nothing within it
// hangs, which fails the test. It guards against a hang and is no speed
// bound, so it leaves room for a busy machine.
const ioTimeout = 30 * time.Second

// startWait bounds the wait for a started server to answer.
const startWait = 30 * time.Second

// exchange sends raw on a new connection to addr and reads up to n
// responses, the i-th to a request of methods[i] (the last one repeats),
// all within ioTimeout. It writes while it reads, so a server that answers
// and closes before taking all of raw is seen answering. An answer whose
// err is a timeout means the server hung.
func exchange(addr, raw string, n int, methods ...string) []answer {
	out := make([]answer, n)
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		for i := range out {
			out[i].err = err
		}
		return out
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	go io.Copy(conn, strings.NewReader(raw))
	br := bufio.NewReader(conn)
	for i := range out {
		method := methods[min(i, len(methods)-1)]
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
			// An interim answer (100 Continue): the real one follows.
			resp, err = http.ReadResponse(br, &http.Request{Method: method})
		}
		if err != nil {
			out[i].err = err
			for j := i + 1; j < n; j++ {
				out[j].err = err
			}
			break
		}
		out[i].status, out[i].ctype, out[i].header = resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header
		out[i].body, out[i].err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if out[i].err != nil {
			break
		}
	}
	return out
}

// timedOut reports whether err is a deadline that passed.
func timedOut(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// raiseNoFile lifts the test process's open-file limit to its hard limit.
func raiseNoFile(t testing.TB, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < need && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < need {
		t.Skipf("RLIMIT_NOFILE is %d, below the %d this test needs", lim.Cur, need)
	}
}

// report prints a figure for CI's log and the test's.
func report(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log(msg)
	testenv.Figure("reliability", t.Name()+": "+msg)
}

// readAll sends raw on a new connection to addr and reads until the server
// closes it, within ioTimeout.
func readAll(addr, raw string) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(ioTimeout))
	go io.Copy(conn, strings.NewReader(raw))
	return io.ReadAll(conn)
}
