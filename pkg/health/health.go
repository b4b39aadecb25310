// Package health serves the process's HTTP health endpoints (/healthz,
// /readyz, /startupz) and tracks readiness of each component.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Checker reports whether a component is ready to serve.
type Checker func() error

// Registry holds the readiness checks of a process. It is safe for
// concurrent use.
type Registry struct {
	started atomic.Bool
	mu      sync.RWMutex
	checks  map[string]Checker
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{checks: map[string]Checker{}} }

// Add registers a named readiness check.
func (r *Registry) Add(name string, c Checker) {
	r.mu.Lock()
	r.checks[name] = c
	r.mu.Unlock()
}

// SetStarted marks start-up as finished.
func (r *Registry) SetStarted() { r.started.Store(true) }

// Ready runs every check and returns the failing ones by name.
func (r *Registry) Ready() map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	failed := map[string]string{}
	for name, c := range r.checks {
		if err := c(); err != nil {
			failed[name] = err.Error()
		}
	}
	return failed
}

// ErrNotReady is what a Checker returns before its component is ready.
var ErrNotReady = errors.New("not ready")

// Handler serves /healthz (the process lives), /readyz (every check
// passes) and /startupz (start-up finished).
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("/startupz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.started.Load() {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		failed := r.Ready()
		if !r.started.Load() {
			failed["startup"] = "starting"
		}
		if len(failed) > 0 {
			names := make([]string, 0, len(failed))
			for n := range failed {
				names = append(names, n)
			}
			sort.Strings(names)
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failed, "components": names})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	return mux
}

func writeStatus(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// Serve runs an HTTP server for h on addr until ctx ends, then shuts it
// down gracefully within the given grace period.
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, grace time.Duration) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	logger.Info("http listener started", "address", lis.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return srv.Shutdown(sctx)
}
