package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/devcerts"
)

// defaultDevCertsDir is where dev-certs writes when --dir is not given:
// the user's configuration directory, outside any repository, so that the
// CA's private key is never committed by accident.
func defaultDevCertsDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "gatehouse", "dev-certs")
	}
	return filepath.Join(os.TempDir(), "gatehouse-dev-certs")
}

// devCertsCommand writes a local CA and a wildcard certificate for a
// deployment's domain.
func devCertsCommand(args []string, stdout io.Writer) error {
	fs := newFlagSet("dev-certs")
	dir := fs.String("dir", defaultDevCertsDir(), "directory to write ca.pem, ca-key.pem, cert.pem and key.pem (keep it out of any repository: ca-key.pem can sign certificates your machine trusts)")
	domain := fs.String("domain", "localhost.pomerium.io", "domain: the certificate covers it and *.domain")
	hosts := fs.String("hosts", "", "extra host names or IPs, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var extra []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			extra = append(extra, h)
		}
	}
	f, err := devcerts.Write(*dir, *domain, extra...)
	if err != nil {
		return fmt.Errorf("dev-certs: %w", err)
	}
	fmt.Fprintf(stdout, `wrote into %s:
  %s       the CA's certificate: trust this one
  %s   the CA's private key: keep it private, never commit it
  %s and %s   the certificate for *.%s and %s
Trust the CA (development only):
  Debian/Ubuntu: sudo cp %s /usr/local/share/ca-certificates/gatehouse-dev.crt && sudo update-ca-certificates
  Browsers:      import %s as a certificate authority
  Grafana:       to fetch jwk_set_url over https, any version: the system trust store above, or
                 SSL_CERT_DIR=%s:/etc/ssl/certs in Grafana's environment.
                 [auth.jwt] tls_client_ca is read only by Grafana 12.2 and later; 9.x to 12.1 ignore it.
`, *dir, filepath.Base(f.CACert), filepath.Base(f.CAKey), filepath.Base(f.Cert), filepath.Base(f.Key), *domain, *domain,
		f.CACert, f.CACert, *dir)
	return nil
}
