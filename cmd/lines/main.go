// Command lines prepares data for the shards and renders their deployment:
// it builds and verifies indexes, cuts a file into shards, and prints the
// NGINX config, the compose file and the Cloud Run services of a manifest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of lines.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"index", "FILE [-o INDEX]", "build the 13-byte index of FILE", runIndex},
		{"verify", "FILE [INDEX] | MANIFEST", "check every index entry against the data", runVerify},
		{"shard", "FILE (--shards N | --lines-per-shard K) --out DIR", "cut FILE into shards with their indexes and manifest.json", runShard},
		{"nginx", "MANIFEST [--listen ADDR] [--open-files N]", "print the nginx.conf that routes to the shards", runNginx},
		{"compose", "MANIFEST", "print the compose file of the sharded set", runCompose},
		{"cloudrun", "MANIFEST --image IMAGE [--out DIR]", "write one Cloud Run service file per shard", runCloudRun},
		{"bench", "[flags]", "measure the servers under load, side by side", runBench},
	}
}

// errUsage marks a mistake in the command line; it exits with status 2.
var errUsage = errors.New("usage")

// helpError is what parseArgs returns for -h or --help: run prints the
// command's usage to standard output, and lines exits 0.
type helpError struct{ flags string }

func (h *helpError) Error() string { return "help asked for" }

// errFailed marks a check that ran and failed (verify); it exits with 1
// without the "lines:" prefix, since the command printed why.
var errFailed = errors.New("check failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errFailed):
		os.Exit(1) // the command has printed why
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "lines:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "lines:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: no command", errUsage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			var h *helpError
			if errors.As(err, &h) {
				fmt.Fprintf(stdout, "usage: lines %s %s\n\n%s.\n", c.name, c.args, c.summary)
				if h.flags != "" {
					fmt.Fprintf(stdout, "\nflags:%s\n", h.flags)
				}
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: lines COMMAND [ARGS]")
	for _, c := range commands() {
		fmt.Fprintf(w, "  lines %-9s %-34s %s\n", c.name, c.args, c.summary)
	}
}

// parseArgs parses flags that may stand before, between or after the
// positional arguments, and returns the positional ones. Its errors wrap
// errUsage.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpError{flags: flagHelp(fs)}
			}
			return nil, fmt.Errorf("%w: lines %s: %w", errUsage, fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func flagHelp(fs *flag.FlagSet) string {
	s := ""
	fs.VisitAll(func(f *flag.Flag) { s += fmt.Sprintf("\n  -%s\t%s (default %q)", f.Name, f.Usage, f.DefValue) })
	return s
}
