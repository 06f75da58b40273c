package deploy

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lineserver/lineserver/internal/manifest"
)

// CloudRunOptions are the settings of CloudRun. Image is required; a zero
// value elsewhere means Cloud Run's usual choice or the default given.
type CloudRunOptions struct {
	// Image is the shard function's image, as Cloud Run pulls it.
	Image string
	// MinInstances keeps that many instances warm; 0 scales to zero.
	MinInstances int
	// MaxInstances caps the instances; 0 leaves Cloud Run's default.
	MaxInstances int
	// CPU and Memory are the container's limits; empty means "1" and
	// "512Mi".
	CPU, Memory string
	// Concurrency is the requests one instance takes at once; 0 means 1000.
	Concurrency int
	// GCSBucket, when set, is mounted read-only at DataDir through Cloud
	// Storage FUSE: upload the manifest's folder to it. Empty means the
	// files are in the image.
	GCSBucket string
	// DataDir is the folder in the container that holds the manifest's
	// folder; empty means "/data".
	DataDir string
}

func (o CloudRunOptions) withDefaults() CloudRunOptions {
	if o.CPU == "" {
		o.CPU = "1"
	}
	if o.Memory == "" {
		o.Memory = "512Mi"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1000
	}
	if o.DataDir == "" {
		o.DataDir = "/data"
	}
	return o
}

func (o CloudRunOptions) validate() error {
	var errs []error
	if o.Image == "" {
		errs = append(errs, errors.New("the image is required"))
	}
	if o.MinInstances < 0 || o.MaxInstances < 0 || o.Concurrency < 0 {
		errs = append(errs, errors.New("instances and concurrency must not be negative"))
	}
	if o.MaxInstances > 0 && o.MinInstances > o.MaxInstances {
		errs = append(errs, fmt.Errorf("min instances %d is above max instances %d", o.MinInstances, o.MaxInstances))
	}
	if o.Concurrency > 1000 {
		errs = append(errs, fmt.Errorf("concurrency %d is above Cloud Run's 1000", o.Concurrency))
	}
	if !path.IsAbs(o.DataDir) {
		errs = append(errs, fmt.Errorf("data dir %q is not an absolute path", o.DataDir))
	}
	return errors.Join(errs...)
}

// Service is one rendered Cloud Run service.
type Service struct {
	// Name is the service's name, the shard's name.
	Name string
	// YAML is the Knative Service that `gcloud run services replace` takes.
	YAML []byte
}

// The Knative Service, as far as Cloud Run reads it.
type (
	knService struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   knMetadata `yaml:"metadata"`
		Spec       struct {
			Template knTemplate `yaml:"template"`
		} `yaml:"spec"`
	}
	knMetadata struct {
		Name        string            `yaml:"name,omitempty"`
		Labels      map[string]string `yaml:"labels,omitempty"`
		Annotations map[string]string `yaml:"annotations,omitempty"`
	}
	knTemplate struct {
		Metadata knMetadata     `yaml:"metadata"`
		Spec     knRevisionSpec `yaml:"spec"`
	}
	knRevisionSpec struct {
		ContainerConcurrency int           `yaml:"containerConcurrency"`
		Containers           []knContainer `yaml:"containers"`
		Volumes              []knVolume    `yaml:"volumes,omitempty"`
	}
	knContainer struct {
		Image        string          `yaml:"image"`
		Ports        []knPort        `yaml:"ports"`
		Env          []knEnv         `yaml:"env"`
		Resources    knResources     `yaml:"resources"`
		StartupProbe knProbe         `yaml:"startupProbe"`
		Liveness     knProbe         `yaml:"livenessProbe"`
		VolumeMounts []knVolumeMount `yaml:"volumeMounts,omitempty"`
	}
	knPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	knEnv struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	}
	knResources struct {
		Limits map[string]string `yaml:"limits"`
	}
	knProbe struct {
		HTTPGet          knHTTPGet `yaml:"httpGet"`
		PeriodSeconds    int       `yaml:"periodSeconds"`
		TimeoutSeconds   int       `yaml:"timeoutSeconds"`
		FailureThreshold int       `yaml:"failureThreshold"`
	}
	knHTTPGet struct {
		Path string `yaml:"path"`
		Port int    `yaml:"port"`
	}
	knVolumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	knVolume struct {
		Name string `yaml:"name"`
		CSI  knCSI  `yaml:"csi"`
	}
	knCSI struct {
		Driver           string            `yaml:"driver"`
		ReadOnly         bool              `yaml:"readOnly"`
		VolumeAttributes map[string]string `yaml:"volumeAttributes"`
	}
)

// containerPort is where the function listens in Cloud Run: Cloud Run sets
// PORT from the port declared here, and refuses PORT in env.
const containerPort = 8080

