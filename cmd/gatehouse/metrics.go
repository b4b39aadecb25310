package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// serveMetrics serves /metrics on metrics_address until ctx ends: over
// TLS with metrics_certificate (requiring client certificates with
// metrics_client_ca), behind HTTP basic authentication with
// metrics_basic_auth, as Pomerium does.
func (p *process) serveMetrics(ctx context.Context) error {
	cfg := p.cfg
	var h http.Handler = promhttp.HandlerFor(p.metrics, promhttp.HandlerOpts{})
	if m := cfg.Metrics; m.BasicAuthUser != "" {
		h = basicAuth(h, m.BasicAuthUser, m.BasicAuthPassword)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	lis, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen metrics_address %s: %w", cfg.MetricsAddr, err)
	}
	if crt := cfg.Metrics.Certificate; crt != nil {
		tc := &tls.Config{Certificates: []tls.Certificate{*crt}, MinVersion: tls.VersionTLS12}
		if cfg.Metrics.ClientCAs != nil {
			tc.ClientCAs, tc.ClientAuth = cfg.Metrics.ClientCAs, tls.RequireAndVerifyClientCert
		}
		lis = tls.NewListener(lis, tc)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	p.logger.Info("metrics listener started", "address", lis.Addr().String(), "tls", cfg.Metrics.Certificate != nil,
		"basic_auth", cfg.Metrics.BasicAuthUser != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// basicAuth requires user and password, compared in constant time.
func basicAuth(h http.Handler, user, password string) http.Handler {
	wantU, wantP := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		gotU, gotP := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(pw))
		if !ok || subtle.ConstantTimeCompare(gotU[:], wantU[:])&subtle.ConstantTimeCompare(gotP[:], wantP[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// MetricCertificateExpiry is the expiry time of each server certificate.
const MetricCertificateExpiry = "gatehouse_certificate_expiry_timestamp_seconds"

var certExpiryDesc = prometheus.NewDesc(MetricCertificateExpiry,
	"When each certificate the process serves expires (Unix seconds), by its first name and use (server: address and grpc_address; metrics).",
	[]string{"name", "use"}, nil)

// certCollector reports the expiry of the running configuration's
// certificates: it reads the Source at each scrape, so a reload that
// installs a renewed certificate shows at once.
type certCollector struct{ src config.Source }

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.src.Current()
	emit := func(crt *tls.Certificate, use string) {
		leaf := crt.Leaf
		if leaf == nil && len(crt.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(crt.Certificate[0])
		}
		if leaf == nil {
			return
		}
		name := leaf.Subject.CommonName
		if len(leaf.DNSNames) > 0 {
			name = leaf.DNSNames[0]
		}
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), name, use)
	}
	for i := range cfg.TLSCertificates {
		emit(&cfg.TLSCertificates[i], "server")
	}
	if cfg.Metrics.Certificate != nil {
		emit(cfg.Metrics.Certificate, "metrics")
	}
}
