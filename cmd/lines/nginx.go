package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/lineserver/lineserver/internal/manifest"
	"github.com/lineserver/lineserver/nginx"
)

// runNginx prints the nginx.conf of a manifest.
func runNginx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "lines nginx MANIFEST [--listen ADDR]"
	fs := flag.NewFlagSet("nginx", flag.ContinueOnError)
	listen := fs.String("listen", nginx.DefaultListen, "where NGINX listens: PORT, :PORT, HOST:PORT or [IPv6]:PORT")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: %s: want one MANIFEST, got %d arguments", errUsage, use, len(pos))
	}
	m, err := manifest.Load(pos[0])
	if err != nil {
		return err
	}
	var b bytes.Buffer
	err = nginx.Render(&b, m, nginx.Options{Listen: *listen})
	switch {
	case errors.Is(err, nginx.ErrListen):
		return fmt.Errorf("%w: %s: --listen: %w", errUsage, use, err)
	case err != nil:
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	_, err = stdout.Write(b.Bytes())
	return err
}
