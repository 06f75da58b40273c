package nginx

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

// writeConf renders m into nginx.conf in a new prefix folder and returns
// the folder.
func writeConf(t *testing.T, m *manifest.Manifest, opts Options) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	require.NoError(t, Render(&b, m, opts))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), b.Bytes(), 0o644))
	return dir
}

// nginxArgs is the command line of the README, for the prefix folder dir.
func nginxArgs(dir string) []string {
	return []string{"-p", dir, "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off; pid nginx.pid;"}
}

// startNginx runs real NGINX on the config of m, listening on a free port
// of 127.0.0.1, and returns its base URL once /healthz answers.
func startNginx(t *testing.T, m *manifest.Manifest) (string, *testenv.Process) {
	t.Helper()
	bin := testenv.Command(t, "nginx")
	port := testenv.FreePort(t)
	dir := writeConf(t, m, Options{Listen: testenv.Addr(port)})
	p := testenv.Start(t, bin, nginxArgs(dir))
	testenv.WaitHTTP(t, testenv.URL(port)+"/healthz", 10*time.Second, p)
	return testenv.URL(port), p
}

// deadSample is the sample manifest with each replica on a port of
// 127.0.0.1 where nothing listens, for what NGINX answers by itself.
func deadSample(t *testing.T) *manifest.Manifest {
	t.Helper()
	m := loadSample(t)
	for i := range m.Shards {
		for j := range m.Shards[i].URLs {
			m.Shards[i].URLs[j] = testenv.URL(testenv.FreePort(t))
		}
	}
	return m
}

func TestNginxAcceptsTheConfig(t *testing.T) {
	bin := testenv.Command(t, "nginx")
	https := deadSample(t)
	https.Shards[2].URLs = []string{"https://127.0.0.1:8443", "https://127.0.0.1"}
	empty := &manifest.Manifest{Shards: []manifest.Shard{{Name: "only", First: 1, Last: 0, Data: "d", URLs: []string{"http://127.0.0.1:9"}}}}
	require.NoError(t, empty.Validate())
	for name, m := range map[string]*manifest.Manifest{"sample": deadSample(t), "https": https, "empty file": empty} {
		t.Run(name, func(t *testing.T) {
			dir := writeConf(t, m, Options{Listen: "127.0.0.1:1"})
			out, err := exec.Command(bin, append([]string{"-t"}, nginxArgs(dir)...)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "test is successful")
		})
	}
}

