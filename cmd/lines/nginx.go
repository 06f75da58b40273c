package main

import (
	"context"
	"errors"
	"io"
)

// runNginx is not written yet.
func runNginx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines nginx: not implemented yet")
}
