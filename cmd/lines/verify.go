package main

import (
	"context"
	"errors"
	"io"
)

// runVerify is not written yet.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines verify: not implemented yet")
}
