package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse/gatehouse/pkg/devcerts"
)

// devCertsCommand writes a local CA and a wildcard certificate for a
// deployment's domain.
func devCertsCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev-certs", flag.ContinueOnError)
	dir := fs.String("dir", "certs", "directory to write ca.pem, ca-key.pem, cert.pem and key.pem")
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
	fmt.Fprintf(stdout, `wrote %s (CA), %s and %s (*.%s, %s)
Trust the CA (development only):
  Debian/Ubuntu: sudo cp %s /usr/local/share/ca-certificates/gatehouse-dev.crt && sudo update-ca-certificates
  Grafana:       [auth.jwt] tls_client_ca = /path/to/ca.pem   (or mount it into the system trust store)
  Browsers:      import %s as a certificate authority
`, f.CACert, f.Cert, f.Key, *domain, *domain, f.CACert, f.CACert)
	return nil
}
