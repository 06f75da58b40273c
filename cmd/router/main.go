// Command router is the Go front door of the shards: it reads the shard
// manifest, serves GET /lines/{n} by proxying to a healthy replica of the
// shard that owns line n, and on SIGTERM or SIGINT turns /readyz to 503,
// serves on for the drain delay (none by default), then lets requests in
// flight finish for up to 10 seconds, and exits 0.
//
//	router --manifest FILE [--listen ADDR] [--response-timeout D]
//	       [--connect-timeout D] [--health-path P] [--drain-delay D]
//	       [--log-level L] [--log-format F]
//
// Every flag has an environment variable, which the flag overrides:
// ROUTER_MANIFEST, PORT (listen on ":PORT"), ROUTER_RESPONSE_TIMEOUT,
// ROUTER_CONNECT_TIMEOUT, ROUTER_HEALTH_PATH, ROUTER_DRAIN_DELAY,
// LOG_LEVEL, LOG_FORMAT.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/lineserver/lineserver/internal/logging"
	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/router"
)

// gracePeriod bounds the wait for requests in flight after SIGTERM; it is
// what Cloud Run gives a container between SIGTERM and SIGKILL.
const gracePeriod = 10 * time.Second

// errUsage marks a mistake in the command line or settings; it exits 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(ctx, args, envconfig.OsLookuper())
	var help helpError
	if errors.As(err, &help) {
		_, err = fmt.Fprintln(stdout, "usage:", string(help))
		return err
	}
	if err != nil {
		return err
	}
	m, err := manifest.Load(cfg.Manifest)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, m, ln, logging.New(stderr, cfg.LogFormat, cfg.LogLevel))
}

// serve routes requests on ln until ctx ends, then drains.
func serve(ctx context.Context, cfg *config, m *manifest.Manifest, ln net.Listener, log *slog.Logger) error {
	rt, err := router.New(m, router.Options{Logger: log, ResponseHeaderTimeout: cfg.ResponseTimeout, ConnectTimeout: cfg.ConnectTimeout, HealthPath: cfg.HealthPath})
	if err != nil {
		ln.Close()
		return err
	}
	fast := &router.Server{Router: rt}
	health, stopHealth := context.WithCancel(context.Background())
	defer stopHealth()
	go rt.Run(health)

	served := make(chan error, 1)
	go func() { served <- fast.Serve(ln) }()
	log.Info("router listening", "addr", ln.Addr().String(), "shards", len(m.Shards), "total_lines", m.TotalLines)
	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	rt.Drain()
	log.Info("router draining", "delay", cfg.DrainDelay.String(), "grace", gracePeriod.String())
	if cfg.DrainDelay > 0 {
		// Serve on, /readyz at 503, while a load balancer notices; a
		// second signal ends the wait.
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		select {
		case <-time.After(cfg.DrainDelay):
		case <-again:
		case err := <-served:
			signal.Stop(again)
			return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
		}
		signal.Stop(again)
	}
	sctx, cancel := context.WithTimeout(context.Background(), gracePeriod)
	defer cancel()
	if err := fast.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the end of the grace period", "error", err)
		fast.Close()
	}
	log.Info("router stopped")
	return nil
}
