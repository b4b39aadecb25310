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
	opts := &slog.HandlerOptions{Level: Level(level)}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// LevelOff is above every level gatehouse logs at: log_level off.
const LevelOff = slog.Level(100)

// Level returns the slog level of a log_level value: debug, info, warn
// (warning), error, and Pomerium's trace (debug), fatal and panic (error),
// off and disabled (nothing). Anything else is info.
func Level(level string) slog.Level {
	switch strings.ToLower(level) {
	case "trace":
		return slog.LevelDebug
	case "fatal", "panic":
		return slog.LevelError
	case "off", "disabled", "none":
		return LevelOff
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(strings.Replace(level, "warning", "warn", 1)))); err != nil {
		return slog.LevelInfo
	}
	return l
}
