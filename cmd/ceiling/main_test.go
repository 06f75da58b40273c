package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lineserver/lineserver/internal/testenv"
)

func TestConstantBody(t *testing.T) {
	for _, path := range []string{"/", "/lines/1", "/anything"} {
		rec := httptest.NewRecorder()
		constant(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		assert.Equal(t, http.StatusOK, rec.Code, path)
		assert.Len(t, b, 50, path)
		assert.Equal(t, "50", rec.Header().Get("Content-Length"), path)
	}
}

// TestReadsServesLines checks the floor's two reads against every line of
// a file without a final newline, and its refusals.
func TestReadsServesLines(t *testing.T) {
	data := []byte("one\n\ntwo\r\nthé\n" + strings.Repeat("long", 3000) + "\nlast")
	path := testenv.WriteIndexed(t, t.TempDir(), "data.txt", data)
	rd, err := newReads(path, "")
	require.NoError(t, err)
	for i, want := range testenv.Lines(data) {
		rec := httptest.NewRecorder()
		rd.serve(rec, httptest.NewRequest(http.MethodGet, "/lines/"+strconv.Itoa(i+1), nil))
		assert.Equal(t, http.StatusOK, rec.Code, i+1)
		assert.Equal(t, string(want), rec.Body.String(), i+1)
	}
	for path, status := range map[string]int{"/lines/0": 400, "/lines/x": 400, "/lines/7": 404} {
		rec := httptest.NewRecorder()
		rd.serve(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, status, rec.Code, path)
	}
	_, err = newReads(path+".missing", "")
	assert.Error(t, err)
}

// TestReadsStopsOnAMissingFile: the floor refuses to start without its
// files, rather than answering 500 to every request.
func TestReadsStopsOnAMissingFile(t *testing.T) {
	missing := t.TempDir() + "/missing.txt"
	t.Setenv("FILE_REPOSITORY_FILE_PATH", missing)
	t.Setenv("INDEX_FILE_PATH", "")
	assert.NoError(t, openFiles("Constant"), "the ceiling needs no files")
	err := openFiles("Reads")
	require.Error(t, err)
	assert.Contains(t, err.Error(), missing)
}
