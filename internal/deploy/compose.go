// Package deploy renders the deployments of a shard manifest: the compose
// file of the sharded set, and one Cloud Run service per shard.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lineserver/lineserver/internal/manifest"
)

// ErrCannotRender reports a manifest that the deployment cannot express,
// such as a shard URL that is an IP address in a compose file.
var ErrCannotRender = errors.New("cannot render")

// Paths inside the containers.
const (
	containerDataDir  = "/data"
	containerIndexDir = "/index"
	containerManifest = "/etc/lineserver/manifest.json"
	probeBinary       = "/usr/local/bin/probe"
)

// ComposeOptions are the settings of Compose. Its zero value renders the
// images built by the Dockerfile under their default tags, NGINX published
// on port 8080 and the router on 8081 of every interface, and paths relative
// to the manifest's folder.
type ComposeOptions struct {
	// Image is the shard function's image; empty means "lineserver".
	Image string
	// RouterImage is the router's image; empty means "lineserver-router".
	RouterImage string
	// NginxImage is the image with NGINX and `lines`, built from the
	// Dockerfile's nginx target; empty means "lineserver-nginx".
	NginxImage string
	// NginxPort and RouterPort are where the host publishes them, as
	// Docker's "[IP:]PORT", or "IP:" for a free port on IP; empty means
	// "8080" and "8081".
	NginxPort, RouterPort string
	// ManifestFile is the manifest's path, mounted into NGINX and the
	// router; empty means "manifest.json" in the manifest's folder.
	ManifestFile string
	// Dir is the folder the compose file will be saved in: host paths are
	// written relative to it. Empty means the manifest's folder (m.Dir).
	Dir string
}

func (o ComposeOptions) withDefaults() ComposeOptions {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Image, "lineserver")
	def(&o.RouterImage, "lineserver-router")
	def(&o.NginxImage, "lineserver-nginx")
	def(&o.NginxPort, "8080")
	def(&o.RouterPort, "8081")
	return o
}

// composeFile is the part of the Compose Specification that Compose uses.
// It has no version key: Compose v2, and v1 from 1.27 on, read it as the
// Compose Specification.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string                    `yaml:"image"`
	Command     []string                  `yaml:"command,omitempty"`
	Environment map[string]string         `yaml:"environment,omitempty"`
	Volumes     []string                  `yaml:"volumes,omitempty"`
	Ports       []string                  `yaml:"ports,omitempty"`
	ReadOnly    bool                      `yaml:"read_only"`
	Tmpfs       []string                  `yaml:"tmpfs,omitempty"`
	Networks    map[string]composeNetwork `yaml:"networks,omitempty"`
	Healthcheck *composeHealthcheck       `yaml:"healthcheck,omitempty"`
	DependsOn   map[string]composeDepends `yaml:"depends_on,omitempty"`
	Restart     string                    `yaml:"restart,omitempty"`
}

