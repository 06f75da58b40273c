// Package nginx renders the NGINX configuration that routes each request for
// a line to the shard that owns it, from the shard manifest.
package nginx

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/internal/problem"
)

// DefaultListen is the address the server listens on when Options.Listen is
// empty.
const DefaultListen = ":8080"

// Options are the settings of a rendered configuration that are not in the
// manifest. The zero value listens on DefaultListen.
type Options struct {
	// Listen is the address to listen on: "8080", ":8080" (every IPv4
	// address), "127.0.0.1:8080", "[::1]:8080" or "host:8080". Empty means
	// DefaultListen.
	Listen string
	// OpenFiles is the open-file limit of NGINX's workers
	// (worker_rlimit_nofile); half of it is each worker's connections, as
	// a proxied request holds two. It must be within the hard limit NGINX
	// starts with, or NGINX cannot set it. Zero means DefaultOpenFiles.
	OpenFiles int
}

// DefaultOpenFiles is the open-file limit when Options.OpenFiles is zero,
// and MinOpenFiles the least one the config accepts.
const (
	DefaultOpenFiles = 32768
	MinOpenFiles     = 256
)

var (
	// ErrListen reports an Options.Listen that is not an address.
	ErrListen = errors.New("bad listen address")
	// ErrURL reports a shard URL that the config cannot proxy to.
	ErrURL = errors.New("cannot proxy to the shard's url")
	// ErrOpenFiles reports an Options.OpenFiles too small to serve.
	ErrOpenFiles = errors.New("open-file limit too small")
)

//go:embed nginx.conf.tmpl
var confText string

var confTemplate = template.Must(template.New("nginx.conf").
	Option("missingkey=error").
	Funcs(template.FuncMap{"problem": problemBody, "mapKey": mapKey, "digitVars": digitVars}).
	Parse(confText))

