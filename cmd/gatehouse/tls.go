package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/gatehouse/gatehouse/pkg/autocert"
	"github.com/gatehouse/gatehouse/pkg/config"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// tlsState is the listener's TLS configuration built for one
// configuration.
type tlsState struct {
	cfg  *config.Config
	tc   *tls.Config
	acme *tls.Config // TLS-ALPN-01 validations (autocert)
}

// serverTLSConfig returns the TLS configuration of the HTTPS listener. Each
// handshake uses the process's current configuration (certificates by SNI,
// autocert, downstream mTLS), so a reload changes them for new connections
// without a restart.
func (p *process) serverTLSConfig() *tls.Config {
	var cur atomic.Pointer[tlsState]
	forConfig := func(cfg *config.Config) *tlsState {
		if st := cur.Load(); st != nil && st.cfg == cfg {
			return st
		}
		tc := &tls.Config{
			Certificates: cfg.TLSCertificates,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		}
		if m := cfg.MTLS; m != nil {
			// The CAs are advertised in the handshake; whether a client
			// without a valid certificate gets through is the
			// enforcement's choice (see config.MTLS).
			tc.ClientAuth = m.ClientAuth()
			tc.ClientCAs = m.Pool
			tc.VerifyConnection = m.VerifyConnection
		}
		if certs := cfg.TLSCertificates; len(certs) > 1 {
			// Several certificates (a wildcard and a host's own, say, as
			// an Ingress's TLS Secret adds): the most specific that fits.
			tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				if c := matchCertificate(hello, certs); c != nil {
					return c, nil
				}
				return &certs[0], nil
			}
		}
		st := &tlsState{cfg: cfg, tc: tc}
		if am := p.autocert; am != nil && cfg.Autocert != nil {
			manual := cfg.TLSCertificates
			tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				// A configured certificate that fits wins; the hosts autocert
				// manages get theirs; anything else gets the first configured
				// one, as without autocert.
				if c := matchCertificate(hello, manual); c != nil {
					return c, nil
				}
				if len(manual) > 0 && !am.Manages(hello.ServerName) {
					return &manual[0], nil
				}
				return am.GetCertificate(hello)
			}
			// The ACME CA's validation needs no client certificate,
			// whatever downstream_mtls says.
			st.acme = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{autocert.ALPN}, GetCertificate: am.GetCertificate}
		}
		cur.Store(st)
		return st
	}
	base := forConfig(p.src.Current()).tc.Clone()
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		st := forConfig(p.src.Current())
		if st.acme != nil && autocert.IsChallenge(hello) {
			return st.acme, nil
		}
		return st.tc, nil
	}
	return base
}

// addAutocert starts obtaining the HTTPS listener's certificates from the
// ACME CA. A process that reaches a databroker it does not run (a proxy
// replica of a split deployment) keeps them there, so that replicas share
// one account and certificates and one of them orders each; otherwise they
// are files in autocert_dir.
func (p *process) addAutocert() error {
	cfg := p.cfg
	var storage certmagic.Storage
	if !cfg.Runs(config.ServiceDataBroker) && len(cfg.DataBrokerTargets) > 0 {
		cc, err := p.conn(config.ServiceDataBroker)
		if err != nil {
			return err
		}
		storage = autocert.NewDataBrokerStorage(databrokerv1.NewDataBrokerServiceClient(cc))
	}
	var renew time.Duration
	if v := os.Getenv("GATEHOUSE_AUTOCERT_RENEW_CHECK_INTERVAL"); v != "" {
		// For tests against a CA issuing short-lived certificates.
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("GATEHOUSE_AUTOCERT_RENEW_CHECK_INTERVAL: %w", err)
		}
		renew = d
	}
	m, err := autocert.New(autocert.Options{Source: p.src, Logger: p.logger, Storage: storage, RenewCheckInterval: renew})
	if err != nil {
		return err
	}
	p.autocert = m
	p.add("autocert", m)
	return nil
}

// matchCertificate returns the certificate of certs that names the
// requested server exactly, else the first that fits it (a wildcard), else
// nil.
func matchCertificate(hello *tls.ClientHelloInfo, certs []tls.Certificate) *tls.Certificate {
	var fits *tls.Certificate
	for i := range certs {
		c := &certs[i]
		if hello.SupportsCertificate(c) != nil {
			continue
		}
		if c.Leaf != nil && hello.ServerName != "" {
			for _, n := range c.Leaf.DNSNames {
				if strings.EqualFold(n, hello.ServerName) {
					return c
				}
			}
		}
		if fits == nil {
			fits = c
		}
	}
	return fits
}
