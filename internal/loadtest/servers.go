package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/nginx"
)

// Binaries are the programs a run starts.
type Binaries struct {
	// Lineserver is cmd/lineserver, Ceiling cmd/ceiling, Router
	// cmd/router; Wrk and Nginx the machine's. An empty path is missing.
	Lineserver, Ceiling, Router, Wrk, Nginx string
}

// modulePath is the import path of this module's commands.
const modulePath = "github.com/lineserver/lineserver/cmd/"

// buildBinaries builds the module's commands into dir with the go command,
// which must run inside the module's source tree. A command that does not
// build is left empty, with the reason in the returned notes; only the
// shard's own binary is required.
func buildBinaries(ctx context.Context, dir string) (Binaries, []string, error) {
	var b Binaries
	var notes []string
	for _, c := range []struct {
		name string
		dst  *string
	}{{"lineserver", &b.Lineserver}, {"ceiling", &b.Ceiling}, {"router", &b.Router}} {
		out := filepath.Join(dir, c.name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, modulePath+c.name)
		msg, err := cmd.CombinedOutput()
		if err != nil {
			if ctx.Err() != nil {
				return b, notes, ctx.Err()
			}
			if c.name == "lineserver" {
				return b, notes, fmt.Errorf("go build %s (run lines bench inside the module's source tree, or pass --bin): %w\n%s", modulePath+c.name, err, msg)
			}
			notes = append(notes, fmt.Sprintf("cmd/%s did not build, so its targets were not measured: %s", c.name, firstLine(string(msg))))
			continue
		}
		*c.dst = out
	}
	return b, notes, nil
}

// sourceVersion describes the source tree that go build uses: the commit
// and whether files differ from it, or "" outside a git checkout.
func sourceVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := "commit " + strings.TrimSpace(string(out))
	// Only tracked Go files matter to the binaries.
	if diff, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", "*.go", "go.mod", "go.sum").Output(); err == nil && len(diff) > 0 {
		v += " with uncommitted changes"
	}
	return v
}

// findBinaries takes the commands from dir, where an earlier build put
// them; a missing one is left empty.
func findBinaries(dir string) Binaries {
	var b Binaries
	for _, c := range []struct {
		name string
		dst  *string
	}{{"lineserver", &b.Lineserver}, {"ceiling", &b.Ceiling}, {"router", &b.Router}} {
		p := filepath.Join(dir, c.name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			*c.dst = p
		}
	}
	return b
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func localURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// shardEnv is the environment of a shard over lines first to last of d,
// listening on port.
func shardEnv(d *Dataset, first, last int64, port int) []string {
	return []string{
		"FUNCTION_TARGET=Lines",
		"FILE_REPOSITORY_FILE_PATH=" + d.Data,
		"INDEX_FILE_PATH=" + d.Index,
		"INDEX_FIRST_LINE_NUMBER=" + strconv.FormatInt(first, 10),
		"INDEX_LAST_LINE_NUMBER=" + strconv.FormatInt(last, 10),
		"FILE_TOTAL_LINES=" + strconv.FormatInt(d.Lines, 10),
		"PORT=" + strconv.Itoa(port),
		"LOG_LEVEL=info",
	}
}

// server is a started process and the URL it answers on.
type server struct {
	proc *Proc
	url  string
}

// retries is how many times a server is started on a new port when it
// exits before it is ready: on a shared machine another process may take
// the free port between freePort and the server's listen.
const retries = 3

// retry starts a server with start until it is ready, up to retries
// times when it exits before that.
func retry(start func() (*server, error)) (*server, error) {
	for i := 1; ; i++ {
		s, err := start()
		if err == nil || !errors.Is(err, errExited) || i == retries {
			return s, err
		}
	}
}

func startShard(ctx context.Context, ps *Procs, bin, name string, d *Dataset, first, last int64) (*server, error) {
	return retry(func() (*server, error) { return startShardOnce(ctx, ps, bin, name, d, first, last) })
}

func startCeiling(ctx context.Context, ps *Procs, bin, function string, d *Dataset) (*server, error) {
	return retry(func() (*server, error) { return startCeilingOnce(ctx, ps, bin, function, d) })
}

func startNginx(ctx context.Context, ps *Procs, bin, name, dir string, m *manifest.Manifest) (*server, error) {
	return retry(func() (*server, error) { return startNginxOnce(ctx, ps, bin, name, dir, m) })
}

func startRouter(ctx context.Context, ps *Procs, bin, name, path string) (*server, error) {
	return retry(func() (*server, error) { return startRouterOnce(ctx, ps, bin, name, path) })
}

// startShardOnce starts a shard over lines first to last of d and waits until
// it is ready.
func startShardOnce(ctx context.Context, ps *Procs, bin, name string, d *Dataset, first, last int64) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := ps.Start(name, bin, nil, shardEnv(d, first, last, port), false)
	if err != nil {
		return nil, err
	}
	s := &server{p, localURL(port)}
	return s, waitHTTP(ctx, s.url+"/readyz", p, ps, 30*time.Second)
}

// startCeilingOnce starts a function of cmd/ceiling: Constant, the
// constant body, or Reads, the two reads of a line of d.
func startCeilingOnce(ctx context.Context, ps *Procs, bin, function string, d *Dataset) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := []string{"FUNCTION_TARGET=" + function, "PORT=" + strconv.Itoa(port)}
	probe := "/"
	if d != nil {
		env = append(env, "FILE_REPOSITORY_FILE_PATH="+d.Data, "INDEX_FILE_PATH="+d.Index)
		probe = "/lines/1"
	}
	p, err := ps.Start(strings.ToLower(function), bin, nil, env, false)
	if err != nil {
		return nil, err
	}
	s := &server{p, localURL(port)}
	return s, waitHTTP(ctx, s.url+probe, p, ps, 30*time.Second)
}

