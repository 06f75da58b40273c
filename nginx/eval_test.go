package nginx

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// This file is a small evaluator of the rendered config's routing, so that
// tests check the config's text itself, for manifests far too large to send
// every boundary through real NGINX. It mirrors what NGINX does with the
// parts the config uses:
//
//   - an internal prefix location (^~) is only reached by a rewrite, which
//     sends the request to the longest one its new URI starts with;
//   - regex locations are tried in their order, the first match wins, and
//     its named captures become variables;
//   - a map's value is computed when the variable is first used and kept
//     for the request; the source is a string with variables; exact keys
//     are looked up first, then the regular expressions in their order
//     (whose named captures become variables), then the default;
//   - values are strings with $name or ${name}; $uri is the path, and a
//     variable never set is the empty string.
//
// Go's regexp and PCRE agree on the few constructs the config's patterns
// use (classes, counted repetition, groups, (?<name>), \S, \z).

// confMap is one map block.
type confMap struct {
	source string
	exact  map[string]string
	res    []confRegex
	def    string
}

type confRegex struct {
	re    *regexp.Regexp
	value string
}

// confLocation is a location and what it does: "proxy", "rewrite" or a
// status.
type confLocation struct {
	re *regexp.Regexp
	// prefix is the prefix of a ^~ location, which has no re.
	prefix string
	action string
	// body is the text a return answers with, the new URI of a rewrite, or
	// the URL of a proxy_pass.
	body string
}

// routing is the parsed routing of a config.
type routing struct {
	maps      map[string]*confMap // by the variable they set
	locations []confLocation
	prefixes  []confLocation
	upstreams map[string]bool // the names of the upstream blocks
}

var (
	mapStart      = regexp.MustCompile(`^\s*map\s+(.+?)\s+\$([a-z0-9_]+)\s*\{$`)
	locationStart = regexp.MustCompile(`^\s*location ~ (.+?) \{$`)
	prefixStart   = regexp.MustCompile(`^\s*location \^~ (\S+) \{$`)
	upstreamStart = regexp.MustCompile(`^\s*upstream (\S+) \{$`)
	actionStart   = regexp.MustCompile(`^\s*(proxy_pass|rewrite \^|return (\d+))(\s.*);$`)
	errParse      = errors.New("cannot read the config")
)

// tokens splits a directive's arguments as NGINX does: by blanks, with
// "..." and '...' quoting, where \" \' \\ \n \t \r are escapes and a
// backslash before any other character stays.
func tokens(s string) ([]string, error) {
	var out []string
	s = strings.TrimSpace(s)
	for s != "" {
		var b strings.Builder
		if q := s[0]; q == '"' || q == '\'' {
			i := 1
			for ; i < len(s) && s[i] != q; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case '"', '\'', '\\':
						b.WriteByte(s[i])
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte('\\')
						b.WriteByte(s[i])
					}
					continue
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%w: unterminated quote in %q", errParse, s)
			}
			s = s[i+1:]
		} else {
			i := strings.IndexAny(s, " \t")
			if i < 0 {
				i = len(s)
			}
			b.WriteString(s[:i])
			s = s[i:]
		}
		out = append(out, b.String())
		s = strings.TrimLeft(s, " \t")
	}
	return out, nil
}

