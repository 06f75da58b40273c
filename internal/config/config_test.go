package config

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"FILE_REPOSITORY_FILE_PATH": "/data/file.txt",
	}))
	require.NoError(t, err)
	assert.Equal(t, "/data/file.txt_index.txt", c.IndexPath)
	assert.Nil(t, c.First, "unset: the manifest beside the data, or 1")
	assert.Nil(t, c.Last)
	assert.Nil(t, c.TotalLines)
	assert.Equal(t, "8080", c.Port)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
}

// TestLoadEmptyIsUnset: a variable set to "" gets its default, as if it
// were not set, whatever its type.
func TestLoadEmptyIsUnset(t *testing.T) {
	t.Parallel()
	c, err := Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"FILE_REPOSITORY_FILE_PATH": "d.txt",
		"INDEX_FILE_PATH":           "",
		"INDEX_FIRST_LINE_NUMBER":   "",
		"INDEX_LAST_LINE_NUMBER":    "",
		"FILE_TOTAL_LINES":          "",
		"PORT":                      "",
		"LOG_LEVEL":                 "",
	}))
	require.NoError(t, err)
	assert.Equal(t, "d.txt_index.txt", c.IndexPath)
	assert.Nil(t, c.First, "unset: the manifest beside the data, or 1")
	assert.Nil(t, c.Last)
	assert.Nil(t, c.TotalLines)
	assert.Equal(t, "8080", c.Port)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)

	_, err = Load(context.Background(), envconfig.MapLookuper(map[string]string{"FILE_REPOSITORY_FILE_PATH": ""}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FILE_REPOSITORY_FILE_PATH is required")
}

func TestLoadEverything(t *testing.T) {
	t.Parallel()
	c, err := Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"FILE_REPOSITORY_FILE_PATH": "d.txt",
		"INDEX_FILE_PATH":           "i.txt",
		"INDEX_FIRST_LINE_NUMBER":   "101",
		"INDEX_LAST_LINE_NUMBER":    "200",
		"FILE_TOTAL_LINES":          "300",
		"PORT":                      "9000",
		"LOG_FORMAT":                "text",
		"LOG_LEVEL":                 "debug",
	}))
	require.NoError(t, err)
	assert.Equal(t, "i.txt", c.IndexPath)
	assert.Equal(t, int64(101), *c.First)
	assert.Equal(t, int64(200), *c.Last)
	assert.Equal(t, int64(300), *c.TotalLines)
	assert.Equal(t, "9000", c.Port)
	assert.Equal(t, slog.LevelDebug, c.LogLevel)
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no data file", map[string]string{}, []string{"FILE_REPOSITORY_FILE_PATH is required"}},
		{"first not a number", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "INDEX_FIRST_LINE_NUMBER": "abc"}, []string{"INDEX_FIRST_LINE_NUMBER"}},
		{"last not a number", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "INDEX_LAST_LINE_NUMBER": "1.5"}, []string{"INDEX_LAST_LINE_NUMBER"}},
		{"total not a number", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "FILE_TOTAL_LINES": "x"}, []string{"FILE_TOTAL_LINES"}},
		{"first zero", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "INDEX_FIRST_LINE_NUMBER": "0"}, []string{"INDEX_FIRST_LINE_NUMBER=0"}},
		{"last before first", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "INDEX_FIRST_LINE_NUMBER": "10", "INDEX_LAST_LINE_NUMBER": "5"}, []string{"INDEX_LAST_LINE_NUMBER=5 is before"}},
		{"total below last", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "INDEX_LAST_LINE_NUMBER": "5", "FILE_TOTAL_LINES": "4"}, []string{"FILE_TOTAL_LINES=4 is below"}},
		{"negative total", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "FILE_TOTAL_LINES": "-1"}, []string{"below 0"}},
		{"bad port", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "PORT": "http"}, []string{"PORT"}},
		{"port out of range", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "PORT": "70000"}, []string{"PORT"}},
		{"bad log format", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "LOG_FORMAT": "xml"}, []string{"LOG_FORMAT"}},
		{"bad log level", map[string]string{"FILE_REPOSITORY_FILE_PATH": "d", "LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		{"every problem at once", map[string]string{"INDEX_FIRST_LINE_NUMBER": "0", "PORT": "0"}, []string{"FILE_REPOSITORY_FILE_PATH", "INDEX_FIRST_LINE_NUMBER", "PORT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), envconfig.MapLookuper(tc.env))
			require.ErrorIs(t, err, ErrInvalid)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
