package main

import (
	"bytes"
	"strings"
	"testing"
)

// Help answers where a person looks for it: --help, -h and help print the
// command list, --version the version, and every command's --help says
// what it does with an example, on stdout and with exit code 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 || errOut.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), "  "+c.name+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, out.String())
			}
		}
	}
	var out bytes.Buffer
	if code := run([]string{"--version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "gatehouse ") {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
	for _, c := range commands {
		if c.name == "help" || c.name == "version" {
			continue
		}
		for _, args := range [][]string{{c.name, "--help"}, {"help", c.name}} {
			var out, errOut bytes.Buffer
			code := run(args, &out, &errOut)
			if code != 0 || !strings.Contains(out.String(), "Example:\n  ") || !strings.Contains(out.String(), "gatehouse "+c.name) {
				t.Errorf("%v: exit %d, stdout:\n%s\nstderr:\n%s", args, code, out.String(), errOut.String())
			}
		}
	}
	// A mistake is an error on stderr with the command's usage, exit 2 or 1.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"token", "--bogus"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "Usage: gatehouse token") || stdout.Len() != 0 {
		t.Errorf("token --bogus: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
