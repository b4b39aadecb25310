package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
)

// MetricsSettings are the metrics listener's (metrics_address)
// authentication and TLS, from Pomerium's metrics_* options.
type MetricsSettings struct {
	// BasicAuthUser and BasicAuthPassword, when set, are required of every
	// scrape (metrics_basic_auth).
	BasicAuthUser, BasicAuthPassword string
	// Certificate, when set, serves the listener over TLS.
	Certificate *tls.Certificate
	// ClientCAs, when set, requires client certificates signed by them.
	ClientCAs *x509.CertPool
}

func (c *Config) validateMetrics(errs *Errors) {
	o := &c.Options
	m := &c.Metrics
	if o.MetricsBasicAuth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(o.MetricsBasicAuth))
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || user == "" || pass == "" {
			// Never the value: it is a credential.
			errs.add("metrics_basic_auth", c.lines["metrics_basic_auth"], "expected base64 of user:password, such as the output of: printf 'prometheus:secret' | base64")
		} else {
			m.BasicAuthUser, m.BasicAuthPassword = user, pass
		}
	}
	if o.MetricsCertificate != "" || o.MetricsCertificateKey != "" {
		crt, err := tls.X509KeyPair([]byte(maybeBase64PEM(o.MetricsCertificate)), []byte(maybeBase64PEM(o.MetricsCertificateKey)))
		if err != nil {
			errs.add("metrics_certificate", c.lines["metrics_certificate"], fmt.Sprintf("bad certificate or key: %v", err))
		} else {
			m.Certificate = &crt
		}
	}
	if o.MetricsClientCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(maybeBase64PEM(o.MetricsClientCA))) {
			errs.add("metrics_client_ca", c.lines["metrics_client_ca"], "expected PEM certificates")
		} else if o.MetricsCertificate == "" {
			errs.add("metrics_client_ca", c.lines["metrics_client_ca"], "needs metrics_certificate: client certificates are only asked for over TLS")
		} else {
			m.ClientCAs = pool
		}
	}
	if (o.MetricsBasicAuth != "" || o.MetricsCertificate != "") && o.MetricsAddr == "" {
		c.warnings = append(c.warnings, "metrics_basic_auth and metrics_certificate have no effect without metrics_address")
	}
}
