package reliability

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/testenv"
)

// codes is the status each door answers: the shard itself, the Go router,
// NGINX.
type codes struct{ shard, router, nginx int }

func all(c int) codes { return codes{c, c, c} }

// want is one expected answer: its status at each door and, for a 200, the
// line whose bytes the body must be (0: no body check; -1: an empty body).
type want struct {
	codes
	line int
}

func ok(line int) want { return want{all(200), line} }

// hostile is a raw request (or several, pipelined) and what each door must
// answer. "{trap}" in raw becomes the address of a listener that no door
// may ever connect to.
type hostile struct {
	name    string
	raw     string
	methods []string // of each answer, for reading HEAD answers; nil is GET
	want    []want
	// parser is set when the HTTP parser rejects the request before any
	// handler sees it: Go's servers then answer a text/plain body of their
	// own, not problem+json.
	parser bool
	// http09 marks a request without a version: NGINX answers it as HTTP/0.9,
	// with the body alone.
	http09 bool
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: lines.test\r\n\r\n" }

func one(name, raw string, w want) hostile { return hostile{name: name, raw: raw, want: []want{w}} }

func status(name, path string, c codes) hostile { return one(name, get(path), want{codes: c}) }

func rejected(name, raw string, c codes) hostile {
	return hostile{name: name, raw: raw, want: []want{{codes: c}}, parser: true}
}

func hostileRequests() []hostile {
	smuggled := get("/lines/3")
	long := strings.Repeat("1", 64<<10)
	zeros := strings.Repeat("0", 64<<10) + "1"
	var pipelined strings.Builder
	var inOrder []want
	for i := 1; i <= 100; i++ {
		pipelined.WriteString(get("/lines/" + strconv.Itoa(i)))
		inOrder = append(inOrder, ok(i))
	}
	return []hostile{
		one("plain line", get("/lines/1"), ok(1)),
		{name: "HEAD", raw: "HEAD /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", methods: []string{"HEAD"}, want: []want{{all(200), -1}}},
		status("20-digit number", "/lines/123456789012345678901234567890", all(400)),
		status("max int64", "/lines/9223372036854775807", all(413)),
		status("min int64", "/lines/-9223372036854775808", all(400)),
		status("plus sign", "/lines/+1", all(400)),
		status("two minus signs", "/lines/--1", all(400)),
		status("zero", "/lines/0", all(400)),
		status("hex", "/lines/0x10", all(400)),
		status("exponent", "/lines/1e3", all(400)),
		status("fullwidth digit", "/lines/%EF%BC%91", all(400)),
		status("encoded space", "/lines/%201", all(400)),
		rejected("raw space in target", "GET /lines/ 1 HTTP/1.1\r\nHost: x\r\n\r\n", all(400)),
		status("encoded slash", "/lines/1%2F2", all(404)),
		status("encoded NUL", "/lines/1%00", codes{400, 400, 400}),
		one("encoded digit %31", get("/lines/%31"), ok(1)),
		one("encoded minus %2D1", get("/lines/%2D1"), want{codes{421, 200, 200}, totalLines}),
		rejected("raw NUL in target", "GET /lines/1\x00 HTTP/1.1\r\nHost: x\r\n\r\n", all(400)),
		rejected("NUL in a header", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", all(400)),
		status("semicolon", "/lines/1;a", all(400)),
		status("trailing slash", "/lines/1/", all(404)),
		one("query string", get("/lines/1?x=../../etc/passwd"), ok(1)),
		status("dot segments", "/lines/../../../etc/passwd", codes{307, 404, 400}),
		status("encoded dot segments", "/lines/..%2F..%2Fetc%2Fpasswd", codes{404, 404, 400}),
		{name: "64 KiB number", raw: get("/lines/" + long), want: []want{{codes: codes{400, 400, 414}}}},
		{name: "64 KiB of leading zeros", raw: get("/lines/" + zeros), want: []want{{codes{200, 200, 414}, 1}}},
		rejected("2 MiB header", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 2<<20)+"\r\n\r\n", codes{431, 431, 431}),
		{name: "64 KiB header", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", want: []want{{codes{200, 200, 431}, 1}}, parser: true},
		{name: "128 KiB header", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 128<<10) + "\r\n\r\n", want: []want{{codes{200, 431, 431}, 1}}, parser: true},
		{name: "10,000 headers", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: abcdefgh\r\n", 10000) + "\r\n", want: []want{{codes{200, 431, 431}, 1}}, parser: true},
		{name: "body on GET hiding a request", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled + get("/lines/2"), want: []want{ok(1), ok(2)}},
		{name: "chunked body on GET hiding a request", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled) + get("/lines/2"), want: []want{ok(1), ok(2)}},
		{name: "1 MiB body on GET", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("b", 1<<20), want: []want{{codes{200, 200, 413}, 1}}},
		{name: "Content-Length and chunked", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, want: []want{{codes{200, 400, 400}, 1}}, parser: true},
		rejected("two Content-Lengths", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", all(400)),
		rejected("negative Content-Length", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", all(400)),
		one("unknown method", "FOO /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", want{codes: all(405)}),
		one("lower-case get", "get /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", want{codes: codes{405, 405, 400}}),
		rejected("method with a parenthesis", "G(T /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", all(400)),
		one("64 KiB method", strings.Repeat("A", 64<<10)+" /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", want{codes: codes{405, 405, 414}}),
		one("DELETE", "DELETE /lines/1 HTTP/1.1\r\nHost: x\r\n\r\n", want{codes: all(405)}),
		one("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", want{codes: codes{200, 200, 400}}),
		one("HTTP/1.0 without Host", "GET /lines/1 HTTP/1.0\r\n\r\n", ok(1)),
		rejected("HTTP/1.1 without Host", "GET /lines/1 HTTP/1.1\r\n\r\n", all(400)),
		{name: "HTTP/0.9", raw: "GET /lines/1\r\n", want: []want{{all(400), 1}}, parser: true, http09: true},
		rejected("HTTP/2.0 in the request line", "GET /lines/1 HTTP/2.0\r\nHost: x\r\n\r\n", all(505)),
		{name: "folded header", raw: "GET /lines/1 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", want: []want{{codes{200, 200, 400}, 1}}, parser: true},
		rejected("space before colon", "GET /lines/1 HTTP/1.1\r\nHost : x\r\n\r\n", all(400)),
		rejected("TLS hello on the plain port", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"+strings.Repeat("\x00", 32)+"\r\n\r\n", all(400)),
		one("Range", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n", ok(1)),
		one("Expect 100-continue", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", ok(1)),
		one("odd Accept", "GET /lines/1 HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=NaN, application/json;q=1e999, */*;q=-1\r\n\r\n", ok(1)),
		one("absolute-form target", "GET http://{trap}/lines/1 HTTP/1.1\r\nHost: {trap}\r\n\r\n", ok(1)),
		one("Host of another server", "GET /lines/1 HTTP/1.1\r\nHost: {trap}\r\nX-Forwarded-Host: {trap}\r\n\r\n", ok(1)),
		rejected("CONNECT", "CONNECT {trap} HTTP/1.1\r\nHost: {trap}\r\n\r\n", codes{404, 404, 400}),
		{name: "pipelined mixed", raw: get("/lines/1") + "HEAD /lines/2 HTTP/1.1\r\nHost: x\r\n\r\n" + get("/lines/abc") + get("/lines/1%2F") + get("/lines/3"),
			methods: []string{"GET", "HEAD", "GET"},
			want:    []want{ok(1), {all(200), -1}, {codes: all(400)}, {codes: all(404)}, ok(3)}},
		{name: "100 pipelined", raw: pipelined.String(), want: inOrder},
	}
}

// door is one of the three servers a client can reach.
type door struct {
	name  string
	index int // into codes: 0 shard, 1 router, 2 nginx
	start func(t *testing.T) *server
}

func (c codes) at(i int) int { return [3]int{c.shard, c.router, c.nginx}[i] }

// TestHostileRequests sends each request of the table, as raw bytes on its
// own connection, to a shard, the router and NGINX, and checks that each
// answers its documented status within ioTimeout, that every 200 is the
// right line, that no request makes a door connect anywhere but the
// manifest's shards, and that each door still answers /healthz afterwards.
func TestHostileRequests(t *testing.T) {
	f := newFixture(t)
	a := startShard(t, f, 1, firstOfB-1)
	b := startShard(t, f, firstOfB, totalLines)
	manifest := writeManifest(t, f, a, b)

	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	var trapped atomic.Int64
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			trapped.Add(1)
			c.Close()
		}
	}()

	cases := hostileRequests()
	var mu sync.Mutex
	table := make([][3]string, len(cases))
	for _, d := range []door{
		{"shard", 0, func(*testing.T) *server { return a }},
		{"router", 1, func(t *testing.T) *server { return startRouter(t, manifest) }},
		{"nginx", 2, func(t *testing.T) *server { return startNginx(t, manifest) }},
	} {
		t.Run(d.name, func(t *testing.T) {
			for i := range table {
				table[i][d.index] = "skip"
			}
			s := d.start(t)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					cell := check(t, f, s, d, tc, trap.Addr().String())
					mu.Lock()
					table[i][d.index] = cell
					mu.Unlock()
				})
			}
			s.alive(t)
			if n := trapped.Load(); n > 0 {
				t.Errorf("%s connected %d times to the address a request named", d.name, n)
			}
		})
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%-40s %-10s %-10s %-10s\n", "hostile request", "shard", "router", "nginx")
	for i, tc := range cases {
		fmt.Fprintf(&out, "%-40s %-10s %-10s %-10s\n", tc.name, table[i][0], table[i][1], table[i][2])
	}
	t.Logf("answers (pj: problem+json body; txt: the HTTP parser's own body):\n%s", out.String())
	testenv.Figure("reliability", "hostile requests, what each door answered (pj: problem+json; txt: the parser's own text):")
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		testenv.Figure("reliability", "  "+l)
	}
	report(t, "%d hostile requests per door; trap connections: %d", len(cases), trapped.Load())
}

// check sends tc to s and checks every answer; it returns the table cell.
func check(t *testing.T, f *fixture, s *server, d door, tc hostile, trap string) string {
	raw := strings.ReplaceAll(tc.raw, "{trap}", trap)
	methods := tc.methods
	if methods == nil {
		methods = []string{"GET"}
	}
	answers := exchange(s.addr, raw, len(tc.want), methods...)
	if tc.http09 && d.name == "nginx" {
		return check09(t, f, s, raw, tc.want[0].line)
	}
	var cells []string
	for i, w := range tc.want {
		a, code := answers[i], w.codes.at(d.index)
		switch {
		case timedOut(a.err):
			t.Errorf("answer %d: no answer within %v: the server hangs", i+1, ioTimeout)
			return "HANG"
		case a.err != nil:
			t.Errorf("answer %d: %v", i+1, a.err)
			return "ERR"
		}
		if a.status != code {
			t.Errorf("answer %d: status %d, want %d; body %.200q", i+1, a.status, code, a.body)
		}
		if a.status == http.StatusInternalServerError {
			t.Errorf("answer %d: a 500", i+1)
		}
		if strings.Contains(string(a.body), "root:") {
			t.Errorf("answer %d: the body shows a system file", i+1)
		}
		kind := ""
		switch {
		case a.status == http.StatusOK && w.line > 0:
			if string(a.body) != string(f.line(w.line)) {
				t.Errorf("answer %d: body %.100q, want line %d %.100q", i+1, a.body, w.line, f.line(w.line))
			}
		case a.status == http.StatusOK && w.line < 0 && len(a.body) > 0:
			t.Errorf("answer %d: a body of %d bytes, want none", i+1, len(a.body))
		case a.status >= 400 && a.ctype == problem.ContentType:
			kind = " pj"
		case a.status >= 400:
			kind = " txt"
			if !tc.parser || d.name == "nginx" {
				t.Errorf("answer %d: Content-Type %q, want %s", i+1, a.ctype, problem.ContentType)
			}
		}
		if i < 2 {
			cells = append(cells, strconv.Itoa(a.status)+kind)
		}
	}
	if len(tc.want) > 2 {
		cells = append(cells, fmt.Sprintf("…(%d)", len(tc.want)))
	}
	return strings.Join(cells, ",")
}

// check09 reads NGINX's HTTP/0.9 answer: the body alone, which must be the
// line, or an HTTP/1.x error.
func check09(t *testing.T, f *fixture, s *server, raw string, line int) string {
	body, err := readAll(s.addr, raw)
	switch {
	case timedOut(err):
		t.Errorf("no answer within %v", ioTimeout)
		return "HANG"
	case strings.HasPrefix(string(body), "HTTP/1."):
		code, _ := strconv.Atoi(string(body[9:12]))
		if code != http.StatusBadRequest {
			t.Errorf("status %d, want 400 or the line as HTTP/0.9", code)
		}
		return string(body[9:12])
	case string(body) != string(f.line(line)):
		t.Errorf("HTTP/0.9 body %.100q, want line %d", body, line)
	}
	return "0.9 body"
}
