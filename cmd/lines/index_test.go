package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/index"
	"github.com/lineserver/lineserver/internal/testenv"
)

// callLines runs the lines command in the test's process.
func callLines(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestIndexCommand(t *testing.T) {
	for name, data := range testenv.Awkward() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.txt")
			require.NoError(t, os.WriteFile(path, data, 0o644))
			want, err := index.Of(data)
			require.NoError(t, err)

			stdout, stderr, err := callLines("index", path)
			require.NoError(t, err)
			assert.Empty(t, stderr, "no progress bar when stderr is not a terminal")
			assert.Contains(t, stdout, "data.txt: "+strconv.Itoa(len(want)/index.EntrySize)+" lines, "+strconv.Itoa(len(data))+" bytes in ")
			assert.Contains(t, stdout, "MB/s -> "+path+"_index.txt")
			got, err := os.ReadFile(path + "_index.txt")
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "the index differs from index.Of")
		})
	}
}

func TestIndexCommandOutput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.txt")
	data := testenv.Varied(1000)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	want, err := index.Of(data)
	require.NoError(t, err)

	for _, args := range [][]string{
		{"index", path, "-o", filepath.Join(dir, "a.idx")},
		{"index", "-o", filepath.Join(dir, "a.idx"), path},
		{"index", path, "--o=" + filepath.Join(dir, "a.idx")},
	} {
		require.NoError(t, os.RemoveAll(filepath.Join(dir, "a.idx")))
		_, _, err := callLines(args...)
		require.NoError(t, err, args)
		got, err := os.ReadFile(filepath.Join(dir, "a.idx"))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got))
	}
	_, err = os.Stat(path + "_index.txt")
	assert.ErrorIs(t, err, os.ErrNotExist, "-o replaces the default name")
}

func TestIndexCommandErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.txt")
	require.NoError(t, os.WriteFile(path, []byte("a\nb\n"), 0o644))
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", []string{"index"}, true, "want one FILE, got 0 arguments"},
		{"two files", []string{"index", path, path}, true, "want one FILE, got 2 arguments"},
		{"unknown flag", []string{"index", path, "--out", "x"}, true, "flag provided but not defined: -out"},
		{"missing file", []string{"index", filepath.Join(dir, "nope.txt")}, false, "data file: open " + filepath.Join(dir, "nope.txt") + ": no such file or directory"},
		{"a directory", []string{"index", dir}, false, dir + " is a directory, not a regular file"},
		{"no such output folder", []string{"index", path, "-o", filepath.Join(dir, "nope", "x")}, false, "create " + filepath.Join(dir, "nope", "x") + ": no such file or directory"},
		{"output is the data", []string{"index", path, "-o", path}, false, "is the data file " + path + ": refusing to overwrite it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := callLines(tc.args...)
			require.Error(t, err)
			assert.Equal(t, tc.usage, errors.Is(err, errUsage), err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "a\nb\n", string(data), "the data file is untouched")
	testenv.DirHolds(t, dir, "data.txt")
}

func TestIndexCommandUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	path := filepath.Join(t.TempDir(), "data.txt")
	require.NoError(t, os.WriteFile(path, []byte("a\n"), 0o200))
	_, _, err := callLines("index", path)
	assert.ErrorContains(t, err, "permission denied")
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := newBar(&buf, 2_000_000, "indexing")
	p.set(1_000_000)
	p.finish()
	assert.Contains(t, buf.String(), "indexing")
	assert.Contains(t, buf.String(), "MB", "the bar counts bytes")

	var none progress
	none.set(1)
	none.finish()
	assert.Nil(t, newProgress(&buf, 1, "x").bar, "no bar when the writer is not a terminal")
}
