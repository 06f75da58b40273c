package main

import (
	"context"
	"errors"
	"io"
)

// runCloudRun is not written yet.
func runCloudRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines cloudrun: not implemented yet")
}
