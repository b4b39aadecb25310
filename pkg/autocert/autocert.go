// Package autocert obtains and renews TLS certificates from an ACME CA
// (Let's Encrypt by default) for the hosts a configuration names, with
// github.com/caddyserver/certmagic: HTTP-01 on the HTTP redirect listener,
// TLS-ALPN-01 on the HTTPS listener, renewal before expiry in the
// background, a hot-reloaded route's host managed when it appears. The
// storage (account, keys, certificates) and the order locks are files in
// autocert_dir, or databroker records and leases (NewDataBrokerStorage)
// when several processes share them: one replica orders, all serve.
package autocert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// Options configure New.
type Options struct {
	// Source is the configuration; New builds from its current one
	// (which must have autocert on) and follows its changes. Required.
	Source config.Source
	// Logger receives what happens to certificates; nil is slog.Default().
	Logger *slog.Logger
	// Storage keeps account, keys and certificates and holds the order
	// locks; nil keeps them in files under autocert_dir.
	Storage certmagic.Storage
	// RenewCheckInterval is how often certificates are checked for
	// renewal; zero is certmagic's default (10 minutes).
	RenewCheckInterval time.Duration
}

// Manager manages the certificates of a configuration. It is safe for
// concurrent use.
type Manager struct {
	logger  *slog.Logger
	storage certmagic.Storage
	cache   *certmagic.Cache
	cur     atomic.Pointer[managed]
	changed chan struct{}
}

// managed is what one configuration asks for.
type managed struct {
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	hosts  []string
}

// New builds the manager. It starts no goroutines until Run.
func New(o Options) (*Manager, error) {
	if o.Source == nil {
		return nil, errors.New("autocert: Options.Source is required")
	}
	cfg := o.Source.Current()
	if cfg.Autocert == nil {
		return nil, errors.New("autocert: autocert is off")
	}
	m := &Manager{logger: o.Logger, storage: o.Storage, changed: make(chan struct{}, 1)}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	m.logger = m.logger.With("service", "autocert")
	if m.storage == nil {
		m.storage = &certmagic.FileStorage{Path: cfg.Autocert.Dir}
	}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cur.Load().magic, nil },
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             zap.New(newSlogCore(m.logger)),
	})
	mg, err := m.build(cfg)
	if err != nil {
		m.cache.Stop()
		return nil, err
	}
	m.cur.Store(mg)
	o.Source.OnChange("autocert", m)
	return m, nil
}

var _ config.Reloader = (*Manager)(nil)

// Prepare builds the certmagic configuration of cfg; commit makes it
// current and has Run manage its hosts (a new route's host gets its
// certificate without a restart). It implements config.Reloader.
func (m *Manager) Prepare(_ context.Context, cfg *config.Config) (func(), error) {
	if cfg.Autocert == nil {
		// Turning autocert off takes a restart; keep serving what we have.
		return func() {}, nil
	}
	mg, err := m.build(cfg)
	if err != nil {
		return nil, err
	}
	return func() {
		m.cur.Store(mg)
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}, nil
}

func (m *Manager) build(cfg *config.Config) (*managed, error) {
	a := cfg.Autocert
	magic := certmagic.New(m.cache, certmagic.Config{
		Storage:    m.storage,
		MustStaple: a.MustStaple,
		Logger:     zap.New(newSlogCore(m.logger)),
		OnEvent:    m.onEvent,
	})
	tmpl := certmagic.ACMEIssuer{
		CA: a.DirectoryURL,
		// A failed order is retried against the same CA, never against
		// a staging CA of certmagic's choosing.
		TestCA:       a.DirectoryURL,
		Email:        a.Email,
		Agreed:       true,
		TrustedRoots: a.TrustedRoots,
		Logger:       zap.New(newSlogCore(m.logger)),
	}
	if a.EABKeyID != "" {
		tmpl.ExternalAccount = &acme.EAB{KeyID: a.EABKeyID, MACKey: a.EABMACKey}
	}
	// The challenges are answered by gatehouse's own listeners: HTTP-01
	// by the HTTP redirect listener (HTTPHandler), TLS-ALPN-01 by the
	// HTTPS listener (GetCertificate). Naming their ports makes certmagic
	// find them in use and leave them to us.
	if host, port, err := net.SplitHostPort(cfg.HTTPRedirectAddr); err == nil {
		tmpl.ListenHost = host
		tmpl.AltHTTPPort, _ = strconv.Atoi(port)
	}
	if _, port, err := net.SplitHostPort(cfg.Address); err == nil {
		tmpl.AltTLSALPNPort, _ = strconv.Atoi(port)
	}
	issuer := certmagic.NewACMEIssuer(magic, tmpl)
	magic.Issuers = []certmagic.Issuer{issuer}
	return &managed{magic: magic, issuer: issuer, hosts: slices.Clone(a.Hosts)}, nil
}

// onEvent logs what happens to certificates, with the CA's reason for a
// failure. A failed renewal leaves the current certificate in service.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	attrs := []any{"event", event}
	for _, k := range []string{"identifier", "renewal", "remaining", "issuer", "error"} {
		if v, ok := data[k]; ok {
			attrs = append(attrs, k, fmt.Sprint(v))
		}
	}
	switch event {
	case "cert_obtained":
		m.logger.Info("autocert: certificate obtained", attrs...)
	case "cert_failed":
		m.logger.Error("autocert: certificate order failed; the current certificate, if any, stays in service", attrs...)
	case "cert_obtaining":
		m.logger.Info("autocert: ordering a certificate", attrs...)
	}
	return nil
}

// Run manages the configuration's hosts until ctx ends: certificates are
// loaded from storage or ordered, then renewed in the background; each
// configuration change adds the hosts it names.
func (m *Manager) Run(ctx context.Context) error {
	defer m.cache.Stop()
	for {
		mg := m.cur.Load()
		if err := mg.magic.ManageAsync(ctx, mg.hosts); err != nil {
			m.logger.Error("autocert: cannot manage certificates", "hosts", mg.hosts, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.changed:
		}
	}
}

// Ready reports nil: a missing certificate fails handshakes of its host
// only, and is logged.
func (m *Manager) Ready() error { return nil }

// Manages reports whether autocert obtains the certificate of host.
func (m *Manager) Manages(host string) bool {
	return slices.Contains(m.cur.Load().hosts, host)
}

// GetCertificate is tls.Config.GetCertificate for the managed hosts; it
// also answers TLS-ALPN-01 challenges (hellos offering only acme-tls/1).
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load().magic.GetCertificate(hello)
}

// HTTPHandler answers HTTP-01 challenges and passes every other request
// to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.cur.Load().issuer.HandleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsChallenge reports whether a ClientHello is a TLS-ALPN-01 validation.
func IsChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1
}

const acmeTLS1 = "acme-tls/1"

// ALPN is the protocol the HTTPS listener must offer for TLS-ALPN-01.
const ALPN = acmeTLS1
