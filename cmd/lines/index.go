package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lineserver/lineserver/internal/index"
)

// runIndex builds the index of a data file.
func runIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	out := fs.String("o", "", "the index to write; empty means FILE_index.txt")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: lines index FILE [-o INDEX]: want one FILE, got %d arguments", errUsage, len(pos))
	}
	path, idxPath := pos[0], *out
	if idxPath == "" {
		idxPath = path + "_index.txt"
	}
	f, info, err := openData(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := notOver(idxPath, info, path); err != nil {
		return err
	}

	bar := newProgress(stderr, info.Size(), "indexing")
	start := time.Now()
	lines, err := index.BuildFile(ctx, idxPath, f, index.Options{Progress: bar.set})
	bar.finish()
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("index %s: interrupted; %s was not written", path, idxPath)
	}
	if errors.Is(err, index.ErrOffsetTooLarge) {
		return fmt.Errorf("index %s: %w: the index format holds offsets up to %d; cut the file with 'lines shard' into slices below 1 TB", path, err, int64(index.MaxOffset))
	}
	if err != nil {
		return fmt.Errorf("index %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "%s: %d lines, %s -> %s\n", path, lines, throughput(info.Size(), time.Since(start)), idxPath)
	return nil
}

// throughput says how long size bytes took, and how fast that is.
func throughput(size int64, took time.Duration) string {
	secs := took.Seconds()
	return fmt.Sprintf("%d bytes in %.3f s, %.0f MB/s", size, secs, float64(size)/1e6/max(secs, 1e-9))
}

// openData opens the data file at path for reading, with an error that
// says what is wrong when it is missing, unreadable or not a regular file.
func openData(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data file: %w", err)
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is a %s, not a regular file", path, kind(info))
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("data file: %w", err)
	}
	return f, info, nil
}

func kind(info os.FileInfo) string {
	switch {
	case info.IsDir():
		return "directory"
	case info.Mode()&os.ModeNamedPipe != 0:
		return "named pipe"
	case info.Mode()&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// notOver refuses to write to path when path is the data file itself.
func notOver(path string, data os.FileInfo, dataPath string) error {
	if info, err := os.Stat(path); err == nil && os.SameFile(info, data) {
		return fmt.Errorf("%s is the data file %s: refusing to overwrite it", path, dataPath)
	}
	return nil
}
