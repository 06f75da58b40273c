package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lineserver/lineserver/internal/lineno"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatus(t *testing.T) {
	_, parseErr := lineno.Parse("abc")
	_, endErr := lineno.Resolve(5, 3)
	for _, tc := range []struct {
		err  error
		want int
	}{
		{parseErr, 400},
		{endErr, 413},
		{lineno.Within(5, 1, 3), 421},
		{fmt.Errorf("x: %w", ErrNotFound), 404},
		{ErrMethodNotAllowed, 405},
		{ErrBadGateway, 502},
		{ErrUnavailable, 503},
		{ErrGatewayTimeout, 504},
		{errors.New("disk on fire"), 500},
	} {
		assert.Equal(t, tc.want, Status(tc.err), tc.err.Error())
	}
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		detail     string
		hideDetail string
	}{
		{"client error shows its text", lineno.Within(5, 1, 3), 421, "line 5: line is served by another shard; this one serves lines 1 to 3", ""},
		{"server error hides its text", errors.New("open /secret/path: permission denied"), 500, genericDetail(500), "/secret/path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("ETag", `"x"`)
			assert.Equal(t, tc.status, WriteError(rec, tc.err))
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, ContentType, rec.Header().Get("Content-Type"))
			assert.Empty(t, rec.Header().Get("ETag"), "an error is not the line's representation")
			var d Details
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
			assert.Equal(t, tc.status, d.Status)
			assert.Equal(t, tc.detail, d.Detail)
			assert.NotEmpty(t, d.Title)
			assert.Contains(t, d.Type, "urn:lineserver:problem:")
			if tc.hideDetail != "" {
				assert.NotContains(t, rec.Body.String(), tc.hideDetail)
			}
		})
	}
}

func TestEveryStatusHasATitle(t *testing.T) {
	for _, s := range []int{400, 404, 405, 413, 421, 500, 502, 503, 504} {
		d := New(s, "")
		assert.NotEqual(t, http.StatusText(s), "", s)
		assert.NotContains(t, d.Type, "http-", "status %d has its own kind", s)
		assert.NotEmpty(t, d.Detail)
	}
}

func TestBodyTooLargeIsItsOwnProblem(t *testing.T) {
	var d Details
	require.NoError(t, json.Unmarshal(BodyTooLarge("16 KiB"), &d))
	assert.Equal(t, http.StatusRequestEntityTooLarge, d.Status)
	assert.Equal(t, "urn:lineserver:problem:body-too-large", d.Type)
	assert.Contains(t, d.Detail, "16 KiB")
	assert.NotEqual(t, New(http.StatusRequestEntityTooLarge, "").Type, d.Type)
}
