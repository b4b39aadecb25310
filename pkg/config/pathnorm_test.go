package config

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/pathnorm"
)

func TestPathNormalizationOptions(t *testing.T) {
	tests := []struct {
		yaml string
		env  map[string]string
		want pathnorm.Options
		warn int
	}{
		{yaml: "", want: pathnorm.Options{}},
		{yaml: "normalize_path: true\nmerge_slashes: true\npath_with_escaped_slashes_action: REJECT_REQUEST\n", want: pathnorm.Options{}},
		{yaml: "merge_slashes: false\n", want: pathnorm.Options{KeepDoubleSlashes: true}},
		{yaml: "normalize_path: false\n", want: pathnorm.Options{NoNormalize: true}, warn: 1},
		{yaml: "path_with_escaped_slashes_action: keep_unchanged\n", want: pathnorm.Options{EscapedSlashes: pathnorm.KeepEscapedSlashes}, warn: 1},
		{yaml: "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT\n", want: pathnorm.Options{EscapedSlashes: pathnorm.UnescapeAndRedirect}},
		{env: map[string]string{"PATH_WITH_ESCAPED_SLASHES_ACTION": "unescape_and_forward", "MERGE_SLASHES": "false"},
			want: pathnorm.Options{EscapedSlashes: pathnorm.UnescapeAndForward, KeepDoubleSlashes: true}, warn: 1},
	}
	for _, tt := range tests {
		cfg, err := Parse([]byte(base+tt.yaml), "config.yaml", env(tt.env))
		if err != nil {
			t.Fatalf("%q %v: %v", tt.yaml, tt.env, err)
		}
		if cfg.PathNormalization != tt.want {
			t.Errorf("%q %v: PathNormalization = %+v, want %+v", tt.yaml, tt.env, cfg.PathNormalization, tt.want)
		}
		if w := cfg.PathNormalizationWarnings(); len(w) != tt.warn {
			t.Errorf("%q %v: warnings %q, want %d", tt.yaml, tt.env, w, tt.warn)
		}
	}
}

func TestPathNormalizationBadValueNamesKey(t *testing.T) {
	_, err := Parse([]byte(base+"path_with_escaped_slashes_action: decode\n"), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "path_with_escaped_slashes_action") || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("err = %v, want one naming path_with_escaped_slashes_action and its line", err)
	}
	_, err = Parse([]byte(base+"merge_slashes: sometimes\n"), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "merge_slashes") {
		t.Fatalf("err = %v, want one naming merge_slashes", err)
	}
}
