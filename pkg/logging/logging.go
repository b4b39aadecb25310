// Package logging builds the process's structured logger.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a slog.Logger writing JSON (or text) at the given level
// (debug, info, warn, error).
func New(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(strings.Replace(level, "warning", "warn", 1)))); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
