package deploy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver"
	"github.com/lineserver/lineserver/internal/manifest"
)

// TestEmptyFileShardStarts: the one shard of an empty file (lines 1 to 0,
// as `lines shard` writes it) gets settings that a shard accepts, in
// compose and on Cloud Run alike, and answers 413.
func TestEmptyFileShardStarts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "shard-1.txt")
	require.NoError(t, os.WriteFile(data, nil, 0o644))
	require.NoError(t, os.WriteFile(data+"_index.txt", nil, 0o644))
	m := &manifest.Manifest{TotalLines: 0, Dir: dir, Shards: []manifest.Shard{{
		Name: "shard-1", First: 1, Last: 0, Data: "shard-1.txt", Index: "shard-1.txt_index.txt",
		URLs: []string{"http://shard-1:8080"},
	}}}

	env := shardEnv(m, 0, data, data+"_index.txt")
	assert.NotContains(t, env, "INDEX_LAST_LINE_NUMBER")
	s, err := lineserver.Open(context.Background(), envconfig.MapLookuper(env), io.Discard)
	require.NoError(t, err, "the shard must start with the settings the deploy files give it")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/lines/1", nil))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)

	services, err := CloudRun(m, CloudRunOptions{Image: "img"})
	require.NoError(t, err)
	require.Len(t, services, 1)
	assert.NotContains(t, string(services[0].YAML), "INDEX_LAST_LINE_NUMBER")
	assert.Contains(t, string(services[0].YAML), "FILE_TOTAL_LINES")
}
