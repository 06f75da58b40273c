package loadtest

import (
	"cmp"
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

	"github.com/lineserver/lineserver/internal/atomicfile"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/nginx"
)

// programs are the paths of the programs a run starts.
type programs struct {
	// Lineserver is cmd/lineserver, Ceiling cmd/ceiling, Router
	// cmd/router; Wrk and Nginx the machine's. An empty path is missing.
	Lineserver, Ceiling, Router, Wrk, Nginx string
}

// modulePath is the import path of this module's commands.
const modulePath = "github.com/lineserver/lineserver/cmd/"

// binaries finds wrk (required) and nginx, and the module's commands in
// cfg.BinDir, where an earlier build put them, or else builds them into
// dir with the go command, which must run inside the module's source
// tree. A program that is missing or does not build is left empty, with
// the reason in the returned notes; only wrk and the shard's own binary
// are required.
func binaries(ctx context.Context, cfg Config, dir string) (programs, []string, error) {
	var b programs
	var notes []string
	var err error
	if b.Wrk, err = exec.LookPath(cmp.Or(cfg.Wrk, "wrk")); err != nil {
		return b, nil, fmt.Errorf("wrk is required (Debian: apt-get install wrk): %w", err)
	}
	if b.Nginx, err = exec.LookPath(cmp.Or(cfg.Nginx, "nginx")); err != nil {
		notes = append(notes, "nginx is not installed (Debian: apt-get install nginx-light), so its targets were not measured.")
		b.Nginx = ""
	}
	for _, c := range []struct {
		name string
		dst  *string
	}{{"lineserver", &b.Lineserver}, {"ceiling", &b.Ceiling}, {"router", &b.Router}} {
		path := filepath.Join(cfg.BinDir, c.name)
		if cfg.BinDir == "" {
			path = filepath.Join(dir, c.name)
			msg, err := exec.CommandContext(ctx, "go", "build", "-o", path, modulePath+c.name).CombinedOutput()
			switch {
			case ctx.Err() != nil:
				return b, notes, ctx.Err()
			case err != nil && c.name == "lineserver":
				return b, notes, fmt.Errorf("go build %s (run lines bench inside the module's source tree, or pass --bin): %w\n%s", modulePath+c.name, err, msg)
			case err != nil:
				first, _, _ := strings.Cut(string(msg), "\n")
				notes = append(notes, fmt.Sprintf("cmd/%s did not build, so its targets were not measured: %s", c.name, first))
				continue
			}
		} else if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			if c.name == "lineserver" {
				return b, notes, fmt.Errorf("no lineserver in %s", cfg.BinDir)
			}
			notes = append(notes, fmt.Sprintf("%s is not in %s, so its targets were not measured.", c.name, cfg.BinDir))
			continue
		}
		*c.dst = path
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
func shardEnv(d *dataset, first, last int64, port int) []string {
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
	proc *process
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

// startServer starts a server on a free port with run and waits until
// probe answers 200 there, starting it again if it exits before (retry).
func (r *runner) startServer(ctx context.Context, probe string, run func(port int) (*process, error)) (*server, error) {
	return retry(func() (*server, error) {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := run(port)
		if err != nil {
			return nil, err
		}
		s := &server{p, localURL(port)}
		return s, waitHTTP(ctx, s.url+probe, p, r.ps, 20*time.Millisecond)
	})
}

// startShard starts a shard over lines first to last of d.
func (r *runner) startShard(ctx context.Context, name string, d *dataset, first, last int64) (*server, error) {
	return r.startServer(ctx, "/readyz", func(port int) (*process, error) {
		return r.ps.start(name, r.bins.Lineserver, nil, shardEnv(d, first, last, port), false)
	})
}

// startCeiling starts a function of cmd/ceiling: Constant, the constant
// body, or Reads, the two reads of a line of d.
func (r *runner) startCeiling(ctx context.Context, function string, d *dataset) (*server, error) {
	probe := "/"
	if d != nil {
		probe = "/lines/1"
	}
	return r.startServer(ctx, probe, func(port int) (*process, error) {
		env := []string{"FUNCTION_TARGET=" + function, "PORT=" + strconv.Itoa(port)}
		if d != nil {
			env = append(env, "FILE_REPOSITORY_FILE_PATH="+d.Data, "INDEX_FILE_PATH="+d.Index)
		}
		return r.ps.start(strings.ToLower(function), r.bins.Ceiling, nil, env, false)
	})
}

// startNginx renders the project's nginx.conf for m into dir and runs
// nginx with it.
func (r *runner) startNginx(ctx context.Context, name, dir string, m *manifest.Manifest) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	return r.startServer(ctx, "/lines/1", func(port int) (*process, error) {
		err := atomicfile.Write(conf, func(f *os.File) error {
			return nginx.Render(f, m, nginx.Options{Listen: "127.0.0.1:" + strconv.Itoa(port)})
		})
		if err != nil {
			return nil, fmt.Errorf("render nginx.conf: %w", err)
		}
		args := []string{"-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
		return r.ps.start(name, r.bins.Nginx, args, nil, true)
	})
}

// startRouter runs the Go router over the manifest at path.
func (r *runner) startRouter(ctx context.Context, name, path string) (*server, error) {
	return r.startServer(ctx, "/readyz", func(port int) (*process, error) {
		return r.ps.start(name, r.bins.Router, []string{"--manifest", path, "--listen", "127.0.0.1:" + strconv.Itoa(port)}, nil, false)
	})
}

// manifestOver is the manifest of n shards over d's lines, served by the
// servers at urls: server j serves the j-th of len(urls) equal slices of
// the lines, and the n shards are split among the servers the same way,
// each server's slice evenly among its shards. With n == len(urls) each
// shard is a server's whole slice; with more, neighbouring shards share a
// server, so that manifests of 3 and of 1,000 shards over the same servers
// differ in the routing only.
func manifestOver(d *dataset, urls []string, n int) (*manifest.Manifest, error) {
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
	return m, m.Validate()
}

// shardRange is the lines of shard i of n over lines 1 to total.
func shardRange(total int64, n, i int) (first, last int64) {
	return total*int64(i)/int64(n) + 1, total * int64(i+1) / int64(n)
}

// errExited reports a server that exited before it was ready.
var errExited = errors.New("exited")

// probeClient asks the servers whether they are ready, on a new
// connection each time.
var probeClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// waitHTTP polls url every interval until it answers 200, p exits, ctx
// ends or 30 s pass.
func waitHTTP(ctx context.Context, url string, p *process, ps *processes, every time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := probeClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s %w before %s answered (%v); its log: %s", p.Name, errExited, url, p.err, ps.logPath(p))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 at %s: %w (last: %v); its log: %s", p.Name, url, ctx.Err(), err, ps.logPath(p))
		case <-time.After(every):
		}
	}
}

func (ps *processes) logPath(p *process) string {
	if ps.LogDir == "" {
		return "(none kept)"
	}
	return filepath.Join(ps.LogDir, p.Name+".log")
}
