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
	const use = "lines nginx MANIFEST [--listen ADDR] [--open-files N]"
	fs := flag.NewFlagSet("nginx", flag.ContinueOnError)
	listen := fs.String("listen", nginx.DefaultListen, "where NGINX listens: PORT, :PORT, HOST:PORT or [IPv6]:PORT")
	files := fs.Int("open-files", 0, fmt.Sprintf("open files per NGINX worker, half of them connections; 0: the hard limit of open files here (ulimit -Hn), at most %d, so that NGINX started here can set it", nginx.DefaultOpenFiles))
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
	if *files == 0 {
		*files = min(hardOpenFiles(), nginx.DefaultOpenFiles)
	}
	var b bytes.Buffer
	err = nginx.Render(&b, m, nginx.Options{Listen: *listen, OpenFiles: *files})
	switch {
	case errors.Is(err, nginx.ErrListen):
		return fmt.Errorf("%w: %s: --listen: %w", errUsage, use, err)
	case errors.Is(err, nginx.ErrOpenFiles):
		return fmt.Errorf("%w: %s: --open-files: %w", errUsage, use, err)
	case err != nil:
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	_, err = stdout.Write(b.Bytes())
	return err
}
