package logging

import (
	"bytes"
	"log/slog"
	"testing"
)

// Pomerium's log levels trace, fatal and off are accepted with their
// meaning, not read as info.
func TestPomeriumLogLevels(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"trace": slog.LevelDebug, "debug": slog.LevelDebug, "info": slog.LevelInfo, "warning": slog.LevelWarn,
		"error": slog.LevelError, "fatal": slog.LevelError, "off": LevelOff, "": slog.LevelInfo,
	} {
		if got := Level(in); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
	var buf bytes.Buffer
	New(&buf, "off", "json").Error("nothing")
	if buf.Len() != 0 {
		t.Errorf("log_level off logged %q", buf.String())
	}
}
