package main

import (
	"context"
	"errors"
	"io"
)

// runBench is not written yet.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines bench: not implemented yet")
}
