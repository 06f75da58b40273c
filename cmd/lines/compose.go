package main

import (
	"context"
	"errors"
	"io"
)

// runCompose is not written yet.
func runCompose(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines compose: not implemented yet")
}