type composeNetwork struct {
	Aliases []string `yaml:"aliases,omitempty"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

type composeDepends struct {
	Condition string `yaml:"condition"`
}

// readyCheck probes path with the probe binary that the images carry: the
// distroless ones have no shell and no curl.
func readyCheck(path string) *composeHealthcheck {
	return &composeHealthcheck{
		Test:        []string{"CMD", probeBinary, path},
		Interval:    "2s",
		Timeout:     "2s",
		Retries:     3,
		StartPeriod: "30s",
	}
}

// Compose renders the compose file of the sharded set: one service per
// shard, named as the shard, with its data and index mounted read-only, its
// range in the environment and a health check on /readyz; NGINX with the
// config that `lines nginx` renders from the manifest; and the router. NGINX
// and the router start once every shard is healthy.
//
// Each shard's service answers at the host and port of its URLs (the other
// hosts become network aliases), so the manifest that NGINX and the router
// read routes inside the compose network as it is. URLs must be http, with
// host names rather than IP addresses, and one port per shard.
func Compose(m *manifest.Manifest, opts ComposeOptions) ([]byte, error) {
	opts = opts.withDefaults()
	paths := hostPaths{dir: opts.Dir}
	if paths.dir == "" {
		paths.dir = m.Dir
	}
	manifestFile := opts.ManifestFile
	if manifestFile == "" {
		manifestFile = filepath.Join(m.Dir, "manifest.json")
	}
	manifestVolume, err := paths.volume(manifestFile, containerManifest)
	if err != nil {
		return nil, err
	}

	f := composeFile{Services: make(map[string]composeService)}
	healthy := make(map[string]composeDepends)
	var errs []error
	// Every name the compose network resolves, a service's or an alias,
	// and what claims it: two claims would make Docker's DNS answer with
	// several containers, and requests reach the wrong one.
	claimed := map[string]string{"nginx": "the nginx service", "router": "the router service"}
	claim := func(name, by string) error {
		if other, ok := claimed[name]; ok {
			return fmt.Errorf("%w: the name %q is claimed by %s and by %s", ErrCannotRender, name, other, by)
		}
		claimed[name] = by
		return nil
	}
	for i, s := range m.Shards {
		services, err := shardServices(m, i, opts.Image, paths)
		if err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", s.Name, err))
			continue
		}
		for _, ns := range services {
			by := "shard " + s.Name
			if err := claim(ns.name, by); err != nil {
				errs = append(errs, err)
			}
			if n, ok := ns.svc.Networks["default"]; ok {
				for _, a := range n.Aliases {
					if err := claim(a, by); err != nil {
						errs = append(errs, err)
					}
				}
			}
			f.Services[ns.name] = ns.svc
			healthy[ns.name] = composeDepends{Condition: "service_healthy"}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f.Services["nginx"] = composeService{
		Image:       opts.NginxImage,
		Environment: map[string]string{"MANIFEST": containerManifest, "PORT": "8080"},
		Volumes:     []string{manifestVolume},
		Ports:       []string{opts.NginxPort + ":8080"},
		ReadOnly:    true,
		// NGINX writes its config, pid and temporary files in /tmp/nginx.
		Tmpfs:       []string{"/tmp"},
		Healthcheck: readyCheck("/healthz"),
		DependsOn:   healthy,
		Restart:     "unless-stopped",
	}
	f.Services["router"] = composeService{
		Image:       opts.RouterImage,
		Environment: map[string]string{"ROUTER_MANIFEST": containerManifest, "PORT": "8080"},
		Volumes:     []string{manifestVolume},
		Ports:       []string{opts.RouterPort + ":8080"},
		ReadOnly:    true,
		Healthcheck: readyCheck("/readyz"),
		DependsOn:   healthy,
		Restart:     "unless-stopped",
	}
	b, err := marshal(f)
	if err != nil {
		return nil, err
	}
	header := "# The sharded set of lineserver, rendered by `lines compose` from its\n" +
		"# manifest. Host paths are relative to this file's folder: the manifest's,\n" +
		"# unless --out put the file elsewhere. Start it with\n" +
		"# `docker compose -f FILE up -d` (or docker-compose).\n"
	return append([]byte(header), b...), nil
}

// namedService is a service of the compose file and its name.
type namedService struct {
	name string
	svc  composeService
}

// shardServices renders shard i's services: one container per host its
// URLs name, so that replicas are separate containers (a replica that
// fails leaves the others serving). A shard with one host gets one service
// named after the shard, with the host as a network alias if it differs.
func shardServices(m *manifest.Manifest, i int, image string, paths hostPaths) ([]namedService, error) {
	s := m.Shards[i]
	hosts, err := urlHosts(s)
	if err != nil {
		return nil, err
	}
	data := containerDataDir + "/" + filepath.Base(m.DataPath(i))
	index := containerIndexDir + "/" + filepath.Base(m.IndexPath(i))
	dataVolume, err := paths.volume(m.DataPath(i), data)
	if err != nil {
		return nil, err
	}
	indexVolume, err := paths.volume(m.IndexPath(i), index)
	if err != nil {
		return nil, err
	}
	var out []namedService
	for _, h := range hosts {
		svc := composeService{
			Image:       image,
			Environment: shardEnv(m, i, data, index),
			Volumes:     []string{dataVolume, indexVolume},
			ReadOnly:    true,
			Healthcheck: readyCheck("/readyz"),
			Restart:     "unless-stopped",
		}
		svc.Environment["PORT"] = h.port
		name := h.name
		if len(hosts) == 1 {
			name = s.Name
			if h.name != s.Name {
				svc.Networks = map[string]composeNetwork{"default": {Aliases: []string{h.name}}}
			}
		}
		out = append(out, namedService{name, svc})
	}
	return out, nil
}

// shardEnv is the environment that gives shard i its files and range. The
// one shard of an empty file (lines 1 to 0) gets no INDEX_LAST_LINE_NUMBER,
// which a shard takes from its empty index.
func shardEnv(m *manifest.Manifest, i int, data, index string) map[string]string {
	s := m.Shards[i]
	env := map[string]string{
		"FILE_REPOSITORY_FILE_PATH": data,
		"INDEX_FILE_PATH":           index,
		"INDEX_FIRST_LINE_NUMBER":   strconv.FormatInt(s.First, 10),
		"INDEX_LAST_LINE_NUMBER":    strconv.FormatInt(s.Last, 10),
		"FILE_TOTAL_LINES":          strconv.FormatInt(m.TotalLines, 10),
	}
	if s.Last < s.First {
		delete(env, "INDEX_LAST_LINE_NUMBER")
	}
	return env
}

// replicaHost is a container that a shard's URLs name: its host name and
// the port it listens on.
type replicaHost struct{ name, port string }

// urlHosts returns the distinct hosts of s's URLs, in their order, each
// with its port.
func urlHosts(s manifest.Shard) ([]replicaHost, error) {
	var hosts []replicaHost
	for _, raw := range s.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: url %q: %w", ErrCannotRender, raw, err)
		}
		if u.Scheme != "http" {
			return nil, fmt.Errorf("%w: url %q: containers in a compose network speak http", ErrCannotRender, raw)
		}
		host := u.Hostname()
		if net.ParseIP(host) != nil || !validAlias(host) {
			return nil, fmt.Errorf("%w: url %q: the host must be a name, such as %q, that the compose network resolves", ErrCannotRender, raw, s.Name)
		}
		p := u.Port()
		if p == "" {
			p = "80"
		}
		if i := slices.IndexFunc(hosts, func(h replicaHost) bool { return h.name == host }); i >= 0 {
			if hosts[i].port != p {
				return nil, fmt.Errorf("%w: urls %q: one container listens on one port, not %s and %s", ErrCannotRender, s.URLs, hosts[i].port, p)
			}
			continue
		}
		hosts = append(hosts, replicaHost{host, p})
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: no urls", ErrCannotRender)
	}
	return hosts, nil
}

func validAlias(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// hostPaths writes the host side of bind mounts relative to dir, the folder
// of the compose file.
type hostPaths struct{ dir string }

// volume is the short-syntax bind mount of host path p at target,
// read-only. A relative p, or an absolute one inside dir (a manifest given
// by its absolute path names its files so), is written relative to dir, so
// that the folder can move with its compose file; it starts with "./" or
// "../", or Compose would take it for a named volume.
func (h hostPaths) volume(p, target string) (string, error) {
	if rel, err := relative(h.dir, p); err == nil && (!filepath.IsAbs(p) || filepath.IsLocal(rel)) {
		p = rel
	} else if !filepath.IsAbs(p) {
		return "", err
	}
	p = filepath.ToSlash(p)
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "../") {
		p = "./" + p
	}
	if strings.Contains(p, ":") {
		return "", fmt.Errorf("%w: path %q has a colon, which a bind mount cannot hold", ErrCannotRender, p)
	}
	return p + ":" + target + ":ro", nil
}

// relative is p relative to dir, both relative to the working directory
// (an empty dir is the working directory).
func relative(dir, p string) (string, error) {
	if dir == "" {
		dir = "."
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absP, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.Rel(absDir, absP)
}

// marshal renders v as YAML indented by two spaces, with struct fields in
// their order and map keys sorted.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