// Render writes the complete nginx.conf for m: an upstream for each
// distinct list of replicas, which shards with the same replicas share, an
// internal location per shard that proxies to its upstream, a map from the
// line number (positive or negative, leading zeros allowed) to the shard,
// which also routes a range /lines/{a}..{b} by a, and NGINX's own
// answers, as application/problem+json bodies (bodyOf),
// for malformed numbers and ranges (400), numbers beyond the end of the
// file (413), other paths (404) and methods (405), and /healthz.
//
// It sets no pid, daemon, user or error_log at the top level, and its
// temporary folders are relative to the prefix: run it as
//
//	nginx -p DIR -c nginx.conf -e stderr -g 'daemon off; pid nginx.pid;'
//
// with the file in DIR, a folder the user NGINX runs as can write. A
// manifest that fails Validate is refused with its error.
func Render(w io.Writer, m *manifest.Manifest, opts Options) error {
	c, err := newConf(m, opts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := confTemplate.Execute(&buf, c); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// conf is what the template renders.
type conf struct {
	TotalLines int64
	Listen     string
	// Upstreams are the distinct replica lists, Shards the locations, one
	// a shard, in the manifest's order.
	Upstreams []upstream
	Shards    []shardLocation
	// Valid matches, after "-?0*", every line number of the file; Beyond
	// the well-formed ones past its end. Either may be empty.
	Valid, Beyond string
	// AnyNumber matches, after "-?0*", every line number of any file: the
	// end of a range, which the shard checks against the file.
	AnyNumber  string
	AnyHTTPS   bool
	ErrorPages []errorPage
	// Table is the content of the routing maps.
	Table *routeTable
	// EqualPairs and LessPair are the decision's regular expressions.
	EqualPairs, LessPair string
	// BeyondBody is the 413 body for a number beyond the end, with the
	// number as NGINX variables.
	BeyondBody string
	// OpenFiles and WorkerConnections are the workers' limits,
	// MapHashMaxSize the size the largest map's hash may take.
	OpenFiles, WorkerConnections, MapHashMaxSize int
	// Keepalive is the idle connections a worker keeps to each upstream.
	Keepalive int
	// ZoneSize is the shared memory of the upstreams' one zone, "NNNk".
	ZoneSize string
}

// upstream is a list of replicas, named after the first shard served by
// it.
type upstream struct {
	Name    string
	Servers []string
}

// shardLocation is a shard's internal location: where it proxies to and
// how.
type shardLocation struct {
	Name, Scheme string
	// Host is the Host header for the shard, ServerName its TLS name.
	Host, ServerName string
	// Upstream is the name of the upstream of its replicas.
	Upstream string
}

type errorPage struct {
	// Status is the status NGINX produces, As the one answered instead
	// (0: the same).
	Status, As int
	Allow      string
	// Page names the internal location that answers (default: the status
	// answered); Body is its problem+json body (default: the status's).
	Page, Body string
}

// Code is the status the page answers with.
func (p errorPage) Code() int { return cmp.Or(p.As, p.Status) }

func newConf(m *manifest.Manifest, opts Options) (*conf, error) {
	listen, err := listenDirective(opts.Listen)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err // its ranges would not make sense
	}
	files := cmp.Or(opts.OpenFiles, DefaultOpenFiles)
	if files < MinOpenFiles {
		return nil, fmt.Errorf("%w: %d: NGINX needs at least %d open files (two a proxied request); raise the limit (ulimit -n)", ErrOpenFiles, files, MinOpenFiles)
	}
	c := &conf{
		TotalLines: m.TotalLines, Listen: listen,
		EqualPairs: equalPairs, LessPair: lessPair,
		AnyNumber: RangeRegex(1, math.MaxInt64),
		OpenFiles: files, WorkerConnections: files / 2,
	}
	total := m.TotalLines
	if err := c.addShards(m.Shards); err != nil {
		return nil, err
	}
	c.Table = newRouteTable(m)
	largest := len(m.Shards)
	for _, b := range c.Table.Buckets {
		largest = max(largest, len(b.Entries))
	}
	// Four slots a key keep NGINX's search for a hash size short.
	c.MapHashMaxSize = max(2048, 4*largest)
	if total >= 1 {
		c.Valid = RangeRegex(1, total)
	}
	if total < math.MaxInt64 {
		c.Beyond = RangeRegex(total+1, math.MaxInt64)
		if c.BeyondBody, err = beyondBody(total); err != nil {
			return nil, err
		}
	}
	for _, p := range errorPages {
		p.Page = cmp.Or(p.Page, strconv.Itoa(p.Code()))
		body := string(bodyOf(p.Code()))
		if p.Body != "" {
			body = p.Body
		}
		if p.Body, err = quoteSingle(body); err != nil {
			return nil, err
		}
		c.ErrorPages = append(c.ErrorPages, p)
	}
	return c, nil
}

// addShards adds a location for each shard and an upstream for each
// distinct list of replicas. Shards whose replicas render the same server
// lines, with the same scheme and TLS name, are the same servers: they
// share one upstream, so NGINX keeps one pool of idle connections to them
// and one record of which replica failed, however many manifest entries
// they serve. Each shard keeps its own Host, set in its location.
func (c *conf) addShards(shards []manifest.Shard) error {
	byServers := map[string]string{} // upstream key to name
	servers := 0
	for _, s := range shards {
		loc, u, err := newShard(s)
		if err != nil {
			return err
		}
		key := loc.Scheme + " " + loc.ServerName + " " + strings.Join(u.Servers, " ")
		if name, ok := byServers[key]; ok {
			loc.Upstream = name
		} else {
			byServers[key] = u.Name
			c.Upstreams = append(c.Upstreams, u)
			servers += len(u.Servers)
		}
		c.AnyHTTPS = c.AnyHTTPS || loc.Scheme == "https"
		c.Shards = append(c.Shards, loc)
	}
	c.Keepalive = keepalive(c.WorkerConnections, len(c.Upstreams))
	c.ZoneSize = zoneSize(len(c.Upstreams), servers)
	return nil
}

// keepalive is the idle connections a worker keeps to each of upstreams
// upstreams, of its workerConnections: half of them, as a proxied request
// holds a client's connection too, shared out, within [8, 1024].
func keepalive(workerConnections, upstreams int) int {
	return min(max(workerConnections/2/max(upstreams, 1), 8), 1024)
}

// zoneSize is the size of the shared zone of upstreams upstreams with
// servers servers in all: NGINX copies each upstream and each server's
// address, name and state into it. The allowance a server and an upstream
// is generous; the zone is only touched, not filled, by the rest.
func zoneSize(upstreams, servers int) string {
	return strconv.Itoa(256+upstreams/2+servers) + "k"
}

// hostPattern is what this config accepts as a host name: letters, digits,
// '.', '-' and '_', nothing NGINX would read as syntax.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$`)

func validHost(h string) bool { return hostPattern.MatchString(h) || net.ParseIP(h) != nil }

// newShard turns a shard's URLs into its location and the servers of an
// upstream of its own, named after it. All its replicas must share a
// scheme, since NGINX proxies to an upstream with one.
func newShard(s manifest.Shard) (shardLocation, upstream, error) {
	loc, u := shardLocation{Name: s.Name, Upstream: s.Name}, upstream{Name: s.Name}
	for _, raw := range s.URLs {
		p, err := url.Parse(raw)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || !validHost(p.Hostname()) {
			return loc, u, fmt.Errorf("shard %s: %w %q: want http:// or https:// and a host name or IP address", s.Name, ErrURL, raw)
		}
		if loc.Scheme == "" {
			loc.Scheme, loc.Host, loc.ServerName = p.Scheme, p.Host, p.Hostname()
		} else if p.Scheme != loc.Scheme {
			return loc, u, fmt.Errorf("shard %s: %w: its urls mix http and https", s.Name, ErrURL)
		}
		port := p.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[p.Scheme]
		}
		if !validPort(port) {
			return loc, u, fmt.Errorf("shard %s: %w %q: bad port", s.Name, ErrURL, raw)
		}
		u.Servers = append(u.Servers, net.JoinHostPort(p.Hostname(), port))
	}
	return loc, u, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// listenDirective turns an address in the forms of Options.Listen into the
// argument of NGINX's listen.
func listenDirective(addr string) (string, error) {
	if addr == "" {
		addr = DefaultListen
	}
	if validPort(addr) {
		return addr, nil
	}
	bad := fmt.Errorf("%w %q: want PORT, :PORT, HOST:PORT or [IPv6]:PORT", ErrListen, addr)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !validPort(port) {
		return "", bad
	}
	switch {
	case host == "":
		return port, nil
	case !validHost(host):
		return "", bad
	}
	return net.JoinHostPort(host, port), nil
}

// errorPages lists the errors NGINX finds itself, which it answers through
// error_page. The errors of the locations (400, 404, 413) are answered there
// with their bodies: an error_page 400 or 413 would close the connection.
var errorPages = []errorPage{
	// Its own 400 is a request that is not HTTP/1.1 (no Host header), not a
	// bad line number, which the locations answer.
	{Status: http.StatusBadRequest, Page: "400-request", Body: string(problem.BadRequest())},
	{Status: http.StatusNotFound}, // of the internal locations of these pages
	{Status: http.StatusMethodNotAllowed, Allow: "GET, HEAD"},
	// Its own 413 is a request body over client_max_body_size, not a line
	// beyond the end, which the locations answer.
	{Status: http.StatusRequestEntityTooLarge, Page: "413-body", Body: string(problem.BodyTooLarge(maxBody))},
	{Status: http.StatusRequestURITooLong},
	// NGINX's own code for request headers beyond
	// large_client_header_buffers; Go's servers answer 431.
	{Status: 494, As: http.StatusRequestHeaderFieldsTooLarge},
	{Status: http.StatusInternalServerError},
	{Status: http.StatusNotImplemented}, // a Transfer-Encoding it does not know
	{Status: http.StatusBadGateway},
	{Status: http.StatusServiceUnavailable},
	{Status: http.StatusGatewayTimeout},
	{Status: http.StatusHTTPVersionNotSupported},
}

// maxBody is client_max_body_size in nginx.conf.tmpl.
const maxBody = "16 KiB"

// notFoundDetail is the detail of NGINX's 404: unlike a shard or the
// router, it has no /readyz or /metrics of its own.
const notFoundDetail = "the only resources are /lines/{n} and /healthz"

// bodyOf is the problem+json body NGINX answers status with in a location.
func bodyOf(status int) []byte {
	if status == http.StatusNotFound {
		return problem.Body(status, notFoundDetail)
	}
	return problem.Body(status, "")
}

// problemBody is bodyOf(status), escaped for a single-quoted NGINX string.
func problemBody(status int) (string, error) {
	return quoteSingle(string(bodyOf(status)))
}

// beyondBody is the body of a 413 for a number beyond the end of a file of
// total lines, total < MaxInt64, as the shard and the router write it, with
// the number as NGINX has it: the captures of the sign and the digits.
func beyondBody(total int64) (string, error) {
	past := strconv.FormatInt(total+1, 10)
	const mark = "@NUMBER@"
	_, err := lineno.Resolve(total+1, total)
	detail, ok := strings.CutPrefix(err.Error(), "line "+past+":")
	if !ok {
		return "", fmt.Errorf("the detail %q of a line beyond the end does not start with its number", err)
	}
	body, err := quoteSingle(string(problem.Body(http.StatusRequestEntityTooLarge, "line "+mark+":"+detail)))
	if err != nil {
		return "", err
	}
	return strings.Replace(body, mark, "${lines_beyond_sign}${lines_beyond}", 1), nil
}

// mapKey escapes a shard name as an exact key of a map: a name that is a
// parameter of map (default, include, ...) takes a backslash.
func mapKey(name string) string {
	switch name {
	case "default", "hostnames", "include", "volatile":
		return `\` + name
	}
	return name
}

// digitVars is "$lines_d1...$lines_dW": the first w digits of the number.
func digitVars(w int) string {
	var b strings.Builder
	for i := 1; i <= w; i++ {
		fmt.Fprintf(&b, "${lines_d%d}", i)
	}
	return b.String()
}

// quoteSingle escapes s for the inside of a single-quoted NGINX string.
// NGINX would expand a '$' as a variable and has no escape for it.
func quoteSingle(s string) (string, error) {
	if strings.Contains(s, "$") {
		return "", fmt.Errorf("problem body %q has a '$', which NGINX would expand", s)
	}
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s), nil
}
