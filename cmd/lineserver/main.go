// Command lineserver runs the shard function locally through the Functions
// Framework for Go: it opens the shard first (a bad setting or file stops
// it at once, exit status 1), serves on PORT (default 8080), and on SIGTERM
// or SIGINT turns /readyz to 503, lets requests in flight finish for up to
// 10 seconds, and exits 0.
package main

import (
	"context"
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
	if err := run(os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lineserver:", err)
		os.Exit(1)
	}
}

func run(stderr io.Writer) error {
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