// parseRouting reads the maps and regex locations of a rendered config.
func parseRouting(conf string) (*routing, error) {
	r := &routing{maps: map[string]*confMap{}, upstreams: map[string]bool{}}
	var m *confMap
	var loc *confLocation
	for n, line := range strings.Split(conf, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		fail := func(why string) error { return fmt.Errorf("%w: line %d: %s: %q", errParse, n+1, why, line) }
		switch {
		case m != nil && trimmed == "}":
			m = nil
		case m != nil:
			toks, err := tokens(strings.TrimSuffix(trimmed, ";"))
			if err != nil || !strings.HasSuffix(trimmed, ";") || len(toks) != 2 {
				return nil, fail("want KEY VALUE;")
			}
			key, value := toks[0], toks[1]
			switch {
			case strings.HasPrefix(key, "~"):
				re, err := regexp.Compile(key[1:])
				if err != nil {
					return nil, fail(err.Error())
				}
				m.res = append(m.res, confRegex{re, value})
			case key == "default":
				m.def = value
			case key == "hostnames" || key == "include" || key == "volatile":
				return nil, fail("a parameter the evaluator does not know")
			default:
				key = strings.TrimPrefix(key, `\`)
				if _, dup := m.exact[key]; dup {
					return nil, fail("key twice")
				}
				m.exact[key] = value
			}
		case mapStart.MatchString(line):
			g := mapStart.FindStringSubmatch(line)
			src, err := tokens(g[1])
			if err != nil || len(src) != 1 {
				return nil, fail("bad source")
			}
			if r.maps[g[2]] != nil {
				return nil, fail("variable mapped twice")
			}
			m = &confMap{source: src[0], exact: map[string]string{}}
			r.maps[g[2]] = m
		case locationStart.MatchString(line):
			g := locationStart.FindStringSubmatch(line)
			pat, err := tokens(g[1])
			if err != nil || len(pat) != 1 {
				return nil, fail("bad location pattern")
			}
			re, err := regexp.Compile(pat[0])
			if err != nil {
				return nil, fail(err.Error())
			}
			r.locations = append(r.locations, confLocation{re: re})
			loc = &r.locations[len(r.locations)-1]
		case upstreamStart.MatchString(line):
			r.upstreams[upstreamStart.FindStringSubmatch(line)[1]] = true
		case prefixStart.MatchString(line):
			r.prefixes = append(r.prefixes, confLocation{prefix: prefixStart.FindStringSubmatch(line)[1]})
			loc = &r.prefixes[len(r.prefixes)-1]
		case loc != nil && actionStart.MatchString(line):
			g := actionStart.FindStringSubmatch(line)
			args, err := tokens(g[3])
			if err != nil {
				return nil, fail(err.Error())
			}
			switch {
			case g[1] == "proxy_pass" && len(args) == 1:
				loc.action = "proxy"
			case g[1] == "rewrite ^" && len(args) == 2 && args[1] == "last":
				loc.action = "rewrite"
			case g[2] != "" && len(args) == 1:
				loc.action = g[2]
			default:
				return nil, fail("an action the evaluator does not know")
			}
			loc.body = args[0]
			loc = nil
		}
	}
	if m != nil {
		return nil, fmt.Errorf("%w: a map does not end", errParse)
	}
	return r, nil
}

// request is the variables of one request.
type request struct {
	r    *routing
	vars map[string]string
	// busy catches a map that needs its own value.
	busy map[string]bool
}

// value expands the variables of s: $name or ${name}, names of a-z, 0-9
// and '_'.
func (q *request) value(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		var name string
		if strings.HasPrefix(s, "{") {
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", fmt.Errorf("%w: unterminated ${", errParse)
			}
			name, s = s[1:end], s[end+1:]
		} else {
			end := strings.IndexFunc(s, func(r rune) bool {
				return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_'
			})
			if end < 0 {
				end = len(s)
			}
			name, s = s[:end], s[end:]
		}
		if name == "" {
			return "", fmt.Errorf("%w: a '$' without a variable name", errParse)
		}
		v, err := q.variable(name)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
}

func (q *request) variable(name string) (string, error) {
	if v, ok := q.vars[name]; ok {
		return v, nil
	}
	m := q.r.maps[name]
	if m == nil {
		return "", nil // a capture that was not set
	}
	if q.busy[name] {
		return "", fmt.Errorf("map $%s depends on itself", name)
	}
	q.busy[name] = true
	defer delete(q.busy, name)
	src, err := q.value(m.source)
	if err != nil {
		return "", err
	}
	result, found := m.exact[src]
	if !found {
		result = m.def
		for _, re := range m.res {
			if q.match(re.re, src) {
				result = re.value
				break
			}
		}
	}
	v, err := q.value(result)
	if err != nil {
		return "", err
	}
	q.vars[name] = v
	return v, nil
}

// match runs re on s and, as NGINX does, keeps its named captures.
func (q *request) match(re *regexp.Regexp, s string) bool {
	g := re.FindStringSubmatchIndex(s)
	if g == nil {
		return false
	}
	for i, name := range re.SubexpNames() {
		if name != "" && g[2*i] >= 0 {
			q.vars[name] = s[g[2*i]:g[2*i+1]]
		}
	}
	return true
}

// decide is what NGINX does with a path: the status it answers with and
// the body of its return, or "proxy", the shard (the name in the path of
// its location, /.shard/NAME/), and the path the shard is sent.
func (r *routing) decide(uri string) (action, shard, body string, err error) {
	if r.prefix(uri) != nil {
		return "404", "", "", nil // internal
	}
	q := &request{r: r, vars: map[string]string{"uri": uri}, busy: map[string]bool{}}
	for _, loc := range r.locations {
		if !q.match(loc.re, uri) {
			continue
		}
		switch loc.action {
		case "rewrite":
			return r.proxy(q, loc.body, uri)
		case "proxy":
			return "", "", "", fmt.Errorf("%w: a proxy_pass in a regex location", errParse)
		}
		body, err = q.value(loc.body)
		return loc.action, "", body, err
	}
	return "404", "", "", nil
}

// prefix is the longest ^~ location that uri starts with, if any.
func (r *routing) prefix(uri string) *confLocation {
	var best *confLocation
	for i, loc := range r.prefixes {
		if strings.HasPrefix(uri, loc.prefix) && (best == nil || len(loc.prefix) > len(best.prefix)) {
			best = &r.prefixes[i]
		}
	}
	return best
}

// proxy follows the rewrite of uri to newURI to the prefix location it
// lands in, /.shard/NAME/, which must proxy_pass to SCHEME://UPSTREAM/, an
// upstream of the config (that of shard NAME's replicas, which other
// shards may share), and so sends the rest of the new URI after the prefix.
func (r *routing) proxy(q *request, newURI, uri string) (action, shard, path string, err error) {
	to, err := q.value(newURI)
	if err != nil {
		return "", "", "", err
	}
	loc := r.prefix(to)
	if loc == nil {
		return "404", "", "", nil // location / answers
	}
	_, upstream, ok := strings.Cut(loc.body, "://")
	upstream, slash := strings.CutSuffix(upstream, "/")
	if loc.action != "proxy" || !ok || !slash || !r.upstreams[upstream] {
		return "", "", "", fmt.Errorf("%w: %s, which %s leads to, does not proxy_pass to an upstream and /", errParse, loc.prefix, uri)
	}
	shard, ok = strings.CutPrefix(loc.prefix, "/.shard/")
	shard, slash = strings.CutSuffix(shard, "/")
	if !ok || !slash || shard == "" {
		return "", "", "", fmt.Errorf("%w: %s, which %s leads to, is not /.shard/NAME/", errParse, loc.prefix, uri)
	}
	return "proxy", shard, "/" + strings.TrimPrefix(to, loc.prefix), nil
}
