package main

import (
	"context"
	"errors"
	"io"
)

// runIndex is not written yet.
func runIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines index: not implemented yet")
}
