package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// bareProxyCommand runs the baseline: a minimal, tuned Go
// httputil.ReverseProxy to one upstream, with no identity work at all.
func bareProxyCommand(args []string) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	addr := fs.String("address", "127.0.0.1:0", "listen address")
	to := fs.String("to", "", "upstream URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*to)
	if err != nil || target.Host == "" {
		return fmt.Errorf("bare-proxy: --to must be an absolute URL, got %q", *to)
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   4096,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded() // what any reverse proxy sends; gatehouse does too
			pr.Out.Host = pr.In.Host
		},
		Transport:  transport,
		BufferPool: newBufferPool(32 * 1024),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // wrk closed the connection at the end of a run
			}
			log.Printf("bare-proxy: %s %s: %v", r.Method, r.URL.Path, err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Printf("bare-proxy listening on %s -> %s\n", lis.Addr(), target)
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bufferPool is an httputil.BufferPool backed by a sync.Pool.
type bufferPool struct{ p sync.Pool }

func newBufferPool(size int) *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }
