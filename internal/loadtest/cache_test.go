package loadtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResidentAndWarm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.WriteFile(path, make([]byte, 3<<20+5), 0o644))
	r, err := resident(path)
	require.NoError(t, err)
	assert.InDelta(t, 1, r, 0.01, "just written: in the page cache")

	var last int64
	require.NoError(t, warm(context.Background(), path, func(done, total int64) { last = done }))
	r, err = resident(path)
	require.NoError(t, err)
	assert.InDelta(t, 1, r, 0.01)
	assert.Zero(t, last, "a cached file is not read again")

	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	r, err = resident(empty)
	require.NoError(t, err)
	assert.Equal(t, 1.0, r)

	_, err = resident(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
}
