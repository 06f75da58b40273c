package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/manifest"
)

// runVerify checks every entry of an index, or of every shard's index in a
// manifest, against the data.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 1:
		if isManifest(pos[0]) {
			err = verifyManifest(ctx, pos[0], stdout, stderr)
		} else {
			err = verifyPair(ctx, pos[0], pos[0]+"_index.txt", stdout, stderr)
		}
	case 2:
		err = verifyPair(ctx, pos[0], pos[1], stdout, stderr)
	default:
		return fmt.Errorf("%w: lines verify FILE [INDEX] | MANIFEST: want 1 or 2 arguments, got %d", errUsage, len(pos))
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("verify: interrupted")
	}
	return err
}

// verifyPair checks one index against its data file.
func verifyPair(ctx context.Context, dataPath, idxPath string, stdout, stderr io.Writer) error {
	start := time.Now()
	lines, size, err := verifyFiles(ctx, dataPath, idxPath, 1, stderr)
	if errors.Is(err, index.ErrMismatch) {
		fmt.Fprintf(stderr, "%s does not match %s: %v\n", idxPath, dataPath, err)
		return errFailed
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %d lines (%s)\n", lines, throughput(size, time.Since(start)))
	return nil
}

// verifyFiles opens a data file and its index and checks every entry;
// first is the number of the index's first line in messages. It returns
// the number of lines and the size of the data.
func verifyFiles(ctx context.Context, dataPath, idxPath string, first int64, stderr io.Writer) (lines, size int64, err error) {
	data, info, err := openData(dataPath)
	if err != nil {
		return 0, 0, err
	}
	defer data.Close()
	idx, err := os.Open(idxPath)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("index: %w (build it with: lines index %s -o %s)", err, dataPath, idxPath)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("index: %w", err)
	}
	defer idx.Close()
	if idxInfo, err := idx.Stat(); err == nil && !idxInfo.Mode().IsRegular() {
		return 0, 0, fmt.Errorf("index: %s is a %s, not a regular file", idxPath, kind(idxInfo))
	}
	bar := newProgress(stderr, info.Size(), "verifying")
	lines, err = index.Verify(ctx, data, idx, index.Options{FirstLine: first, Progress: bar.set})
	bar.finish()
	return lines, info.Size(), err
}

// isManifest tells a manifest from a data file: by its .json name, unless
// an index of it (path + "_index.txt") stands beside it, as for a file of
// JSON lines; or by a JSON object at its start that names shards or
// total_lines.
func isManifest(path string) bool {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		_, err := os.Stat(path + "_index.txt")
		return err != nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false // verifyPair says what is wrong with it
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	head = bytes.TrimLeft(head[:n], " \t\r\n")
	return bytes.HasPrefix(head, []byte("{")) &&
		(bytes.Contains(head, []byte(`"shards"`)) || bytes.Contains(head, []byte(`"total_lines"`)))
}

// verifyManifest checks the files of every shard of a manifest and reports
// every shard that fails.
func verifyManifest(ctx context.Context, path string, stdout, stderr io.Writer) error {
	m, err := manifest.Load(path)
	if err != nil {
		return err
	}
	whole := make(map[[2]string]wholeResult)
	failed := 0
	for i, s := range m.Shards {
		msg, err := verifyShard(ctx, m, i, whole, stderr)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed++
			if errors.Is(err, index.ErrMismatch) {
				err = fmt.Errorf("%s does not match %s: %w", m.IndexPath(i), m.DataPath(i), err)
			}
			fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s\n", s.Name, msg)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d shards failed\n", path, failed, len(m.Shards))
		return errFailed
	}
	fmt.Fprintf(stdout, "ok: %d lines\n", m.TotalLines)
	return nil
}

// wholeResult is the outcome of checking a whole-file index, kept for the
// other shards that serve from the same files.
type wholeResult struct {
	lines int64
	err   error
}

// verifyShard checks shard i's files. An index with no more entries than
// the shard has lines is the shard's slice, checked as such; a longer one
// is the whole file's index, checked once for all shards that share it.
func verifyShard(ctx context.Context, m *manifest.Manifest, i int, whole map[[2]string]wholeResult, stderr io.Writer) (string, error) {
	s := m.Shards[i]
	dataPath, idxPath := m.DataPath(i), m.IndexPath(i)
	info, err := os.Stat(idxPath)
	if err != nil {
		return "", fmt.Errorf("index: %w", err)
	}
	entries := (info.Size() + index.EntrySize - 1) / index.EntrySize
	want := s.Last - s.First + 1
	if entries <= want {
		lines, _, err := verifyFiles(ctx, dataPath, idxPath, s.First, stderr)
		if err != nil {
			return "", err
		}
		if lines != want {
			return "", fmt.Errorf("%s has %d lines, but the shard serves lines %d-%d (%d lines)", dataPath, lines, s.First, s.Last, want)
		}
		return fmt.Sprintf("ok: lines %d-%d, a slice of %d lines", s.First, s.Last, lines), nil
	}
	key := [2]string{dataPath, idxPath}
	r, done := whole[key]
	if !done {
		r.lines, _, r.err = verifyFiles(ctx, dataPath, idxPath, 1, stderr)
		if r.err == nil && r.lines != m.TotalLines {
			r.err = fmt.Errorf("%s has %d lines, but the manifest's total_lines is %d", dataPath, r.lines, m.TotalLines)
		}
		whole[key] = r
	}
	if r.err != nil {
		return "", r.err
	}
	return fmt.Sprintf("ok: lines %d-%d of the whole file %s (%d lines)", s.First, s.Last, dataPath, r.lines), nil
}
