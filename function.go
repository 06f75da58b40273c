// Package lineserver is one shard of the line server: an HTTP function, on
// the Functions Framework for Go, that serves any line of its range of a
// large immutable text file by number, exactly as it is in the file.
//
// The function is registered as "Lines". It opens its shard at cold start
// from the environment (see internal/config for the variables).
package lineserver

import (
	"context"
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

// coldStart opens the shard once, on the first request or when a binary
// calls Start, and keeps the error if that fails.
var coldStart = sync.OnceValues(func() (*Server, error) {
	s, err := Open(context.Background(), envconfig.OsLookuper(), os.Stderr)
	if err != nil {
		logging.New(os.Stderr, "", slog.LevelInfo).Error("cold start failed", "error", err)
	}
	return s, err
})

func serveLines(w http.ResponseWriter, r *http.Request) {
	s, err := coldStart()
	if err != nil {
		problem.Write(w, http.StatusServiceUnavailable, "the shard could not open its files; the reason is in its log")
		return
	}
	s.ServeHTTP(w, r)
}

// Start opens the shard that the registered function serves, once, and
// returns it. A binary calls it before it starts listening, so that a bad
// setting or file stops the process at once.
func Start() (*Server, error) { return coldStart() }

// Open reads the configuration from l, opens and checks the shard's files,
// and returns its server, which logs to logw.
func Open(ctx context.Context, l envconfig.Lookuper, logw io.Writer) (*Server, error) {
	cfg, err := config.Load(ctx, l)
	if err != nil {
		return nil, err
	}
	var last, total int64
	if cfg.Last != nil {
		last = *cfg.Last
	}
	if cfg.TotalLines != nil {
		total = *cfg.TotalLines
	}
	sh, err := shard.Open(shard.Options{
		DataPath: cfg.DataPath, IndexPath: cfg.IndexPath,
		First: cfg.First, Last: last, Total: total,
	})
	if err != nil {
		return nil, err
	}
	log := logging.New(logw, cfg.LogFormat, cfg.LogLevel)
	log.Info("shard open", "data", cfg.DataPath, "index", cfg.IndexPath,
		"first", sh.First(), "last", sh.Last(), "total_lines", sh.Total())
	return NewServer(sh, cfg.Port, log), nil
}