// writeManifest writes to path the manifest of n shards over d that urls
// serve (see manifestOver).
func writeManifest(path string, d *Dataset, urls []string, n int) (*manifest.Manifest, error) {
	m, err := manifestOver(d, urls, n)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := m.Write(f); err != nil {
		f.Close()
		return nil, err
	}
	return m, f.Close()
}

// manifestOver is the manifest of n shards over d's lines, served by the
// servers at urls: server j serves the j-th of len(urls) equal slices of
// the lines, and the n shards are split among the servers the same way,
// each server's slice evenly among its shards. With n == len(urls) each
// shard is a server's whole slice; with more, neighbouring shards share a
// server, so that manifests of 3 and of 1,000 shards over the same servers
// differ in the routing only.
func manifestOver(d *Dataset, urls []string, n int) (*manifest.Manifest, error) {
	if len(urls) == 0 || n < len(urls) || int64(n) > d.Lines {
		return nil, fmt.Errorf("%d shards on %d servers over %d lines: need at least one shard a server and one line a shard", n, len(urls), d.Lines)
	}
	m := &manifest.Manifest{TotalLines: d.Lines}
	for j, url := range urls {
		from, to := shardRange(int64(n), len(urls), j) // this server's shards
		first, last := shardRange(d.Lines, len(urls), j)
		count := int(to - from + 1)
		for k := range count {
			a, b := shardRange(last-first+1, count, k)
			m.Shards = append(m.Shards, manifest.Shard{
				Name: fmt.Sprintf("shard-%d", int(from)+k), First: first - 1 + a, Last: first - 1 + b,
				Data: d.Data, Index: d.Index, URLs: []string{url},
			})
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// shardRange is the lines of shard i of n over lines 1 to total.
func shardRange(total int64, n, i int) (first, last int64) {
	return total*int64(i)/int64(n) + 1, total * int64(i+1) / int64(n)
}

// startNginxOnce renders the project's nginx.conf for m into dir and runs
// nginx with it.
func startNginxOnce(ctx context.Context, ps *Procs, bin, name, dir string, m *manifest.Manifest) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		return nil, err
	}
	if err := nginx.Render(f, m, nginx.Options{Listen: "127.0.0.1:" + strconv.Itoa(port)}); err != nil {
		f.Close()
		return nil, fmt.Errorf("render nginx.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	args := []string{"-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
	p, err := ps.Start(name, bin, args, nil, true)
	if err != nil {
		return nil, err
	}
	s := &server{p, localURL(port)}
	return s, waitHTTP(ctx, s.url+"/lines/1", p, ps, 30*time.Second)
}

// startRouterOnce runs the Go router over the manifest at path.
func startRouterOnce(ctx context.Context, ps *Procs, bin, name, path string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := ps.Start(name, bin, []string{"--manifest", path, "--listen", "127.0.0.1:" + strconv.Itoa(port)}, nil, false)
	if err != nil {
		return nil, err
	}
	s := &server{p, localURL(port)}
	return s, waitHTTP(ctx, s.url+"/readyz", p, ps, 30*time.Second)
}

// errExited reports a server that exited before it was ready.
var errExited = errors.New("exited")

// waitHTTP polls url until it answers 200, p exits, ctx ends or timeout
// passes.
func waitHTTP(ctx context.Context, url string, p *Proc, ps *Procs, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s %w before %s answered (%v); its log: %s", p.Name, errExited, url, p.Err(), ps.logPath(p))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 at %s: %w (last: %v); its log: %s", p.Name, url, ctx.Err(), err, ps.logPath(p))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (ps *Procs) logPath(p *Proc) string {
	if ps.LogDir == "" {
		return "(none kept)"
	}
	return filepath.Join(ps.LogDir, p.Name+".log")
}

// coldStart starts the shard binary over d n times and measures each time
// from starting the process to its first 200 for /lines/1, which proves
// the files open, checked and served. Each process is stopped before the
// next starts.
func coldStart(ctx context.Context, ps *Procs, bin string, d *Dataset, n int) ([]time.Duration, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var times []time.Duration
	for i := range n {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		url := localURL(port) + "/lines/1"
		start := time.Now()
		p, err := ps.Start(fmt.Sprintf("coldstart-%s-%d", d.Name(), i+1), bin, nil, shardEnv(d, 1, d.Lines, port), false)
		if err != nil {
			return nil, err
		}
		took, err := firstOK(ctx, client, url, p, start)
		p.Stop(time.Second)
		if err != nil {
			return nil, fmt.Errorf("cold start %d on %s: %w; its log: %s", i+1, d.Name(), err, ps.logPath(p))
		}
		times = append(times, took)
	}
	return times, nil
}

// firstOK polls url as fast as a refused connection allows until it
// answers 200, and returns the time since start.
func firstOK(ctx context.Context, client *http.Client, url string, p *Proc, start time.Time) (time.Duration, error) {
	deadline := start.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-p.Done():
			return 0, fmt.Errorf("the shard %w: %v", errExited, p.Err())
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		time.Sleep(200 * time.Microsecond)
	}
	return 0, errors.New("no 200 within 30 s")
}
