// Package secretgen makes a deployment's shared_secret and cookie_secret
// once, where the deployment keeps them: files in a volume (docker compose)
// or a Kubernetes Secret. Published development values are refused by
// pkg/config, so every deployment makes its own on first start and reuses
// them after, which keeps sessions and the identity-JWT key across restarts.
package secretgen

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// Names are the secrets a deployment needs: file names in a directory, and
// the environment variable names gatehouse reads (keys of a Kubernetes
// Secret used with envFrom).
var Names = []struct{ File, Env string }{
	{"shared_secret", "SHARED_SECRET"},
	{"cookie_secret", "COOKIE_SECRET"},
}

// New returns a fresh secret, base64 of 32 random bytes.
func New() string {
	return base64.StdEncoding.EncodeToString(cryptutil.RandomBytes(cryptutil.SecretSize))
}

// EnsureFiles makes dir/shared_secret and dir/cookie_secret (mode 0600)
// unless they exist, and returns the paths it wrote. An existing file is
// kept when it holds a good secret and refused otherwise, so a second run
// changes nothing and a damaged file is reported, not replaced.
func EnsureFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	var wrote []string
	for _, n := range Names {
		path := filepath.Join(dir, n.File)
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := check(string(data)); err != nil {
				return wrote, fmt.Errorf("%s exists but %w; delete it to make a new one", path, err)
			}
			continue
		case !errors.Is(err, fs.ErrNotExist):
			return wrote, fmt.Errorf("read %s: %w", path, err)
		}
		// O_EXCL: two containers starting at once never overwrite each
		// other's secret.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return wrote, fmt.Errorf("create %s: %w", path, err)
		}
		_, werr := f.WriteString(New() + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return wrote, fmt.Errorf("write %s: %w", path, werr)
		}
		wrote = append(wrote, path)
	}
	return wrote, nil
}

func check(s string) error {
	b, err := cryptutil.DecodeSecret(s)
	if err == nil {
		err = cryptutil.CheckSecret(b)
	}
	return err
}