// CloudRun renders one Knative Service per shard, named as the shard, for
// `gcloud run services replace`: the image, port 8080 named http1 (HTTP/1.1
// to the container), the shard's files and range in the environment,
// containerConcurrency, CPU and memory limits, min and max instances,
// startup CPU boost, a startup probe on /readyz and a liveness probe on
// /healthz, and with GCSBucket the bucket mounted read-only at DataDir.
//
// The shard's files are found in the container at DataDir joined with their
// paths relative to the manifest's folder.
func CloudRun(m *manifest.Manifest, opts CloudRunOptions) ([]Service, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCannotRender, err)
	}
	var services []Service
	var errs []error
	for i, s := range m.Shards {
		svc, err := cloudRunService(m, i, opts)
		if errors.Is(err, errOutside) {
			// One message says it for every shard (a --no-split manifest
			// names one data file for all).
			return nil, fmt.Errorf("shard %s: %w: Cloud Run sees only the manifest's folder (in the image, or the bucket of "+
				"--gcs-bucket, at --data-dir). Write a --no-split manifest beside its data file "+
				"(lines shard FILE --no-split --out \"$(dirname FILE)\"), or cut the file into slices in one folder "+
				"(lines shard FILE --shards N --out DIR)", s.Name, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", s.Name, err))
			continue
		}
		b, err := marshal(svc)
		if err != nil {
			return nil, err
		}
		services = append(services, Service{Name: s.Name, YAML: b})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return services, nil
}

func cloudRunService(m *manifest.Manifest, i int, opts CloudRunOptions) (knService, error) {
	s := m.Shards[i]
	data, err := containerPath(opts.DataDir, s.Data)
	if err != nil {
		return knService{}, err
	}
	index := data + "_index.txt"
	if s.Index != "" {
		if index, err = containerPath(opts.DataDir, s.Index); err != nil {
			return knService{}, err
		}
	}
	env := shardEnv(m, i, data, index)
	c := knContainer{
		Image:     opts.Image,
		Ports:     []knPort{{Name: "http1", ContainerPort: containerPort}},
		Resources: knResources{Limits: map[string]string{"cpu": opts.CPU, "memory": opts.Memory}},
		// Opening a shard checks its index on a sample of entries: it
		// takes milliseconds, and a few seconds from a cold bucket.
		StartupProbe: knProbe{HTTPGet: knHTTPGet{Path: "/readyz", Port: containerPort}, PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 30},
		Liveness:     knProbe{HTTPGet: knHTTPGet{Path: "/healthz", Port: containerPort}, PeriodSeconds: 10, TimeoutSeconds: 1, FailureThreshold: 3},
	}
	for _, k := range []string{"FILE_REPOSITORY_FILE_PATH", "INDEX_FILE_PATH", "INDEX_FIRST_LINE_NUMBER", "INDEX_LAST_LINE_NUMBER", "FILE_TOTAL_LINES"} {
		if v, ok := env[k]; ok {
			c.Env = append(c.Env, knEnv{Name: k, Value: v})
		}
	}
	annotations := map[string]string{
		"autoscaling.knative.dev/minScale":     strconv.Itoa(opts.MinInstances),
		"run.googleapis.com/startup-cpu-boost": "true",
	}
	if opts.MaxInstances > 0 {
		annotations["autoscaling.knative.dev/maxScale"] = strconv.Itoa(opts.MaxInstances)
	}
	spec := knRevisionSpec{ContainerConcurrency: opts.Concurrency}
	if opts.GCSBucket != "" {
		// Cloud Storage volumes run in the second generation.
		annotations["run.googleapis.com/execution-environment"] = "gen2"
		c.VolumeMounts = []knVolumeMount{{Name: "data", MountPath: opts.DataDir, ReadOnly: true}}
		spec.Volumes = []knVolume{{Name: "data", CSI: knCSI{
			Driver:           "gcsfuse.run.googleapis.com",
			ReadOnly:         true,
			VolumeAttributes: map[string]string{"bucketName": opts.GCSBucket},
		}}}
	}
	spec.Containers = []knContainer{c}
	svc := knService{APIVersion: "serving.knative.dev/v1", Kind: "Service"}
	svc.Metadata = knMetadata{Name: s.Name, Labels: map[string]string{"app": "lineserver"}}
	svc.Spec.Template = knTemplate{Metadata: knMetadata{Annotations: annotations}, Spec: spec}
	return svc, nil
}

// errOutside reports a file that a manifest names outside its folder.
var errOutside = errors.New("the data is outside the manifest's folder")

// containerPath is the manifest path p (relative to the manifest's folder,
// or absolute) in the container, where the manifest's folder is dir. An
// absolute p keeps its base name only.
func containerPath(dir, p string) (string, error) {
	if filepath.IsAbs(p) {
		return path.Join(dir, filepath.Base(p)), nil
	}
	p = path.Clean(filepath.ToSlash(p))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: %w: %q", ErrCannotRender, errOutside, p)
	}
	return path.Join(dir, p), nil
}
