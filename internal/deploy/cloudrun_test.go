package deploy

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/manifest"
)

func TestCloudRunGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts CloudRunOptions
	}{
		{"image", CloudRunOptions{Image: "europe-west1-docker.pkg.dev/my-project/lineserver/lineserver:v1", DataDir: "/srv/sample"}},
		{"bucket", CloudRunOptions{Image: "europe-west1-docker.pkg.dev/my-project/lineserver/lineserver:v1", GCSBucket: "my-lines", MinInstances: 1, MaxInstances: 10, CPU: "2", Memory: "1Gi", Concurrency: 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			services, err := CloudRun(sample(t), tc.opts)
			require.NoError(t, err)
			require.Len(t, services, 3)
			for _, s := range services {
				golden(t, "cloudrun-"+tc.name+"/"+s.Name+".yaml", s.YAML)
			}
		})
	}
}

// parsedService is a rendered service read back with the fields of the
// Knative Service that Cloud Run reads; a field it does not know fails.
type parsedService struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				ContainerConcurrency int `yaml:"containerConcurrency"`
				Containers           []struct {
					Image string `yaml:"image"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					Env []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Resources struct {
						Limits map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					StartupProbe  parsedProbe `yaml:"startupProbe"`
					LivenessProbe parsedProbe `yaml:"livenessProbe"`
					VolumeMounts  []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						ReadOnly  bool   `yaml:"readOnly"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name string `yaml:"name"`
					CSI  struct {
						Driver           string            `yaml:"driver"`
						ReadOnly         bool              `yaml:"readOnly"`
						VolumeAttributes map[string]string `yaml:"volumeAttributes"`
					} `yaml:"csi"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type parsedProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port int    `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

func TestCloudRunFields(t *testing.T) {
	m := sample(t)
	for _, tc := range []struct {
		name        string
		opts        CloudRunOptions
		annotations map[string]string
		cpu, memory string
		concurrency int
		dataDir     string
	}{
		{
			name: "defaults",
			opts: CloudRunOptions{Image: "img"},
			annotations: map[string]string{
				"autoscaling.knative.dev/minScale":     "0",
				"run.googleapis.com/startup-cpu-boost": "true",
			},
			cpu: "1", memory: "512Mi", concurrency: 1000, dataDir: "/data",
		},
		{
			name: "every option",
			opts: CloudRunOptions{Image: "img", MinInstances: 2, MaxInstances: 5, CPU: "4", Memory: "2Gi", Concurrency: 80, GCSBucket: "bkt", DataDir: "/mnt/lines"},
			annotations: map[string]string{
				"autoscaling.knative.dev/minScale":         "2",
				"autoscaling.knative.dev/maxScale":         "5",
				"run.googleapis.com/startup-cpu-boost":     "true",
				"run.googleapis.com/execution-environment": "gen2",
			},
			cpu: "4", memory: "2Gi", concurrency: 80, dataDir: "/mnt/lines",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			services, err := CloudRun(m, tc.opts)
			require.NoError(t, err)
			require.Len(t, services, len(m.Shards))
			for i, svc := range services {
				sh := m.Shards[i]
				assert.Equal(t, sh.Name, svc.Name)
				var s parsedService
				require.NoError(t, strictUnmarshal(svc.YAML, &s), "%s", svc.YAML)

				assert.Equal(t, "serving.knative.dev/v1", s.APIVersion)
				assert.Equal(t, "Service", s.Kind)
				assert.Equal(t, sh.Name, s.Metadata.Name)
				assert.Equal(t, map[string]string{"app": "lineserver"}, s.Metadata.Labels)
				tmpl := s.Spec.Template
				assert.Equal(t, tc.annotations, tmpl.Metadata.Annotations)
				assert.Equal(t, tc.concurrency, tmpl.Spec.ContainerConcurrency)
				require.Len(t, tmpl.Spec.Containers, 1)
				c := tmpl.Spec.Containers[0]
				assert.Equal(t, "img", c.Image)
				require.Len(t, c.Ports, 1)
				assert.Equal(t, "http1", c.Ports[0].Name)
				assert.Equal(t, 8080, c.Ports[0].ContainerPort)
				env := map[string]string{}
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				assert.Equal(t, map[string]string{
					"FILE_REPOSITORY_FILE_PATH": tc.dataDir + "/sample.txt",
					"INDEX_FILE_PATH":           tc.dataDir + "/sample.txt_index.txt",
					"INDEX_FIRST_LINE_NUMBER":   strconv.FormatInt(sh.First, 10),
					"INDEX_LAST_LINE_NUMBER":    strconv.FormatInt(sh.Last, 10),
					"FILE_TOTAL_LINES":          "300",
				}, env, "Cloud Run sets PORT itself and refuses it in env")
				assert.Equal(t, map[string]string{"cpu": tc.cpu, "memory": tc.memory}, c.Resources.Limits)
				assert.Equal(t, "/readyz", c.StartupProbe.HTTPGet.Path)
				assert.Equal(t, 8080, c.StartupProbe.HTTPGet.Port)
				assert.Equal(t, 1, c.StartupProbe.PeriodSeconds)
				assert.Equal(t, 1, c.StartupProbe.TimeoutSeconds)
				assert.Equal(t, 30, c.StartupProbe.FailureThreshold)
				assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
				assert.Equal(t, 8080, c.LivenessProbe.HTTPGet.Port)
				assert.Equal(t, 10, c.LivenessProbe.PeriodSeconds)
				assert.LessOrEqual(t, c.LivenessProbe.TimeoutSeconds, c.LivenessProbe.PeriodSeconds)
				assert.Equal(t, 3, c.LivenessProbe.FailureThreshold)

				if tc.opts.GCSBucket == "" {
					assert.Empty(t, c.VolumeMounts)
					assert.Empty(t, tmpl.Spec.Volumes)
					continue
				}
				require.Len(t, c.VolumeMounts, 1)
				assert.Equal(t, "data", c.VolumeMounts[0].Name)
				assert.Equal(t, tc.dataDir, c.VolumeMounts[0].MountPath)
				assert.True(t, c.VolumeMounts[0].ReadOnly)
				require.Len(t, tmpl.Spec.Volumes, 1)
				v := tmpl.Spec.Volumes[0]
				assert.Equal(t, "data", v.Name)
				assert.Equal(t, "gcsfuse.run.googleapis.com", v.CSI.Driver)
				assert.True(t, v.CSI.ReadOnly)
				assert.Equal(t, map[string]string{"bucketName": "bkt"}, v.CSI.VolumeAttributes)
			}
		})
	}
}

