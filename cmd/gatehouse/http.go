package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/services/proxy"
)

// serveHTTP runs the HTTP(S) listener of the proxy and authenticate
// services (and the HTTP-to-HTTPS redirect) until ctx ends.
func (p *process) serveHTTP(ctx context.Context, h http.Handler) error {
	cfg := p.cfg
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		ReadTimeout:       cfg.TimeoutRead.Std(),
		WriteTimeout:      cfg.TimeoutWrite.Std(),
		IdleTimeout:       cfg.TimeoutIdle.Std(),
		ErrorLog:          nil,
	}
	lis, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("listen address %s: %w", cfg.Address, err)
	}
	if !cfg.InsecureServer {
		srv.TLSConfig = p.serverTLSConfig()
		srv.ConnContext = proxy.ConnContext
		lis = tls.NewListener(lis, srv.TLSConfig)
	}
	p.logger.Info("http listener started", "address", lis.Addr().String(), "tls", !cfg.InsecureServer)
	var redirect *http.Server
	if cfg.HTTPRedirectAddr != "" {
		var h http.Handler = redirectToHTTPS(cfg.Address)
		if p.autocert != nil {
			h = p.autocert.HTTPHandler(h) // HTTP-01 challenges
		}
		redirect = &http.Server{Addr: cfg.HTTPRedirectAddr, ReadHeaderTimeout: 10 * time.Second, Handler: h}
		go func() {
			if err := redirect.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				p.logger.Error("http redirect listener failed", "error", err)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-p.stopping:
		// The shutdown grace period: new connections are still served,
		// but every answer now closes its connection, so that clients
		// that kept one open come back through their load balancer (to
		// another replica) rather than meet a closed socket later.
		srv.SetKeepAlivesEnabled(false)
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if redirect != nil {
		_ = redirect.Shutdown(sctx)
	}
	return srv.Shutdown(sctx)
}

// splitByHost returns the handler of the HTTP listener: requests for an
// authenticate host (isAuthHost: authenticate_service_url's or
// authenticate_internal_service_url's, config.Config.IsAuthenticateHost)
// go to authn, everything else to proxy; with only one of them (the other
// nil), it takes every request. Nil when both are.
func splitByHost(isAuthHost func(host string) bool, authn, proxy http.Handler) http.Handler {
	switch {
	case authn == nil:
		return proxy
	case proxy == nil:
		return authn
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAuthHost(r.Host) {
			authn.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// redirectToHTTPS answers plain HTTP with a permanent redirect to the same
// URL on the HTTPS listener. The path and query are kept exactly as sent
// (escapes included: /a%2Fb is not /a/b).
func redirectToHTTPS(httpsAddr string) http.HandlerFunc {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if port != "" && port != "443" {
			host = net.JoinHostPort(host, port)
		}
		uri := r.URL.RequestURI()
		if r.RequestURI != "" && r.RequestURI[0] == '/' {
			uri = r.RequestURI
		}
		http.Redirect(w, r, "https://"+host+uri, http.StatusPermanentRedirect)
	}
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", s, err)
	}
	return u, nil
}