func TestNginxAnswersItself(t *testing.T) {
	m := deadSample(t)
	base, _ := startNginx(t, m)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/lines/abc", 400},
		{"GET", "/lines/0", 400},
		{"GET", "/lines/-0", 400},
		{"GET", "/lines/000", 400},
		{"GET", "/lines/+5", 400},
		{"GET", "/lines/1.5", 400},
		{"GET", "/lines/5%0A", 400},
		{"GET", "/lines/-1%0A", 400},
		{"GET", "/lines/301%0A", 400},
		{"GET", "/lines/", 400},
		{"GET", "/lines/%20", 400},
		{"GET", "/lines/9223372036854775808", 400},
		{"GET", "/lines/-9223372036854775808", 400},
		{"GET", "/lines/301", 413},
		{"GET", "/lines/-301", 413},
		{"GET", "/lines/0000000000000000000000000301", 413},
		{"GET", "/lines/9223372036854775807", 413},
		{"GET", "/lines/-09223372036854775807", 413},
		{"HEAD", "/lines/abc", 400},
		{"HEAD", "/lines/-301", 413},
		{"GET", "/", 404},
		{"GET", "/lines", 404},
		{"GET", "/lines/1/2", 404},
		{"GET", "/lines/1%2F2", 404},
		{"GET", "/lines//5", 404},
		{"GET", "/lines/./5", 404},
		{"GET", "/foo/../lines/5", 404},
		{"GET", "/lines/%2E%2E/lines/5", 404},
		{"GET", "/lines/%2e/5", 404},
		{"GET", "/lines/..", 404},
		{"GET", "//lines/5", 404},
		{"GET", "/.problems/400", 404},
		{"POST", "/lines/1", 405},
		{"PUT", "/lines/abc", 405},
		{"DELETE", "/healthz", 405},
		{"OPTIONS", "/lines/1", 405},
		{"GET", "/lines/1", 502},
		{"GET", "/lines/-1", 502},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"))
			want := bodyOf(tc.status)
			if tc.status == http.StatusRequestEntityTooLarge {
				// The shard's and the router's body, which names the number.
				want = []byte(goBody(m, strings.TrimPrefix(tc.path, "/lines/")))
			}
			assert.Equal(t, strconv.Itoa(len(want)), resp.Header.Get("Content-Length"))
			if tc.method == "HEAD" {
				assert.Empty(t, body)
			} else {
				assert.Equal(t, string(want), string(body))
			}
			if tc.status == 405 {
				assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
			}
		})
	}

	t.Run("errors of the HTTP parser", func(t *testing.T) {
		for raw, status := range map[string]int{
			"GARBAGE\r\n\r\n":                                                                                400,
			"GET /lines/1 HTTP/1.1\r\n\r\n":                                                                  400, // no Host
			"GET /lines/1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n":                                            400,
			"GET /lines/1 HTTP/2.0\r\nHost: x\r\n\r\n":                                                       505,
			"GET /lines/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n":                            501,
			"GET /lines/" + strings.Repeat("0", 9000) + "1 HTTP/1.1\r\nHost: x\r\n\r\n":                      414,
			"GET /lines/1 HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n":               431,
			"GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("b", 20000): 413,
			// Refused for its method before its body is looked at.
			"POST /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("b", 20000): 405,
			"PUT /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("b", 20000):     405,
		} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			require.NoError(t, err)
			_, err = conn.Write([]byte(raw))
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "%.40q", raw)
			body, _ := io.ReadAll(resp.Body)
			conn.Close()
			assert.Equal(t, status, resp.StatusCode, "%.40q", raw)
			assert.Equal(t, problem.ContentType, resp.Header.Get("Content-Type"), "%.40q", raw)
			want := bodyOf(status)
			switch status {
			case 413:
				want = problem.BodyTooLarge("16 KiB") // not a line beyond the end
			case 400:
				want = problem.BadRequest() // not a bad line number
			}
			assert.Equal(t, string(want), string(body), "%.40q", raw)
		}
	})

	t.Run("healthz", func(t *testing.T) {
		resp, err := http.Get(base + "/healthz")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "ok\n", string(body))
		assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	})

	t.Run("keeps the connection after 400, 404 and 413", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		reused := 0
		for i, path := range []string{"/lines/abc", "/nope", "/lines/301", "/healthz"} {
			trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) {
				if c.Reused {
					reused++
				}
			}}
			req, _ := http.NewRequest("GET", base+path, nil)
			resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
			require.NoError(t, err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, i, reused, "request %d (%s) on a new connection", i, path)
		}
	})
}

// TestNginxRoutesLikeTheManifest checks the map with real NGINX: the
// replicas are ports where nothing listens, so every routed request gets
// 502, and the access log names the shard NGINX chose.
func TestNginxRoutesLikeTheManifest(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	m := randomManifest(r, 1000)
	for i := range m.Shards {
		m.Shards[i].URLs = []string{testenv.URL(testenv.FreePort(t))}
	}
	base, p := startNginx(t, m)
	ins := inputs(m)
	r.Shuffle(len(ins), func(i, j int) { ins[i], ins[j] = ins[j], ins[i] })
	ins = ins[:600]
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	statuses := make([]int, len(ins))
	for i, n := range ins {
		resp, err := client.Get(base + "/lines/" + url.PathEscape(n) + "?i=" + strconv.Itoa(i))
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[i] = resp.StatusCode
	}
	logged := loggedShards(t, p, len(ins))
	for i, n := range ins {
		want := want(m, n)
		switch want {
		case "400", "413":
			assert.Equal(t, want, strconv.Itoa(statuses[i]), "/lines/%s", n)
		default:
			assert.Equal(t, http.StatusBadGateway, statuses[i], "/lines/%s", n)
			assert.Equal(t, want, logged[i], "/lines/%s went to the wrong shard", n)
		}
	}
}

var accessLine = regexp.MustCompile(`"GET /lines/\S*\?i=(\d+) HTTP/1\.1" \d+ \d+ shard=(\S*) `)

