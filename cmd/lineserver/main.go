// Command lineserver runs the shard function locally through the Functions
// Framework for Go: it opens the shard first (a bad setting or file stops
// it at once, exit status 1), serves on PORT (default 8080), and on SIGTERM
// or SIGINT turns /readyz to 503, lets requests in flight finish for up to
// 10 seconds, and exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/lineserver/lineserver"
)

// gracePeriod is what Cloud Run gives a container between SIGTERM and
// SIGKILL.
const gracePeriod = 10 * time.Second

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "lineserver:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "lineserver:", err)
		os.Exit(1)
	}
}

// errUsage marks arguments lineserver does not take; it exits 2.
var errUsage = errors.New("usage: [SETTING=VALUE ...] lineserver (the settings are environment variables; lineserver --help lists them)")

// usage is what --help prints.
const usage = `usage: FILE_REPOSITORY_FILE_PATH=FILE [SETTING=VALUE ...] lineserver

Serves the lines of FILE over HTTP (GET /lines/{n}, /lines/{a}..{b},
/healthz, /readyz, /metrics) through the Functions Framework for Go. It
opens and checks FILE and its index first: a bad setting or file stops it
with one message, exit status 1. SIGTERM or SIGINT drains it (up to 10 s)
and it exits 0. Settings are environment variables:

  FILE_REPOSITORY_FILE_PATH  the data file FILE: a whole file, or a slice
                             written by lines shard (required)
  INDEX_FILE_PATH            its index (default FILE_index.txt; build it
                             with: lines index FILE)
  INDEX_FIRST_LINE_NUMBER    first line served (default: what manifest.json
                             beside a slice says, or 1)
  INDEX_LAST_LINE_NUMBER     last line served (default: the manifest's, or
                             the last line the index covers)
  FILE_TOTAL_LINES           lines of the whole file (default: the
                             manifest's, or a whole file's index entries)
  PORT                       port to listen on (default 8080)
  LOG_FORMAT                 json or text (default json, text on a terminal)
  LOG_LEVEL                  debug, info, warn or error (default info)

Settings that are set must agree with the files and the manifest, or the
shard refuses to start. Example:

  bin/lines index big.txt && FILE_REPOSITORY_FILE_PATH=big.txt bin/lineserver
`

func run(args []string, stdout, stderr io.Writer) error {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			_, err := io.WriteString(stdout, usage)
			return err
		}
	}
	if len(args) > 0 {
		return fmt.Errorf("%w: it takes no argument, got %q", errUsage, args)
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "Lines")
	}
	srv, err := lineserver.Start()
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	srv.Log().Info("listening", "address", ":"+srv.Port(), "url", "http://localhost:"+srv.Port())
	go func() { served <- funcframework.Start(srv.Port()) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving on port %s: %w", srv.Port(), err)
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), gracePeriod)
	defer cancel()
	if err := srv.Drain(ctx); err != nil {
		fmt.Fprintln(stderr, "lineserver: requests still in flight after", gracePeriod)
	}
	return nil
}
