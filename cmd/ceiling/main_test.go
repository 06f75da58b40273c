package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
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
