package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	settings "github.com/lineserver/lineserver/internal/config"
)

// config is the router's settings: environment variables first, flags over
// them.
type config struct {
	// Manifest is the shard manifest's path.
	Manifest string `env:"ROUTER_MANIFEST"`
	// Port makes the default Listen ":PORT"; unset means ":8080".
	Port string `env:"PORT"`
	// Listen is the address to listen on (flag only; PORT sets its default).
	Listen string
	// ResponseTimeout bounds the wait for a shard's response headers before
	// the router answers 504.
	ResponseTimeout time.Duration `env:"ROUTER_RESPONSE_TIMEOUT, default=10s"`
	// ConnectTimeout bounds a connection to a replica; a replica that does
	// not accept in time is tried once more, or another one is.
	ConnectTimeout time.Duration `env:"ROUTER_CONNECT_TIMEOUT, default=300ms"`
	// HealthPath is the path of each replica the router checks: /readyz,
	// or /ready for Cloud Run services, whose front end keeps some paths
	// ending in z for itself.
	HealthPath string `env:"ROUTER_HEALTH_PATH, default=/readyz"`
	// DrainDelay is how long the router goes on serving after SIGTERM, with
	// /readyz at 503, before it stops accepting: time for a load balancer
	// to take it out of rotation.
	DrainDelay time.Duration `env:"ROUTER_DRAIN_DELAY, default=0s"`
	// LogFormat is "json", "text", or empty for JSON unless stderr is a
	// terminal.
	LogFormat string `env:"LOG_FORMAT"`
	// LogLevel is debug, info, warn or error; debug logs every request.
	LogLevel slog.Level `env:"LOG_LEVEL, default=info"`
}

// loadConfig reads the settings from l (envconfig.OsLookuper() for the
// process environment) and then args, which win. Its errors wrap errUsage.
func loadConfig(ctx context.Context, args []string, l envconfig.Lookuper) (*config, error) {
	var c config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, settings.NameSetting[config](err, l))
	}
	c.Listen = ":8080"
	if c.Port != "" {
		c.Listen = ":" + c.Port
	}
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Manifest, "manifest", c.Manifest, "the shard manifest (ROUTER_MANIFEST)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "the address to listen on (\":$PORT\")")
	fs.DurationVar(&c.ResponseTimeout, "response-timeout", c.ResponseTimeout, "the wait for a shard's response headers before a 504 (ROUTER_RESPONSE_TIMEOUT)")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", c.ConnectTimeout, "the wait for a connection to a shard (ROUTER_CONNECT_TIMEOUT)")
	fs.StringVar(&c.HealthPath, "health-path", c.HealthPath, "the path checked on each replica; /ready for Cloud Run services (ROUTER_HEALTH_PATH)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "how long to serve on after SIGTERM with /readyz at 503 (ROUTER_DRAIN_DELAY)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text; empty: text on a terminal (LOG_FORMAT)")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, helpError("router --manifest FILE [--listen ADDR]" + flagHelp(fs))
		}
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if c.Manifest == "" {
		errs = append(errs, errors.New("--manifest or ROUTER_MANIFEST is required: the shard manifest"))
	}
	if c.ResponseTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--response-timeout %v: must be above 0", c.ResponseTimeout))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--connect-timeout %v: must be above 0", c.ConnectTimeout))
	}
	if c.DrainDelay < 0 || c.DrainDelay >= gracePeriod {
		errs = append(errs, fmt.Errorf("--drain-delay %v: must be at least 0 and below the %v grace period", c.DrainDelay, gracePeriod))
	}
	if !strings.HasPrefix(c.HealthPath, "/") || strings.ContainsAny(c.HealthPath, "?# ") {
		errs = append(errs, fmt.Errorf("--health-path %q: must be a path starting with /", c.HealthPath))
	}
	switch c.LogFormat {
	case "", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: must be json or text", c.LogFormat))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return &c, nil
}

// helpError is the usage that --help asks for: run prints it to stdout
// and exits 0.
type helpError string

func (h helpError) Error() string { return string(h) }

func flagHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.VisitAll(func(f *flag.Flag) { fmt.Fprintf(&b, "\n  --%s\t%s (default %q)", f.Name, f.Usage, f.DefValue) })
	return b.String()
}
