// Package config reads a shard's settings from the environment with
// go-envconfig, under the reference implementation's variable names.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// ErrInvalid reports a bad setting; the message names the variable.
var ErrInvalid = errors.New("invalid setting")

// Config is a shard's configuration. Pointer fields are nil when unset.
type Config struct {
	// DataPath is the data file: the whole file or a shard's slice.
	DataPath string `env:"FILE_REPOSITORY_FILE_PATH"`
	// IndexPath is DataPath's index; empty means DataPath + "_index.txt".
	IndexPath string `env:"INDEX_FILE_PATH"`
	// First is the first line the shard serves, in the whole file's
	// numbering; nil means what the manifest beside the data file says, or
	// 1 (see internal/shard for the rules).
	First *int64 `env:"INDEX_FIRST_LINE_NUMBER, noinit"`
	// Last is the last line the shard serves; nil means what the manifest
	// says, or the last line the index covers.
	Last *int64 `env:"INDEX_LAST_LINE_NUMBER, noinit"`
	// TotalLines is the number of lines of the whole file, for negative
	// numbers and for telling 413 from 421; nil means what the manifest
	// says, or the entries of a whole file's index.
	TotalLines *int64 `env:"FILE_TOTAL_LINES, noinit"`
	// Port is the port to listen on.
	Port string `env:"PORT, default=8080"`
	// LogFormat is "json", "text", or empty for JSON unless stderr is a
	// terminal.
	LogFormat string `env:"LOG_FORMAT"`
	// LogLevel is debug, info, warn or error; debug adds a log line per
	// request.
	LogLevel slog.Level `env:"LOG_LEVEL, default=info"`
}

// Load reads the configuration from l (envconfig.OsLookuper() for the
// process environment) and validates it, reporting every problem at once.
// A variable set to "" counts as unset.
func Load(ctx context.Context, l envconfig.Lookuper) (*Config, error) {
	var c Config
	l = unsetIfEmpty{l}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, NameSetting[Config](err, l))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.IndexPath == "" {
		c.IndexPath = c.DataPath + "_index.txt"
	}
	return &c, nil
}

// unsetIfEmpty makes a variable set to the empty string count as unset, as
// a compose file's `VAR=` means: it gets its default, or is reported
// missing if it is required. go-envconfig alone would take "" as 0 for a
// number with a default.
type unsetIfEmpty struct{ envconfig.Lookuper }

func (u unsetIfEmpty) Lookup(key string) (string, bool) {
	v, ok := u.Lookuper.Lookup(key)
	return v, ok && v != ""
}

// Validate checks the settings against each other.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if c.DataPath == "" {
		bad("FILE_REPOSITORY_FILE_PATH is required: the data file to serve")
	}
	if c.First != nil && *c.First < 1 {
		bad("INDEX_FIRST_LINE_NUMBER=%d: lines are numbered from 1", *c.First)
	}
	switch {
	case c.Last == nil:
	case c.First != nil && *c.First >= 1 && *c.Last < *c.First:
		bad("INDEX_LAST_LINE_NUMBER=%d is before INDEX_FIRST_LINE_NUMBER=%d", *c.Last, *c.First)
	case *c.Last < 0:
		bad("INDEX_LAST_LINE_NUMBER=%d is below 0", *c.Last)
	}
	if c.TotalLines != nil {
		switch {
		case *c.TotalLines < 0:
			bad("FILE_TOTAL_LINES=%d is below 0", *c.TotalLines)
		case c.Last != nil && *c.TotalLines < *c.Last:
			bad("FILE_TOTAL_LINES=%d is below INDEX_LAST_LINE_NUMBER=%d", *c.TotalLines, *c.Last)
		}
	}
	if p, err := strconv.Atoi(c.Port); err != nil || p < 1 || p > 65535 {
		bad("PORT=%q is not a port number (1-65535)", c.Port)
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT=%q: use json or text", c.LogFormat)
	}
	return errors.Join(errs...)
}

// NameSetting rewrites an error of go-envconfig about a field of the
// struct T, which names the struct field, so that it names the variable the
// user set and its value. Other errors come back as they are.
func NameSetting[T any](err error, l envconfig.Lookuper) error {
	t := reflect.TypeFor[T]()
	for i := range t.NumField() {
		f := t.Field(i)
		why, ok := strings.CutPrefix(err.Error(), f.Name+": ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		value, _ := l.Lookup(name)
		return fmt.Errorf("%s=%q: %s", name, value, why)
	}
	return err
}
