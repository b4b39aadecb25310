package config

import (
	"github.com/gatehouse/gatehouse/pkg/pathnorm"
)

// validatePathNormalization reads normalize_path, merge_slashes and
// path_with_escaped_slashes_action into c.PathNormalization. Unset, they
// are Pomerium's defaults since v0.33 (normalize, merge, reject %2F and
// %5C), which are also the safe ones.
func (c *Config) validatePathNormalization(errs *Errors) {
	o := &c.Options
	a, err := pathnorm.ParseEscapedSlashes(o.PathWithEscapedSlashesAction)
	if err != nil {
		errs.add("path_with_escaped_slashes_action", c.lines["path_with_escaped_slashes_action"], err.Error())
	}
	c.PathNormalization = pathnorm.Options{
		NoNormalize:       o.NormalizePath != nil && !*o.NormalizePath,
		KeepDoubleSlashes: o.MergeSlashes != nil && !*o.MergeSlashes,
		EscapedSlashes:    a,
	}
}

// PathNormalizationWarnings lists what the path options let past a path
// policy, for start-up and `gatehouse validate` to print. Empty for the
// defaults.
func (c *Config) PathNormalizationWarnings() []string {
	var out []string
	p := c.PathNormalization
	if p.NoNormalize {
		out = append(out, "normalize_path is false: /a/../b, /a/%62 and /a\\b reach the upstream as sent, "+
			"and a prefix, path, regex or http_path rule does not see them as /b or /a/b")
	}
	switch p.EscapedSlashes {
	case pathnorm.KeepEscapedSlashes:
		out = append(out, "path_with_escaped_slashes_action is keep_unchanged: an upstream that decodes %2F into / "+
			"serves /a%2Fb as /a/b, which no prefix, path, regex or http_path rule for /a/b saw")
	case pathnorm.UnescapeAndForward:
		out = append(out, "path_with_escaped_slashes_action is unescape_and_forward: requests with %2F are forwarded "+
			"as /; an upstream that tells %2F from / gets a different path than the client sent")
	}
	return out
}
