package config

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Source holds the running configuration and hands every valid new one to
// its subscribers. It is safe for concurrent use.
type Source struct {
	path   string
	env    Environ
	logger *slog.Logger

	current atomic.Pointer[Config]

	mu   sync.Mutex // serialises reloads and guards subs
	subs []func(context.Context, *Config)
}

// NewSource loads the configuration at path and returns a Source for it.
func NewSource(path string, env Environ, logger *slog.Logger) (*Source, error) {
	cfg, err := Load(path, env)
	if err != nil {
		return nil, err
	}
	s := &Source{path: path, env: env, logger: logger}
	s.current.Store(cfg)
	return s, nil
}

// NewStaticSource wraps a configuration that never changes (tests, embedding).
func NewStaticSource(cfg *Config) *Source {
	s := &Source{logger: slog.Default()}
	s.current.Store(cfg)
	return s
}

// Current returns the configuration in force. Callers must not modify it.
func (s *Source) Current() *Config { return s.current.Load() }

// OnChange registers fn to be called, in registration order, with each new
// configuration after a successful reload.
func (s *Source) OnChange(fn func(context.Context, *Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Reload reads the file again. A valid file becomes the running
// configuration and is handed to every subscriber; an invalid one is
// refused with an error naming the problem, and the running one stays.
func (s *Source) Reload(ctx context.Context) error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := Load(s.path, s.env)
	if err != nil {
		s.logger.Error("config reload refused; keeping the running configuration", "file", s.path, "error", err.Error())
		return fmt.Errorf("reload %s: %w", s.path, err)
	}
	old := s.current.Load()
	if old != nil && fmt.Sprint(old.Services) != fmt.Sprint(cfg.Services) {
		s.logger.Warn("services changed in the config file; a restart is needed for that to take effect", "file", s.path)
	}
	s.current.Store(cfg)
	for _, fn := range s.subs {
		fn(ctx, cfg)
	}
	s.logger.Info("config reloaded", "file", s.path, "routes", len(cfg.Routes))
	return nil
}

// Watch reloads whenever the file changes, until ctx ends. It watches the
// directory, so editors that write a new file and rename it, and
// Kubernetes ConfigMap symlink swaps, are seen too.
func (s *Source) Watch(ctx context.Context) error {
	if s.path == "" {
		<-ctx.Done()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer w.Close()
	abs, err := filepath.Abs(s.path)
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	// Several events arrive for one save; wait for them to settle.
	const settle = 100 * time.Millisecond
	var timer *time.Timer
	fire := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Base(ev.Name)
			if name != filepath.Base(abs) && name != "..data" {
				continue
			}
			if timer == nil {
				timer = time.AfterFunc(settle, func() { fire <- struct{}{} })
			} else {
				timer.Reset(settle)
			}
		case <-fire:
			_ = s.Reload(ctx)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.logger.Warn("config watch error", "error", err)
		}
	}
}
