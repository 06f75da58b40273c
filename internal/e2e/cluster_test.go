package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/testenv"
	"github.com/lineserver/lineserver/nginx"
)

// The binaries under test, built once by TestMain.
var lineserverBin, routerBin, linesBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lineserver-e2e")
	if err != nil {
		panic(err)
	}
	lineserverBin = filepath.Join(dir, "lineserver")
	routerBin = filepath.Join(dir, "router")
	linesBin = filepath.Join(dir, "lines")
	for bin, pkg := range map[string]string{
		lineserverBin: "github.com/lineserver/lineserver/cmd/lineserver",
		routerBin:     "github.com/lineserver/lineserver/cmd/router",
		linesBin:      "github.com/lineserver/lineserver/cmd/lines",
	} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one shard process and the port it listens on, which a
// restart keeps.
type replica struct {
	shard       manifest.Shard
	data, index string
	port        int
	proc        *testenv.Process
}

// cluster is the set under test: shard replicas, NGINX and the router, all
// on 127.0.0.1, over one data file cut into shards.
type cluster struct {
	// t is the test that owns the processes: one restarted in a subtest
	// lives on after it.
	t        *testing.T
	dir      string
	data     string
	lines    [][]byte
	total    int64
	manifest *manifest.Manifest
	replicas map[string][]*replica // by shard name
	router   string                // base URL
	nginx    string                // base URL
	nginxP   *testenv.Process
	client   *http.Client
}

// startCluster cuts data into shards with `lines shard`; replicas gives
// each shard's number of replicas. Each replica serves its shard's slice
// with the slice's index, as the manifest says.
func startCluster(t *testing.T, data []byte, replicas []int) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), lines: testenv.Lines(data), replicas: make(map[string][]*replica)}
	c.data = filepath.Join(c.dir, "data.txt")
	require.NoError(t, os.WriteFile(c.data, data, 0o644))
	c.total = int64(len(c.lines))
	out, err := exec.Command(linesBin, "shard", c.data, "--shards", strconv.Itoa(len(replicas)), "--out", filepath.Join(c.dir, "shards")).CombinedOutput()
	require.NoError(t, err, "lines shard: %s", out)
	c.manifest, err = manifest.Load(filepath.Join(c.dir, "shards", "manifest.json"))
	require.NoError(t, err)
	require.Equal(t, c.total, c.manifest.TotalLines)
	require.Len(t, c.manifest.Shards, len(replicas))
	for i := range c.manifest.Shards {
		s := &c.manifest.Shards[i]
		s.URLs = nil
		for range replicas[i] {
			r := &replica{port: testenv.FreePort(t), data: c.manifest.DataPath(i), index: c.manifest.IndexPath(i)}
			s.URLs = append(s.URLs, testenv.URL(r.port))
			c.replicas[s.Name] = append(c.replicas[s.Name], r)
		}
		for _, r := range c.replicas[s.Name] {
			r.shard = *s
		}
	}
	require.NoError(t, c.manifest.Validate())
	for _, rs := range c.replicas {
		for _, r := range rs {
			c.start(r)
		}
	}
	for _, rs := range c.replicas {
		for _, r := range rs {
			c.waitReady(t, r)
		}
	}

	manifestPath := filepath.Join(c.dir, "shards", "manifest.json")
	var buf bytes.Buffer
	require.NoError(t, c.manifest.Write(&buf))
	require.NoError(t, os.WriteFile(manifestPath, buf.Bytes(), 0o644))

	routerPort := testenv.FreePort(t)
	rp := testenv.Start(t, routerBin, []string{"--manifest", manifestPath, "--listen", testenv.Addr(routerPort)}, "LOG_FORMAT=json")
	c.router = testenv.URL(routerPort)

	nginxPath := testenv.Command(t, "nginx")
	nginxDir := filepath.Join(c.dir, "nginx")
	require.NoError(t, os.MkdirAll(nginxDir, 0o755))
	nginxPort := testenv.FreePort(t)
	buf.Reset()
	require.NoError(t, nginx.Render(&buf, c.manifest, nginx.Options{Listen: testenv.Addr(nginxPort)}))
	require.NoError(t, os.WriteFile(filepath.Join(nginxDir, "nginx.conf"), buf.Bytes(), 0o644))
	np := testenv.Start(t, nginxPath, []string{"-p", nginxDir, "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off; pid nginx.pid;"})
	c.nginx = testenv.URL(nginxPort)
	c.nginxP = np

	testenv.WaitHTTP(t, c.router+"/readyz", patience, rp)
	testenv.WaitHTTP(t, c.nginx+"/healthz", patience, np)
	c.client = &http.Client{
		Timeout: patience,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
		},
	}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// start starts r's shard process on its port, for the rest of c's test.
func (c *cluster) start(r *replica) {
	c.t.Helper()
	r.proc = testenv.Start(c.t, lineserverBin, nil,
		"FILE_REPOSITORY_FILE_PATH="+r.data,
		"INDEX_FILE_PATH="+r.index,
		"INDEX_FIRST_LINE_NUMBER="+strconv.FormatInt(r.shard.First, 10),
		"INDEX_LAST_LINE_NUMBER="+strconv.FormatInt(r.shard.Last, 10),
		"FILE_TOTAL_LINES="+strconv.FormatInt(c.total, 10),
		"PORT="+strconv.Itoa(r.port),
		"LOG_FORMAT=json",
	)
}

func (c *cluster) waitReady(t *testing.T, r *replica) {
	t.Helper()
	testenv.WaitHTTP(t, testenv.URL(r.port)+"/readyz", patience, r.proc)
}

// doors are the two front doors by name.
func (c *cluster) doors() []door {
	return []door{{"router", c.router}, {"nginx", c.nginx}}
}

type door struct{ name, url string }

// answer is what a front door said.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
	took   time.Duration
}

func (c *cluster) get(ctx context.Context, url string, header ...string) answer {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{err: err}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: body, err: err, took: time.Since(start)}
}

// line is line n (1-based, positive) as the file holds it.
func (c *cluster) line(n int64) []byte { return c.lines[n-1] }

// check reports how a's answer for line n differs from the file, or "".
func (c *cluster) check(a answer, n int64) string {
	switch {
	case a.err != nil:
		return a.err.Error()
	case a.status != http.StatusOK:
		return fmt.Sprintf("status %d: %.200s", a.status, a.body)
	case !bytes.Equal(a.body, c.line(n)):
		return fmt.Sprintf("body %q, want %q", a.body, c.line(n))
	}
	return ""
}

// report prints a measured figure to the test log and to standard output,
// where CI shows it even when the test passes.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log(msg)
	testenv.Figure("e2e", strings.TrimSpace(msg))
}
