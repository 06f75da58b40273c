// Package testenv starts the real parts that tests use: binaries built from
// this module, commands from the machine (nginx, wrk, docker), free ports,
// and servers that are waited on until they answer.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where every suite must run and a
// missing command fails instead of skipping.
func InCI() bool { return os.Getenv("CI") != "" }

// Command returns the path of the command name. When it is missing the test
// is skipped on a developer's machine and fails in CI.
func Command(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if InCI() {
		t.Fatalf("%s is required in CI (.ci/run installs it): %v", name, err)
	}
	t.Skipf("%s is not installed: %v", name, err)
	return ""
}

// Build compiles the package with the given import path (for example
// "github.com/lineserver/lineserver/cmd/lineserver") into a temporary folder
// and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a command started by Start; it is killed when the test ends.
type Process struct {
	Cmd  *exec.Cmd
	name string // the binary's base name
	out  *Buffer
	// Done is closed when the process has exited.
	Done chan struct{}
	err  error
}

// Start starts bin with args and env (added to the test's environment).
// Its output is kept and shown if the test fails.
func Start(t testing.TB, bin string, args []string, env ...string) *Process {
	t.Helper()
	p := &Process{out: &Buffer{}, Done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.Done) }()
	p.name = filepath.Base(bin)
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s", p.Tail(t))
		}
	})
	return p
}

// Output is what the process has printed so far.
func (p *Process) Output() string { return p.out.String() }

// Tail is what a failing test shows of the process's output: all of it up
// to TailLines lines, else the last TailLines lines, with a header that
// counts the lines, quotes the first that looks like an error or a
// warning, and names the file that keeps the whole output (see SaveLog).
func (p *Process) Tail(t testing.TB) string {
	return Tail(t, p.name, p.Output())
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill kills the process's group with SIGKILL and waits for it to exit.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.Done
}

// Wait waits up to timeout for the process to exit and returns its exit
// code, or -1 if it did not exit in time.
func (p *Process) Wait(timeout time.Duration) int {
	select {
	case <-p.Done:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// WaitHTTP polls url until it answers 200, the process exits, or timeout
// passes, and fails the test in the last two cases.
func WaitHTTP(t testing.TB, url string, timeout time.Duration, p *Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			out := ""
			if p != nil {
				out = "output of " + p.Tail(t)
			}
			t.Fatalf("%s did not answer 200 within %v (last error %v)\n%s", url, timeout, err, out)
		case <-p.doneOrNil():
			t.Fatalf("process exited with %v before %s answered; output of %s", p.err, url, p.Tail(t))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *Process) doneOrNil() chan struct{} {
	if p == nil {
		return nil
	}
	return p.Done
}

// Addr is "127.0.0.1:port".
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// URL is "http://127.0.0.1:port".
func URL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

// Buffer is a bytes.Buffer that several goroutines (a process's stdout
// and stderr, a logger) may write to at once.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Figure prints a measured figure under a prefix ("e2e", "reliability")
// on standard output, which go test shows only for -v or a failure, and
// appends it to the file LINESERVER_FIGURES names, if any: `make test`
// prints that file at the end, so CI shows every figure of a passing run.
func Figure(prefix, msg string) {
	line := prefix + ": " + msg + "\n"
	fmt.Print(line)
	path := os.Getenv("LINESERVER_FIGURES")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line)
}
