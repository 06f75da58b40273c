package lineserver

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

// TestReadyzAfterRenameWithNoRequest: a data file replaced by rename turns
// /readyz to 503 with no /lines request in between (the shard's watcher
// found it), lines fail from then on, and the log names the file, once.
func TestReadyzAfterRenameWithNoRequest(t *testing.T) {
	data := testenv.Varied(100)
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	log := &testenv.Buffer{}
	s, err := Open(context.Background(), envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": path}), log)
	require.NoError(t, err)
	t.Cleanup(func() { s.Shard().Close() })
	require.Equal(t, http.StatusOK, get(s, "GET", "/lines/1").Code)

	require.NoError(t, os.WriteFile(path+".new", data, 0o644))
	require.NoError(t, os.Rename(path+".new", path))
	require.Eventually(t, func() bool { return get(s, "GET", "/readyz").Code == http.StatusServiceUnavailable },
		30*time.Second, time.Millisecond, "the watcher turns the shard not ready")
	assert.Equal(t, http.StatusServiceUnavailable, get(s, "GET", "/readyz").Code)
	assert.Equal(t, http.StatusInternalServerError, get(s, "GET", "/lines/1").Code, "the same bytes, but no longer the checked file's")
	assert.Equal(t, 1, strings.Count(log.String(), `"message":"shard not ready"`), log.String())
	assert.Contains(t, log.String(), "file "+path+" changed after the shard opened it")
}
