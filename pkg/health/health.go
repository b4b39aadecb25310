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
//
// Readiness means "can serve what this process serves": only the checks
// added with Add gate /readyz. The health of what a service depends on but
// can serve without for a while (the databroker for authorize's synced
// cache, Redis for the databroker) is added with AddDependency: reported in
// /readyz's body, as a metric and in logs, never failing readiness, so that
// a storage blip cannot take every replica out of its load balancer.
type Registry struct {
	started  atomic.Bool
	stopping atomic.Bool
	mu       sync.RWMutex
	checks   map[string]Checker
	deps     map[string]Checker
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{checks: map[string]Checker{}, deps: map[string]Checker{}}
}

// Add registers a named readiness check.
func (r *Registry) Add(name string, c Checker) {
	r.mu.Lock()
	r.checks[name] = c
	r.mu.Unlock()
}

// AddDependency registers a named dependency check: reported by /readyz
// (under "dependencies") and by Dependencies, never failing readiness.
func (r *Registry) AddDependency(name string, c Checker) {
	r.mu.Lock()
	r.deps[name] = c
	r.mu.Unlock()
}

// SetStarted marks start-up as finished.
func (r *Registry) SetStarted() { r.started.Store(true) }

// SetStopping makes /readyz fail from now on ("stopping"): the process is
// shutting down and load balancers should stop sending to it, though it
// still serves what reaches it.
func (r *Registry) SetStopping() { r.stopping.Store(true) }

// Dependencies runs every dependency check and returns each one's error
// (nil when healthy) by name.
func (r *Registry) Dependencies() map[string]error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]error, len(r.deps))
	for name, c := range r.deps {
		out[name] = c()
	}
	return out
}

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
		if r.stopping.Load() {
			failed["shutdown"] = "stopping: draining before exit"
		}
		var deps map[string]string
		if d := r.Dependencies(); len(d) > 0 {
			deps = make(map[string]string, len(d))
			for name, err := range d {
				deps[name] = "ok"
				if err != nil {
					deps[name] = "unavailable: " + err.Error()
				}
			}
		}
		if len(failed) > 0 {
			names := make([]string, 0, len(failed))
			for n := range failed {
				names = append(names, n)
			}
			sort.Strings(names)
			body := map[string]any{"status": "not ready", "failing": failed, "components": names}
			if deps != nil {
				body["dependencies"] = deps
			}
			writeStatus(w, http.StatusServiceUnavailable, body)
			return
		}
		body := map[string]any{"status": "ok"}
		if deps != nil {
			body["dependencies"] = deps
		}
		writeStatus(w, http.StatusOK, body)
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

// WatchDependencies runs the dependency checks every interval until ctx
// ends. It logs each change (a warning when a dependency becomes
// unavailable, info when it is back) and calls observe with every result,
// for a metric.
func (r *Registry) WatchDependencies(ctx context.Context, interval time.Duration, logger *slog.Logger, observe func(name string, up bool)) {
	last := map[string]bool{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// The first check waits one interval: connections made at start-up
		// are still connecting before.
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for name, err := range r.Dependencies() {
			up := err == nil
			was, seen := last[name]
			switch {
			case !up && (was || !seen):
				logger.Warn("dependency unavailable; still serving (readiness unaffected)", "dependency", name, "error", err.Error())
			case up && seen && !was:
				logger.Info("dependency available again", "dependency", name)
			}
			last[name] = up
			if observe != nil {
				observe(name, up)
			}
		}
	}
}
