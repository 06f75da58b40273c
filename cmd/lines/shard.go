package main

import (
	"context"
	"errors"
	"io"
)

// runShard is not written yet.
func runShard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("lines shard: not implemented yet")
}