func TestCloudRunPaths(t *testing.T) {
	m := &manifest.Manifest{TotalLines: 3, Shards: []manifest.Shard{
		{Name: "a", First: 1, Last: 1, Data: "sub/a.txt", URLs: []string{"http://a"}},
		{Name: "b", First: 2, Last: 2, Data: "/abs/b.txt", Index: "idx/b.idx", URLs: []string{"http://b"}},
		{Name: "c", First: 3, Last: 3, Data: "../c.txt", URLs: []string{"http://c"}},
	}}
	_, err := CloudRun(m, CloudRunOptions{Image: "img"})
	assert.ErrorIs(t, err, ErrCannotRender, "a path outside the manifest's folder")

	m.Shards[2].Data = "c.txt"
	services, err := CloudRun(m, CloudRunOptions{Image: "img"})
	require.NoError(t, err)
	for i, want := range [][2]string{
		{"/data/sub/a.txt", "/data/sub/a.txt_index.txt"},
		{"/data/b.txt", "/data/idx/b.idx"},
		{"/data/c.txt", "/data/c.txt_index.txt"},
	} {
		var s parsedService
		require.NoError(t, strictUnmarshal(services[i].YAML, &s))
		env := s.Spec.Template.Spec.Containers[0].Env
		assert.Equal(t, want[0], env[0].Value)
		assert.Equal(t, want[1], env[1].Value)
	}
}

func TestCloudRunRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts CloudRunOptions
	}{
		{"no image", CloudRunOptions{}},
		{"min above max", CloudRunOptions{Image: "i", MinInstances: 3, MaxInstances: 2}},
		{"negative", CloudRunOptions{Image: "i", MinInstances: -1}},
		{"concurrency above 1000", CloudRunOptions{Image: "i", Concurrency: 1001}},
		{"relative data dir", CloudRunOptions{Image: "i", DataDir: "data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CloudRun(sample(t), tc.opts)
			assert.ErrorIs(t, err, ErrCannotRender)
		})
	}
}
