package main

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// tlsState is the listener's TLS configuration built for one
// configuration.
type tlsState struct {
	cfg *config.Config
	tc  *tls.Config
}

// serverTLSConfig returns the TLS configuration of the HTTPS listener. Each
// handshake uses the process's current configuration (certificates by SNI,
// downstream mTLS), so a reload changes them for new connections without a
// restart.
func (p *process) serverTLSConfig() *tls.Config {
	var cur atomic.Pointer[tlsState]
	forConfig := func(cfg *config.Config) *tls.Config {
		if st := cur.Load(); st != nil && st.cfg == cfg {
			return st.tc
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
		cur.Store(&tlsState{cfg: cfg, tc: tc})
		return tc
	}
	base := forConfig(p.src.Current()).Clone()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return forConfig(p.src.Current()), nil
	}
	return base
}
