// Package manifest reads and checks the shard manifest, the JSON file that
// drives the router, the NGINX config, the compose file and the Cloud Run
// services, and finds the shard that owns a line.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// ErrInvalid reports a manifest that breaks one of its rules.
var ErrInvalid = errors.New("invalid manifest")

// Manifest lists the shards of one data file. Shards are contiguous: the
// first starts at line 1, each starts after the previous one's last line,
// and the last ends at TotalLines.
type Manifest struct {
	TotalLines int64   `json:"total_lines"`
	Shards     []Shard `json:"shards"`

	// Dir is the folder that relative paths are relative to: the manifest
	// file's folder when read with Load, empty (the working directory)
	// otherwise. It is not part of the JSON.
	Dir string `json:"-"`
}

// Shard is one shard: a contiguous range of line numbers, the files that
// hold them, and the URLs of its replicas.
type Shard struct {
	Name  string `json:"name"`
	First int64  `json:"first"`
	Last  int64  `json:"last"`
	// Data is the shard's data file: the whole file or its slice.
	Data string `json:"data"`
	// Index is Data's index; empty means Data + "_index.txt".
	Index string   `json:"index,omitempty"`
	URLs  []string `json:"urls"`
}

// namePattern keeps shard names usable as DNS labels, compose services,
// NGINX upstreams and Cloud Run services.
var namePattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$`)

// Load reads and validates the manifest at path.
func Load(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	m.Dir = filepath.Dir(path)
	return m, nil
}

// Parse decodes and validates a manifest. Unknown fields are refused, so a
// misspelt field is an error rather than a silent default.
func Parse(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every rule and reports every broken one.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if m.TotalLines < 0 {
		bad("total_lines is %d, below 0", m.TotalLines)
	}
	if len(m.Shards) == 0 {
		bad("no shards")
	}
	names := make(map[string]bool)
	next := int64(1)
	for i, s := range m.Shards {
		where := fmt.Sprintf("shards[%d] (%q)", i, s.Name)
		if !namePattern.MatchString(s.Name) {
			bad("%s: name must be 1-49 lowercase letters, digits or '-', starting with a letter and not ending with '-'", where)
		}
		if names[s.Name] {
			bad("%s: name used twice", where)
		}
		names[s.Name] = true
		if s.First != next {
			bad("%s: first is %d, want %d (shards are contiguous from line 1)", where, s.First, next)
		}
		empty := m.TotalLines == 0 && len(m.Shards) == 1 && s.First == 1 && s.Last == 0
		if s.Last < s.First && !empty {
			bad("%s: last %d is before first %d", where, s.Last, s.First)
		}
		next = s.Last + 1
		if s.Data == "" {
			bad("%s: data is empty", where)
		}
		if len(s.URLs) == 0 {
			bad("%s: no urls", where)
		}
		for _, u := range s.URLs {
			if err := checkURL(u); err != nil {
				bad("%s: url %q: %v", where, u, err)
			}
		}
	}
	if len(m.Shards) > 0 && next-1 != m.TotalLines {
		bad("the shards end at line %d but total_lines is %d", next-1, m.TotalLines)
	}
	return errors.Join(errs...)
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("credentials are not allowed")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("a path, query or fragment is not allowed")
	}
	return nil
}

// Find returns the position in Shards of the shard that owns line n, a
// positive line number of at most TotalLines.
func (m *Manifest) Find(n int64) (int, bool) {
	i := sort.Search(len(m.Shards), func(i int) bool { return m.Shards[i].Last >= n })
	if n < 1 || i == len(m.Shards) || n < m.Shards[i].First {
		return 0, false
	}
	return i, true
}

// DataPath is the path of shard i's data file, resolved against Dir.
func (m *Manifest) DataPath(i int) string { return m.path(m.Shards[i].Data) }

// IndexPath is the path of shard i's index, resolved against Dir.
func (m *Manifest) IndexPath(i int) string {
	if m.Shards[i].Index == "" {
		return m.DataPath(i) + "_index.txt"
	}
	return m.path(m.Shards[i].Index)
}

func (m *Manifest) path(p string) string {
	if filepath.IsAbs(p) || m.Dir == "" {
		return p
	}
	return filepath.Join(m.Dir, p)
}

// Write writes m as indented JSON.
func (m *Manifest) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}