// loggedShards reads the shard of each request i from NGINX's access log,
// waiting a little for the last lines. A worker holds its lines in the log
// buffer until its flush timer, which on a busy machine was seen to wait
// longer than 5 s; so after a second it asks NGINX to reopen its logs
// (SIGUSR1), which makes every worker write its buffer first.
func loggedShards(t *testing.T, p *testenv.Process, n int) map[int]string {
	t.Helper()
	shards := map[int]string{}
	start := time.Now()
	reopened := false
	for len(shards) < n && time.Since(start) < 10*time.Second {
		for _, m := range accessLine.FindAllStringSubmatch(p.Output(), -1) {
			i, _ := strconv.Atoi(m[1])
			shards[i] = m[2]
		}
		if len(shards) < n && !reopened && time.Since(start) > time.Second {
			require.NoError(t, p.Signal(syscall.SIGUSR1))
			reopened = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(shards) < n {
		var missing []int
		for i := 0; i < n && len(missing) < 10; i++ {
			if _, ok := shards[i]; !ok {
				missing = append(missing, i)
			}
		}
		var odd []string
		for _, l := range strings.Split(p.Output(), "\n") {
			if strings.Contains(l, "?i=") && !accessLine.MatchString(l) && len(odd) < 10 {
				odd = append(odd, l)
			}
		}
		require.Failf(t, "access log lines", "%d of %d logged; first missing %v; lines that do not parse:\n%s", len(shards), n, missing, strings.Join(odd, "\n"))
	}
	return shards
}

// get fetches path and returns the status and body.
func get(t *testing.T, client *http.Client, base, path string, header ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body, resp.Header
}

func TestNginxProblemBodiesHaveNoDollar(t *testing.T) {
	for _, p := range errorPages {
		_, err := problemBody(p.Status)
		assert.NoError(t, err)
	}
	_, err := quoteSingle("costs $5")
	assert.Error(t, err)
	got, err := quoteSingle("it's a \\ and\n")
	require.NoError(t, err)
	assert.Equal(t, `it\'s a \\ and\n`, got)
}

// shardProc is one real shard process, cmd/lineserver, serving lines first
// to last of the whole file at path.
type shardProc struct {
	bin, path   string
	first, last int64
	total       int
	port        int
	p           *testenv.Process
}

func (s *shardProc) start(t *testing.T) {
	t.Helper()
	s.p = testenv.Start(t, s.bin, nil,
		"FILE_REPOSITORY_FILE_PATH="+s.path,
		"INDEX_FILE_PATH="+s.path+"_index.txt",
		"INDEX_FIRST_LINE_NUMBER="+strconv.FormatInt(s.first, 10),
		"INDEX_LAST_LINE_NUMBER="+strconv.FormatInt(s.last, 10),
		"FILE_TOTAL_LINES="+strconv.Itoa(s.total),
		"PORT="+strconv.Itoa(s.port))
	testenv.WaitHTTP(t, testenv.URL(s.port)+"/readyz", 20*time.Second, s.p)
}

// TestNginxServesManyEntriesFromOneShard puts real NGINX in front of one
// whole-file shard that serves every entry of a 7-shard manifest: the
// entries share one upstream, and each line is still routed by its own
// entry (the access log's shard) and read byte for byte.
func TestNginxServesManyEntriesFromOneShard(t *testing.T) {
	testenv.Command(t, "nginx")
	bin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	data := testenv.Varied(2000)
	path := testenv.WriteIndexed(t, t.TempDir(), "varied.txt", data)
	lines := testenv.Lines(data)
	total := len(lines)
	whole := &shardProc{bin: bin, path: path, first: 1, last: int64(total), total: total, port: testenv.FreePort(t)}
	whole.start(t)

	m := &manifest.Manifest{TotalLines: int64(total)}
	first := int64(1)
	for i := 1; i <= 7; i++ {
		last := int64(total * i / 7)
		u := testenv.URL(whole.port)
		if i == 4 {
			u += "/" // the same server
		}
		m.Shards = append(m.Shards, manifest.Shard{Name: "part-" + strconv.Itoa(i), First: first, Last: last, Data: path, URLs: []string{u}})
		first = last + 1
	}
	require.NoError(t, m.Validate())
	assert.Len(t, upstreamBlock.FindAllString(render(t, m, Options{}), -1), 1, "one upstream for the one shard")

	base, p := startNginx(t, m)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	var ns []int64
	for _, s := range m.Shards {
		ns = append(ns, s.First, (s.First+s.Last)/2, s.Last)
	}
	for i, n := range ns {
		status, body, _ := get(t, client, base, "/lines/"+strconv.FormatInt(n, 10)+"?i="+strconv.Itoa(i))
		require.Equal(t, 200, status, "line %d", n)
		require.Equal(t, string(lines[n-1]), string(body), "line %d", n)
	}
	logged := loggedShards(t, p, len(ns))
	for i, n := range ns {
		assert.Equal(t, want(m, strconv.FormatInt(n, 10)), logged[i], "line %d went through the wrong location", n)
	}
}

// TestNginxServesRealShards puts real NGINX in front of three real shard
// processes over a 20,000-line file (UTF-8, empty lines, CRs) and reads
// every line through it, byte for byte; then it kills a shard and starts
// it again, and kills one of two replicas under load.
func TestNginxServesRealShards(t *testing.T) {
	testenv.Command(t, "nginx")
	bin := testenv.Build(t, "github.com/lineserver/lineserver/cmd/lineserver")
	data := testenv.Varied(20000)
	path := testenv.WriteIndexed(t, t.TempDir(), "varied.txt", data)
	lines := testenv.Lines(data)
	total := len(lines)
	require.Equal(t, 20000, total)

	ranges := [][2]int64{{1, 6000}, {6001, 13000}, {13001, 20000}}
	m := &manifest.Manifest{TotalLines: int64(total)}
	var shards []*shardProc
	for i, rg := range ranges {
		s := &shardProc{bin: bin, path: path, first: rg[0], last: rg[1], total: total, port: testenv.FreePort(t)}
		s.start(t)
		shards = append(shards, s)
		m.Shards = append(m.Shards, manifest.Shard{
			Name: "shard-" + strconv.Itoa(i+1), First: rg[0], Last: rg[1],
			Data: path, URLs: []string{testenv.URL(s.port)},
		})
	}
	// The third shard has a second replica.
	replica := &shardProc{bin: bin, path: path, first: ranges[2][0], last: ranges[2][1], total: total, port: testenv.FreePort(t)}
	replica.start(t)
	m.Shards[2].URLs = append(m.Shards[2].URLs, testenv.URL(replica.port))
	require.NoError(t, m.Validate())
	base, _ := startNginx(t, m)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 5 * time.Second}

	t.Run("every line", func(t *testing.T) {
		const workers = 4
		errs := make(chan string, workers)
		for w := range workers {
			go func() {
				for n := w + 1; n <= total; n += workers {
					resp, err := client.Get(base + "/lines/" + strconv.Itoa(n))
					if err != nil {
						errs <- err.Error()
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, lines[n-1]) {
						errs <- "line " + strconv.Itoa(n) + ": " + resp.Status + " " + strconv.Quote(string(body))
						return
					}
				}
				errs <- ""
			}()
		}
		for range workers {
			if e := <-errs; e != "" {
				t.Error(e)
			}
		}
	})

	t.Run("negative, leading zeros, across shards", func(t *testing.T) {
		for _, n := range []int{1, 2, 5999, 6000, 6001, 7000, 12999, 13000, 13001, 14000, 19999, 20000} {
			status, body, _ := get(t, client, base, "/lines/-"+strconv.Itoa(n))
			assert.Equal(t, 200, status, "-%d", n)
			assert.Equal(t, string(lines[total-n]), string(body), "-%d", n)
			status, body, _ = get(t, client, base, "/lines/000"+strconv.Itoa(n))
			assert.Equal(t, 200, status, "000%d", n)
			assert.Equal(t, string(lines[n-1]), string(body), "000%d", n)
			status, body, _ = get(t, client, base, "/lines/-0"+strconv.Itoa(n))
			assert.Equal(t, 200, status, "-0%d", n)
			assert.Equal(t, string(lines[total-n]), string(body), "-0%d", n)
		}
		for path, want := range map[string]int{"/lines/0": 400, "/lines/x": 400} {
			status, body, _ := get(t, client, base, path)
			assert.Equal(t, want, status, path)
			assert.Equal(t, string(bodyOf(want)), string(body), path)
		}
	})

	// A number beyond the end is answered by NGINX itself, with the body a
	// shard answers the same request with, byte for byte.
	t.Run("413 as the shard answers it", func(t *testing.T) {
		shard := testenv.URL(shards[0].port)
		for _, n := range []string{"20001", "-20001", "000020001", "-0020001", "99999999", "9223372036854775807", "-09223372036854775807"} {
			status, body, h := get(t, client, base, "/lines/"+n)
			wantStatus, wantBody, wantH := get(t, client, shard, "/lines/"+n)
			assert.Equal(t, http.StatusRequestEntityTooLarge, wantStatus, n)
			assert.Equal(t, wantStatus, status, n)
			assert.Equal(t, string(wantBody), string(body), n)
			for _, k := range []string{"Content-Type", "Content-Length", "X-Content-Type-Options"} {
				assert.Equal(t, wantH.Get(k), h.Get(k), "%s: %s", n, k)
			}
		}
	})

	t.Run("headers pass through", func(t *testing.T) {
		status, body, h := get(t, client, base, "/lines/7", "Accept", "application/json")
		assert.Equal(t, 200, status)
		assert.Contains(t, h.Get("Content-Type"), "application/json")
		assert.Contains(t, string(body), `"number":7`)
		status, _, h = get(t, client, base, "/lines/7")
		require.Equal(t, 200, status)
		etag := h.Get("ETag")
		require.NotEmpty(t, etag)
		status, _, _ = get(t, client, base, "/lines/7", "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, status)
		resp, err := client.Head(base + "/lines/-1")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, strconv.Itoa(len(lines[total-1])), resp.Header.Get("Content-Length"))
	})

	t.Run("ranges", func(t *testing.T) {
		testRanges(t, client, base, lines, shards)
	})

	t.Run("a dead shard fails fast and comes back", func(t *testing.T) {
		dead := shards[1]
		dead.p.Kill()
		start := time.Now()
		status, body, _ := get(t, client, base, "/lines/7000")
		assert.Less(t, time.Since(start), time.Second)
		assert.Equal(t, http.StatusBadGateway, status)
		assert.Equal(t, string(problem.Body(http.StatusBadGateway, "")), string(body))
		for _, n := range []string{"1", "-1", "20000"} {
			status, _, _ := get(t, client, base, "/lines/"+n)
			assert.Equal(t, 200, status, "line %s of a live shard", n)
		}

		dead.start(t)
		deadline := time.Now().Add(2 * time.Second)
		for {
			status, body, _ = get(t, client, base, "/lines/7000")
			if status == 200 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		assert.Equal(t, 200, status, "within 2 s of the restart")
		assert.Equal(t, string(lines[6999]), string(body))
	})

	t.Run("killing one of two replicas under load loses no request", func(t *testing.T) {
		const workers = 4
		stop := time.Now().Add(1500 * time.Millisecond)
		failures := make(chan []string, workers)
		for w := range workers {
			go func() {
				var failed []string
				for i := w; time.Now().Before(stop); i += workers {
					n := ranges[2][0] + int64(i)%(ranges[2][1]-ranges[2][0]+1)
					resp, err := client.Get(base + "/lines/" + strconv.FormatInt(n, 10))
					if err != nil {
						failed = append(failed, err.Error())
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !bytes.Equal(body, lines[n-1]) {
						failed = append(failed, strconv.FormatInt(n, 10)+": "+resp.Status)
					}
				}
				failures <- failed
			}()
		}
		time.Sleep(300 * time.Millisecond)
		replica.p.Kill()
		for range workers {
			assert.Empty(t, <-failures)
		}
	})
}

// nextLink reads the target of a Link header's rel="next".
var nextLink = regexp.MustCompile(`^<(/lines/[^>]+)>; rel="next"$`)

// follow gets a range through base as a client of NGINX does: it follows
// the next links and returns the bodies joined and the links it followed.
func follow(t *testing.T, client *http.Client, base, path string, header ...string) ([]byte, []string) {
	t.Helper()
	var body []byte
	var links []string
	for path != "" {
		status, b, h := get(t, client, base, path, header...)
		require.Equal(t, http.StatusOK, status, "%s: %s", path, b)
		if h.Get("Content-Type") == "text/plain; charset=utf-8" {
			require.Equal(t, strconv.Itoa(len(b)), h.Get("Content-Length"), path)
		}
		body = append(body, b...)
		path = ""
		if l := h.Get("Link"); l != "" {
			links = append(links, l)
			g := nextLink.FindStringSubmatch(l)
			require.NotNil(t, g, "Link: %s", l)
			path = g[1]
		}
		require.Less(t, len(links), 10, "a loop of links")
	}
	return body, links
}

// testRanges reads ranges of lines through NGINX in front of the shards
// of TestNginxServesRealShards (lines 1-6000, 6001-13000, 13001-20000),
// byte for byte against the file.
func testRanges(t *testing.T, client *http.Client, base string, lines [][]byte, shards []*shardProc) {
	total := int64(len(lines))
	span := func(a, b int64) string { return string(bytes.Join(lines[a-1:b], nil)) }
	link := func(a, b int64) string { return fmt.Sprintf(`</lines/%d..%d>; rel="next"`, a, b) }

	t.Run("within a shard, one answer", func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, s := range shards {
			for range 10 {
				a := s.first + r.Int64N(s.last-s.first+1)
				b := a + r.Int64N(s.last-a+1)
				path := fmt.Sprintf("/lines/%d..%d", a, b)
				status, body, h := get(t, client, base, path)
				require.Equal(t, http.StatusOK, status, path)
				assert.Equal(t, span(a, b), string(body), path)
				assert.Empty(t, h.Get("Link"), path)
				assert.Equal(t, strconv.Itoa(len(body)), h.Get("Content-Length"), path)
			}
		}
	})

	t.Run("across shards by the next links", func(t *testing.T) {
		for _, tc := range []struct {
			path  string
			a, b  int64
			links []string
		}{
			{"/lines/5990..6010", 5990, 6010, []string{link(6001, 6010)}},
			{"/lines/5000..14000", 5000, 14000, []string{link(6001, 14000), link(13001, 14000)}},
			{"/lines/1..-1", 1, total, []string{link(6001, total), link(13001, total)}},
			{"/lines/1..20000", 1, total, []string{link(6001, total), link(13001, total)}},
			{"/lines/-100..-1", total - 99, total, nil},
			{"/lines/-14001..-5", 6000, total - 4, []string{link(6001, total-4), link(13001, total-4)}},
			{"/lines/-20000..6000", 1, 6000, nil},
			{"/lines/6000..6000", 6000, 6000, nil},
			{"/lines/6000..6001", 6000, 6001, []string{link(6001, 6001)}},
			{"/lines/6001..13000", 6001, 13000, nil},
			{"/lines/1..6000", 1, 6000, nil},
			{"/lines/12999..13001", 12999, 13001, []string{link(13001, 13001)}},
			{"/lines/13001..13001", 13001, 13001, nil},
			{"/lines/20000..20000", 20000, 20000, nil},
			{"/lines/-1..-1", 20000, 20000, nil},
			{"/lines/0006000..-07000", 6000, 13001, []string{link(6001, 13001), link(13001, 13001)}},
		} {
			body, links := follow(t, client, base, tc.path)
			assert.Equal(t, span(tc.a, tc.b), string(body), tc.path)
			assert.Equal(t, tc.links, links, tc.path)
		}
	})

	t.Run("HEAD, ETag, 304 and NDJSON pass through", func(t *testing.T) {
		resp, err := client.Head(base + "/lines/5990..6010")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, strconv.Itoa(len(span(5990, 6000))), resp.Header.Get("Content-Length"))
		assert.Equal(t, link(6001, 6010), resp.Header.Get("Link"))

		status, _, h := get(t, client, base, "/lines/5990..6010")
		require.Equal(t, http.StatusOK, status)
		etag := h.Get("ETag")
		require.NotEmpty(t, etag)
		status, body, h := get(t, client, base, "/lines/5990..6010", "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, status)
		assert.Empty(t, body)
		assert.Equal(t, link(6001, 6010), h.Get("Link"))

		// NDJSON has no Content-Length: chunked through NGINX.
		nd, links := follow(t, client, base, "/lines/5999..6002", "Accept", "application/x-ndjson")
		assert.Equal(t, []string{link(6001, 6002)}, links)
		var numbers []int64
		for _, l := range strings.Split(strings.TrimSuffix(string(nd), "\n"), "\n") {
			var v struct {
				Number int64  `json:"number"`
				Line   string `json:"line"`
			}
			require.NoError(t, json.Unmarshal([]byte(l), &v), l)
			numbers = append(numbers, v.Number)
		}
		assert.Equal(t, []int64{5999, 6000, 6001, 6002}, numbers)
	})

	t.Run("4xx", func(t *testing.T) {
		// NGINX's own answers, as for single lines.
		for path, status := range map[string]int{
			"/lines/0..5": 400, "/lines/-0..5": 400, "/lines/..5": 400, "/lines/5..": 400,
			"/lines/1...5": 400, "/lines/1..x": 400, "/lines/1..0": 400, "/lines/x..1": 400,
			"/lines/1..2..3": 400, "/lines/1..9223372036854775808": 400, "/lines/20001..x": 400,
			"/lines/...": 400, "/lines/..": 404, "/lines/1../5": 404,
		} {
			got, body, _ := get(t, client, base, path)
			assert.Equal(t, status, got, path)
			assert.Equal(t, string(bodyOf(status)), string(body), path)
		}
		// A start beyond the end: NGINX's 413, and the end checked by a's
		// shard; either is the shard's own answer, byte for byte.
		for path, status := range map[string]int{
			"/lines/20001..20005": 413, "/lines/-20001..-1": 413, "/lines/0020001..5": 413,
			"/lines/9223372036854775807..1": 413, "/lines/5..20001": 413, "/lines/1..-20001": 413,
			"/lines/10..5": 400, "/lines/-1..1": 400, "/lines/7000..6999": 400,
		} {
			// Any shard answers a start beyond the end alike; a line, its
			// shard.
			direct := testenv.URL(shards[0].port)
			a, _, err := lineno.ParseRange(strings.TrimPrefix(path, "/lines/"))
			require.NoError(t, err)
			if line, err := lineno.Resolve(a, total); err == nil {
				for _, s := range shards {
					if line >= s.first && line <= s.last {
						direct = testenv.URL(s.port)
					}
				}
			}
			got, body, h := get(t, client, base, path)
			wantStatus, wantBody, wantH := get(t, client, direct, path)
			assert.Equal(t, status, wantStatus, path)
			assert.Equal(t, wantStatus, got, path)
			assert.Equal(t, string(wantBody), string(body), path)
			assert.Equal(t, wantH.Get("Content-Type"), h.Get("Content-Type"), path)
			assert.Empty(t, h.Get("Link"), path)
		}
	})
}

// slowReader stands for a log collector that falls behind: it takes each
// chunk of NGINX's output after a pause, so the pipe between them fills.
type slowReader struct{ testenv.Buffer }

func (s *slowReader) Write(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	return s.Buffer.Write(p)
}

var (
	wholeAccessLine = regexp.MustCompile(`^127\.0\.0\.1 \[[^]]+\] "GET \S+ HTTP/1\.1" \d+ \d+ shard=\S* upstream=\S+ upstream_status=\S+ request_time=[\d.]+ upstream_time=\S+$`)
	errorLine       = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: `)
)

// TestNginxLogLinesStayWholeBehindASlowReader: every worker writes its
// access log and error log to one pipe (a container's standard output and
// error are pipes too). A write of more than PIPE_BUF (4 KiB) to a pipe
// that is full is split, and another worker's line lands inside it; a
// buffer of 64k did that on a busy machine. The access log's buffer of 4k
// keeps each write whole.
func TestNginxLogLinesStayWholeBehindASlowReader(t *testing.T) {
	bin := testenv.Command(t, "nginx")
	port := testenv.FreePort(t)
	dir := writeConf(t, deadSample(t), Options{Listen: testenv.Addr(port)})
	out := &slowReader{}
	cmd := exec.Command(bin, nginxArgs(dir)...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	base := testenv.URL(port)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)

	// Each request writes an access line and an error line (its shard is
	// down), from whichever worker took its connection.
	const clients, each = 16, 200
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			for i := range each {
				resp, err := client.Get(fmt.Sprintf("%s/lines/%d?i=%d", base, 1+i%10, c*each+i))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- nil
		}()
	}
	for range clients {
		require.NoError(t, <-errs)
	}
	// A graceful stop writes what the buffers hold.
	client.CloseIdleConnections()
	require.NoError(t, cmd.Process.Signal(syscall.SIGQUIT))
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("nginx did not stop within a minute of SIGQUIT")
	}
	done <- nil

	accessLines := 0
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		switch {
		case wholeAccessLine.MatchString(l):
			if strings.Contains(l, "?i=") {
				accessLines++
			}
		case strings.HasPrefix(l, "127.0.0.1 ["), !errorLine.MatchString(l):
			t.Errorf("a torn log line: %q", l)
		}
	}
	assert.Equal(t, clients*each, accessLines, "whole access lines")
}
