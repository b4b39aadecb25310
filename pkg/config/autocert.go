package config

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ACME directories of Let's Encrypt, the default autocert CA.
const (
	LetsEncryptDirectory        = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStagingDirectory = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// AutocertSettings is autocert, derived from the autocert_* options.
type AutocertSettings struct {
	// DirectoryURL is the ACME directory: autocert_ca, else Let's
	// Encrypt's (staging with autocert_use_staging).
	DirectoryURL string
	// Email is autocert_email.
	Email string
	// MustStaple is autocert_must_staple.
	MustStaple bool
	// Dir is autocert_dir (default $XDG_DATA_HOME/gatehouse/autocert).
	Dir string
	// EABKeyID and EABMACKey are the external account binding, or "".
	EABKeyID, EABMACKey string
	// TrustedRoots verify the ACME CA's TLS certificate: the system roots
	// plus autocert_trusted_ca; nil when that is unset (system roots).
	TrustedRoots *x509.CertPool
	// Hosts are the names certificates are obtained for: the
	// authenticate host (when this process runs authenticate) and every
	// route's from host (when it runs the proxy), without wildcards.
	Hosts []string
}

// validateAutocert checks the autocert_* options and fills c.Autocert.
func (c *Config) validateAutocert(errs *Errors) {
	o := &c.Options
	at := func(key string) int { return c.lines[key] }
	if !o.Autocert {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"autocert_ca", o.AutocertCA != ""}, {"autocert_email", o.AutocertEmail != ""}, {"autocert_use_staging", o.AutocertUseStaging},
			{"autocert_must_staple", o.AutocertMustStaple}, {"autocert_eab_key_id", o.AutocertEABKeyID != ""},
		} {
			if k.set {
				c.warnings = append(c.warnings, fmt.Sprintf("line %d: %s has no effect without autocert: true", at(k.key), k.key))
			}
		}
		return
	}
	s := &AutocertSettings{Email: o.AutocertEmail, MustStaple: o.AutocertMustStaple, Dir: o.AutocertDir}
	switch {
	case o.AutocertCA != "":
		u, err := url.Parse(o.AutocertCA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			errs.add("autocert_ca", at("autocert_ca"), fmt.Sprintf("expected the https:// URL of an ACME directory (such as %s), got %q", LetsEncryptDirectory, o.AutocertCA))
		}
		s.DirectoryURL = o.AutocertCA
		if o.AutocertUseStaging {
			c.warnings = append(c.warnings, fmt.Sprintf("line %d: autocert_use_staging is ignored: autocert_ca names the directory", at("autocert_use_staging")))
		}
	case o.AutocertUseStaging:
		s.DirectoryURL = LetsEncryptStagingDirectory
	default:
		s.DirectoryURL = LetsEncryptDirectory
	}
	if o.AutocertEmail != "" && !strings.Contains(o.AutocertEmail, "@") {
		errs.add("autocert_email", at("autocert_email"), fmt.Sprintf("expected an email address, got %q", o.AutocertEmail))
	}
	switch {
	case (o.AutocertEABKeyID == "") != (o.AutocertEABMACKey == ""):
		key := "autocert_eab_key_id" // the one that is set
		if o.AutocertEABKeyID == "" {
			key = "autocert_eab_mac_key"
		}
		errs.add(key, at(key), "autocert_eab_key_id and autocert_eab_mac_key go together (the CA's external account binding)")
	case o.AutocertEABMACKey != "":
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(o.AutocertEABMACKey, "=")); err != nil {
			errs.add("autocert_eab_mac_key", at("autocert_eab_mac_key"), "expected the base64url MAC key the CA gave with the key id")
		}
		s.EABKeyID, s.EABMACKey = o.AutocertEABKeyID, o.AutocertEABMACKey
	}
	if pemCA := c.pemOption(errs, "autocert_trusted_ca", o.AutocertTrustedCA, "autocert_trusted_ca_file", o.AutocertTrustedCAFile, at); pemCA != nil {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemCA) {
			key := "autocert_trusted_ca"
			if o.AutocertTrustedCAFile != "" {
				key = "autocert_trusted_ca_file"
			}
			errs.add(key, at(key), "expected PEM certificates (or base64 of PEM): the CA that signed the ACME server's TLS certificate")
		}
		s.TrustedRoots = pool
	}
	if s.Dir == "" {
		s.Dir = defaultAutocertDir()
	}
	if o.InsecureServer {
		errs.add("autocert", at("autocert"), "autocert needs gatehouse to terminate TLS; it cannot be used with insecure_server")
	}
	seen := map[string]bool{}
	add := func(host, key string) {
		host = strings.ToLower(host)
		switch {
		case host == "" || seen[host]:
		case strings.Contains(host, "*"):
			c.warnings = append(c.warnings, fmt.Sprintf("line %d: %s: autocert cannot obtain a certificate for %s (HTTP-01 and TLS-ALPN-01 do not validate wildcards); "+
				"give it one with certificates", at(key), key, host))
		case net.ParseIP(host) != nil:
			c.warnings = append(c.warnings, fmt.Sprintf("line %d: %s: autocert does not obtain certificates for IP addresses (%s)", at(key), key, host))
		default:
			seen[host] = true
			s.Hosts = append(s.Hosts, host)
		}
	}
	if c.Runs(ServiceAuthenticate) && c.AuthenticateURLParsed != nil {
		add(c.AuthenticateURLParsed.Hostname(), "authenticate_service_url")
	}
	if c.Runs(ServiceProxy) {
		for i, r := range o.Routes {
			if u, err := url.Parse(r.From); err == nil {
				add(u.Hostname(), fmt.Sprintf("routes[%d].from", i))
			}
		}
	}
	if o.HTTPRedirectAddr == "" {
		// HTTP-01 challenges come to port 80, where the redirect to HTTPS
		// answers everything else.
		o.HTTPRedirectAddr = ":80"
	}
	c.Autocert = s
}

// defaultAutocertDir is $XDG_DATA_HOME/gatehouse/autocert, else
// ~/.local/share/gatehouse/autocert, else ./autocert.
func defaultAutocertDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "gatehouse", "autocert")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "gatehouse", "autocert")
	}
	return "autocert"
}
