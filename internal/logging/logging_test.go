package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONForCloudLogging(t *testing.T) {
	for _, tc := range []struct {
		log  func(*slog.Logger)
		want string
	}{
		{func(l *slog.Logger) { l.Info("started", "port", 8080) }, "INFO"},
		{func(l *slog.Logger) { l.Warn("slow") }, "WARNING"},
		{func(l *slog.Logger) { l.Error("failed") }, "ERROR"},
	} {
		var buf bytes.Buffer
		tc.log(New(&buf, "", slog.LevelInfo))
		var rec map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
		assert.Equal(t, tc.want, rec["severity"])
		assert.NotEmpty(t, rec["message"])
		assert.NotContains(t, rec, "level")
		assert.NotContains(t, rec, "msg")
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "text", slog.LevelDebug).Debug("request", "status", 200)
	assert.Contains(t, buf.String(), "level=DEBUG msg=request status=200")
}
