package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	require.NoError(t, Write(path, func(f *os.File) error { _, err := f.WriteString("whole\n"); return err }))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "whole\n", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	boom := errors.New("boom")
	err = Write(path, func(f *os.File) error { f.WriteString("half"); return boom })
	assert.ErrorIs(t, err, boom)
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "whole\n", string(b), "a failed write leaves the old file")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "and no temporary file")

	err = Write(filepath.Join(dir, "no", "such", "dir.txt"), func(*os.File) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "create "+filepath.Join(dir, "no", "such", "dir.txt"))
	assert.NotContains(t, err.Error(), ".tmp-")
}
