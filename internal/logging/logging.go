// Package logging builds the project's slog loggers: JSON that Cloud
// Logging reads (the level under "severity", the text under "message"), or
// text for a person at a terminal.
package logging

import (
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// New returns a logger writing to w at level. format is "json", "text", or
// empty for text when w is a terminal and JSON otherwise.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = cloudLogging
	return slog.New(slog.NewJSONHandler(w, opts))
}

// cloudLogging renames slog's keys to the ones Cloud Logging reads.
func cloudLogging(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		a.Key = "severity"
		if l, ok := a.Value.Any().(slog.Level); ok && l >= slog.LevelWarn && l < slog.LevelError {
			a.Value = slog.StringValue("WARNING")
		}
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}
