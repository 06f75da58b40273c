package deploy

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
)

func TestComposeGolden(t *testing.T) {
	m := sample(t)
	b, err := Compose(m, ComposeOptions{ManifestFile: filepath.Join(m.Dir, "sample-manifest.json")})
	require.NoError(t, err)
	golden(t, "sample-compose.yaml", b)
}

// parsedCompose is the rendered file read back as Compose reads it.
type parsedCompose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		ReadOnly    bool              `yaml:"read_only"`
		Tmpfs       []string          `yaml:"tmpfs"`
		Networks    map[string]struct {
			Aliases []string `yaml:"aliases"`
		} `yaml:"networks"`
		Healthcheck *struct {
			Test        []string `yaml:"test"`
			Interval    string   `yaml:"interval"`
			Timeout     string   `yaml:"timeout"`
			Retries     int      `yaml:"retries"`
			StartPeriod string   `yaml:"start_period"`
		} `yaml:"healthcheck"`
		Restart   string `yaml:"restart"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Version string `yaml:"version"`
}

func TestComposeFields(t *testing.T) {
	m := sample(t)
	b, err := Compose(m, ComposeOptions{
		Image: "img:1", RouterImage: "router:1", NginxImage: "nginx:1",
		NginxPort: "127.0.0.1:18080", RouterPort: "127.0.0.1:18081",
		ManifestFile: filepath.Join(m.Dir, "sample-manifest.json"),
	})
	require.NoError(t, err)
	var f parsedCompose
	require.NoError(t, strictUnmarshal(b, &f), "%s", b)

	assert.Empty(t, f.Version, "no version key: Compose reads it as the Compose Specification")
	require.Len(t, f.Services, 6)
	shards := []string{"shard-1", "shard-2", "shard-3", "shard-3b"}
	for i, name := range shards {
		s, ok := f.Services[name]
		require.True(t, ok, "service %s", name)
		sh := m.Shards[min(i, 2)] // shard-3b is shard-3's replica
		assert.Equal(t, "img:1", s.Image)
		assert.True(t, s.ReadOnly)
		assert.Equal(t, map[string]string{
			"FILE_REPOSITORY_FILE_PATH": "/data/sample.txt",
			"INDEX_FILE_PATH":           "/index/sample.txt_index.txt",
			"INDEX_FIRST_LINE_NUMBER":   itoa(sh.First),
			"INDEX_LAST_LINE_NUMBER":    itoa(sh.Last),
			"FILE_TOTAL_LINES":          "300",
			"PORT":                      "8080",
		}, s.Environment)
		assert.Equal(t, []string{
			"./sample.txt:/data/sample.txt:ro",
			"./sample.txt_index.txt:/index/sample.txt_index.txt:ro",
		}, s.Volumes)
		assert.Empty(t, s.Ports, "shards are reached inside the compose network only")
		require.NotNil(t, s.Healthcheck)
		assert.Equal(t, []string{"CMD", "/usr/local/bin/probe", "/readyz"}, s.Healthcheck.Test)
		assert.Equal(t, "2s", s.Healthcheck.Interval)
		assert.Equal(t, "2s", s.Healthcheck.Timeout)
		assert.Equal(t, 3, s.Healthcheck.Retries)
		assert.Equal(t, "30s", s.Healthcheck.StartPeriod)
		assert.Equal(t, "unless-stopped", s.Restart)
	}
	assert.Empty(t, f.Services["shard-3"].Networks, "the replica is a container of its own")
	assert.Empty(t, f.Services["shard-1"].Networks)

	for _, tc := range []struct{ name, image, port, manifestEnv string }{
		{"nginx", "nginx:1", "127.0.0.1:18080:8080", "MANIFEST"},
		{"router", "router:1", "127.0.0.1:18081:8080", "ROUTER_MANIFEST"},
	} {
		s := f.Services[tc.name]
		assert.Equal(t, tc.image, s.Image, tc.name)
		assert.Equal(t, []string{tc.port}, s.Ports, tc.name)
		assert.True(t, s.ReadOnly, tc.name)
		assert.Equal(t, "/etc/lineserver/manifest.json", s.Environment[tc.manifestEnv], tc.name)
		assert.Equal(t, "8080", s.Environment["PORT"], tc.name)
		assert.Equal(t, []string{"./sample-manifest.json:/etc/lineserver/manifest.json:ro"}, s.Volumes, tc.name)
		require.Len(t, s.DependsOn, 4, tc.name)
		for _, shard := range shards {
			assert.Equal(t, "service_healthy", s.DependsOn[shard].Condition, tc.name)
		}
	}
	assert.Equal(t, []string{"/tmp"}, f.Services["nginx"].Tmpfs)
	assert.Equal(t, "/healthz", f.Services["nginx"].Healthcheck.Test[2])
	assert.Equal(t, "/readyz", f.Services["router"].Healthcheck.Test[2])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestComposePathsRelativeToDir(t *testing.T) {
	m := &manifest.Manifest{
		TotalLines: 10,
		Dir:        filepath.Join("out", "shards"),
		Shards: []manifest.Shard{
			{Name: "a", First: 1, Last: 5, Data: "a.txt", URLs: []string{"http://a:9000"}},
			{Name: "b", First: 6, Last: 10, Data: "/abs/b.txt", Index: "idx/b.idx", URLs: []string{"http://b:9000"}},
		},
	}
	b, err := Compose(m, ComposeOptions{Dir: "."})
	require.NoError(t, err)
	var f parsedCompose
	require.NoError(t, strictUnmarshal(b, &f))
	assert.Equal(t, []string{"./out/shards/a.txt:/data/a.txt:ro", "./out/shards/a.txt_index.txt:/index/a.txt_index.txt:ro"}, f.Services["a"].Volumes)
	assert.Equal(t, []string{"/abs/b.txt:/data/b.txt:ro", "./out/shards/idx/b.idx:/index/b.idx:ro"}, f.Services["b"].Volumes)
	assert.Equal(t, "9000", f.Services["a"].Environment["PORT"])
	assert.Equal(t, []string{"./out/shards/manifest.json:/etc/lineserver/manifest.json:ro"}, f.Services["router"].Volumes)

	b, err = Compose(m, ComposeOptions{Dir: filepath.Join("out", "other")})
	require.NoError(t, err)
	require.NoError(t, strictUnmarshal(b, &f))
	assert.Equal(t, "../shards/a.txt:/data/a.txt:ro", f.Services["a"].Volumes[0])

	// The manifest given by its absolute path: its files inside the compose
	// file's folder are still written relative to it; one outside stays
	// absolute.
	abs, err := filepath.Abs(filepath.Join("out", "shards"))
	require.NoError(t, err)
	m.Dir = abs
	b, err = Compose(m, ComposeOptions{Dir: abs})
	require.NoError(t, err)
	require.NoError(t, strictUnmarshal(b, &f))
	assert.Equal(t, []string{"./a.txt:/data/a.txt:ro", "./a.txt_index.txt:/index/a.txt_index.txt:ro"}, f.Services["a"].Volumes)
	assert.Equal(t, "/abs/b.txt:/data/b.txt:ro", f.Services["b"].Volumes[0])
}

func TestComposeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		urls []string
	}{
		{"an IP address", []string{"http://127.0.0.1:8080"}},
		{"https", []string{"https://a-xyz.a.run.app"}},
		{"one host, two ports", []string{"http://a:8080", "http://a:8081"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &manifest.Manifest{TotalLines: 1, Shards: []manifest.Shard{{Name: "a", First: 1, Last: 1, Data: "a.txt", URLs: tc.urls}}}
			_, err := Compose(m, ComposeOptions{})
			assert.ErrorIs(t, err, ErrCannotRender)
		})
	}
	t.Run("a shard named router", func(t *testing.T) {
		m := &manifest.Manifest{TotalLines: 1, Shards: []manifest.Shard{{Name: "router", First: 1, Last: 1, Data: "a.txt", URLs: []string{"http://router:8080"}}}}
		_, err := Compose(m, ComposeOptions{})
		assert.ErrorIs(t, err, ErrCannotRender)
	})
	// Names the compose network would resolve to two containers.
	for name, urls := range map[string][2][]string{
		"a replica host that is another shard's name": {{"http://shard-1:8080", "http://shard-2:8080"}, {"http://shard-2:8080"}},
		"an alias that is the router":                 {{"http://shard-1:8080"}, {"http://router:8080"}},
		"two shards on one host":                      {{"http://s:8080"}, {"http://s:8080"}},
	} {
		t.Run(name, func(t *testing.T) {
			m := &manifest.Manifest{TotalLines: 2, Shards: []manifest.Shard{
				{Name: "shard-1", First: 1, Last: 1, Data: "a.txt", URLs: urls[0]},
				{Name: "shard-2", First: 2, Last: 2, Data: "b.txt", URLs: urls[1]},
			}}
			_, err := Compose(m, ComposeOptions{})
			assert.ErrorIs(t, err, ErrCannotRender)
			assert.ErrorContains(t, err, "is claimed by")
		})
	}
}

// TestComposeReplicasAreContainers: each host a shard's URLs name is a
// container of its own, on its own port, so that a replica that fails
// leaves the others serving.
func TestComposeReplicasAreContainers(t *testing.T) {
	m := &manifest.Manifest{TotalLines: 2, Shards: []manifest.Shard{
		{Name: "shard-1", First: 1, Last: 1, Data: "a.txt", URLs: []string{"http://shard-1:8080", "http://shard-1b:9090"}},
		{Name: "shard-2", First: 2, Last: 2, Data: "b.txt", URLs: []string{"http://two:8080"}},
	}}
	b, err := Compose(m, ComposeOptions{})
	require.NoError(t, err)
	var f parsedCompose
	require.NoError(t, strictUnmarshal(b, &f), "%s", b)
	assert.Equal(t, "8080", f.Services["shard-1"].Environment["PORT"])
	assert.Equal(t, "9090", f.Services["shard-1b"].Environment["PORT"])
	assert.Equal(t, f.Services["shard-1"].Volumes, f.Services["shard-1b"].Volumes)
	assert.Equal(t, "1", f.Services["shard-1b"].Environment["INDEX_FIRST_LINE_NUMBER"])
	assert.Empty(t, f.Services["shard-1"].Networks)
	assert.Equal(t, []string{"two"}, f.Services["shard-2"].Networks["default"].Aliases, "a lone host other than the name is an alias")
	for _, door := range []string{"nginx", "router"} {
		assert.Len(t, f.Services[door].DependsOn, 3, door)
	}
}
