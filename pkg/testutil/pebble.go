package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// PebbleVersion is the version of Let's Encrypt's test ACME server,
// github.com/letsencrypt/pebble/v2, that tests run (Makefile: PEBBLE_VERSION).
const PebbleVersion = "v2.10.3"

var (
	pebbleOnce sync.Once
	pebblePath string
	pebbleErr  error
)

// Pebble returns the path of the pebble binary, built once from the Go
// module proxy at PebbleVersion into the repository's .tools/ (kept
// between runs; the Go build cache makes a rebuild cheap).
func Pebble(t testing.TB) string {
	t.Helper()
	pebbleOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			pebbleErr = err
			return
		}
		dir := filepath.Join(root, ".tools", "pebble-"+PebbleVersion)
		pebblePath = filepath.Join(dir, "pebble")
		if _, err := os.Stat(pebblePath); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+PebbleVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleErr = fmt.Errorf("go install pebble@%s: %v\n%s", PebbleVersion, err, out)
		}
	})
	if pebbleErr != nil {
		t.Fatalf("build pebble: %v", pebbleErr)
	}
	return pebblePath
}
