// Package lineserver is one shard of the line server: an HTTP function, on
// the Functions Framework for Go, that serves any line of its range of a
// large immutable text file by number, exactly as it is in the file.
//
// The function is registered as "Lines". It opens its shard at cold start
// from the environment (see internal/config for the variables).
package lineserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/sethvargo/go-envconfig"

	"github.com/lineserver/lineserver/internal/config"
	"github.com/lineserver/lineserver/internal/logging"
	"github.com/lineserver/lineserver/internal/problem"
	"github.com/lineserver/lineserver/internal/shard"
)

func init() { functions.HTTP("Lines", serveLines) }

// cold is the shard the registered function serves, opened once: on the
// first request, or before listening when a binary calls Start.
var cold coldShard

type coldShard struct {
	once   sync.Once
	srv    *Server
	err    error
	logged sync.Once
}

func (c *coldShard) open() (*Server, error) {
	c.once.Do(func() { c.srv, c.err = Open(context.Background(), envconfig.OsLookuper(), os.Stderr) })
	return c.srv, c.err
}

func serveLines(w http.ResponseWriter, r *http.Request) {
	s, err := cold.open()
	if err != nil {
		// Served by a framework that did not call Start: the reason goes to
		// the log once, and every request gets a 503.
		cold.logged.Do(func() {
			logging.New(os.Stderr, os.Getenv("LOG_FORMAT"), slog.LevelInfo).Error("cold start failed", "error", err)
		})
		problem.Write(w, http.StatusServiceUnavailable, "the shard could not open its files; the reason is in its log")
		return
	}
	s.ServeHTTP(w, r)
}

// Start opens the shard that the registered function serves, once, and
// returns it. A binary calls it before it starts listening, so that a bad
// setting or file stops the process at once; it reports the error itself,
// which Start does not log.
func Start() (*Server, error) { return cold.open() }

// Open reads the configuration from l, opens and checks the shard's files,
// and returns its server, which logs to logw.
func Open(ctx context.Context, l envconfig.Lookuper, logw io.Writer) (*Server, error) {
	cfg, err := config.Load(ctx, l)
	if err != nil {
		return nil, err
	}
	sh, err := shard.Open(shard.Options{
		DataPath: cfg.DataPath, IndexPath: cfg.IndexPath,
		First: unset0(cfg.First), Last: unset0(cfg.Last), Total: unset0(cfg.TotalLines),
	})
	if err != nil {
		return nil, err
	}
	if cfg.TotalLines != nil && *cfg.TotalLines < sh.Last() {
		// Open takes 0 for unset; a FILE_TOTAL_LINES set to 0 is a mistake.
		sh.Close()
		return nil, fmt.Errorf("%w: FILE_TOTAL_LINES=%d is below the last line served, %d", config.ErrInvalid, *cfg.TotalLines, sh.Last())
	}
	log := logging.New(logw, cfg.LogFormat, cfg.LogLevel)
	total := any(sh.Total())
	if !sh.TotalKnown() {
		total = "unknown: negative numbers and numbers past last answer 421"
	}
	log.Info("shard open", "data", cfg.DataPath, "index", cfg.IndexPath, "layout", sh.Layout(),
		"first", sh.First(), "last", sh.Last(), "total_lines", total)
	return NewServer(sh, cfg.Port, log), nil
}

// unset0 is the value of a setting for shard.Options, where 0 is unset.
func unset0(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
