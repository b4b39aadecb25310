package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestSwitch(t *testing.T) {
	var buf bytes.Buffer
	s := NewSwitch(&buf)
	log := s.Logger().With("service", "proxy")
	log.Info("first")
	s.Set("debug", "text")
	log.Debug("second", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"time"`) || !strings.Contains(lines[0], `"service":"proxy"`) ||
		!strings.HasPrefix(lines[1], "time=") || !strings.Contains(lines[1], "service=proxy") || !strings.Contains(lines[1], "k=v") {
		t.Errorf("lines:\n%s", buf.String())
	}
	s.Set("warn", "text")
	if log.Enabled(t.Context(), -4) {
		t.Error("debug enabled at warn")
	}
}
