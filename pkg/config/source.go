package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Source supplies a process's configuration: the one in force, and each
// new one, which every part of the process that follows it (a Reloader)
// builds before any of them switches to it. Implementations: FileSource
// (a file and its watcher), StaticSource (tests, embedding, and the base
// of sources that are pushed a configuration: Kubernetes, gRPC). Every
// implementation must be safe for concurrent use.
type Source interface {
	// Current returns the configuration in force, never nil. Callers must
	// not modify it.
	Current() *Config
	// OnChange adds r, named name in logs and errors (a service name), to
	// the Reloaders of every new configuration. Reloaders are prepared and
	// committed in the order they were added.
	OnChange(name string, r Reloader)
}

// Reloader is a part of a process that builds its state from the
// configuration: a service, or anything else that must switch to a new
// configuration together with the rest of its process.
type Reloader interface {
	// Prepare builds everything cfg needs without putting any of it in
	// force: what is served must not change. It returns commit, which puts
	// the built state in force and cannot fail, or an error saying why cfg
	// cannot run here. A commit that is not called is dropped; Prepare is
	// never called again before the last commit returned or was dropped.
	Prepare(ctx context.Context, cfg *Config) (commit func(), err error)
}

// ReloaderFunc adapts a function to the Reloader interface.
type ReloaderFunc func(ctx context.Context, cfg *Config) (commit func(), err error)

// Prepare calls f.
func (f ReloaderFunc) Prepare(ctx context.Context, cfg *Config) (func(), error) { return f(ctx, cfg) }

// Notify returns a Reloader that only observes: it never refuses, and
// calls fn with each new configuration once it is in force everywhere
// and published as Current.
func Notify(fn func(context.Context, *Config)) Reloader { return notifier(fn) }

// notifier is Notify's Reloader. Switch.Apply calls it after publishing.
type notifier func(context.Context, *Config)

func (n notifier) Prepare(ctx context.Context, cfg *Config) (func(), error) {
	return func() { n(ctx, cfg) }, nil
}

// RefusedError is the error of a configuration that a Reloader refused;
// nothing switched to it.
type RefusedError struct {
	// Reloader is the name the refusing Reloader was added with.
	Reloader string
	Err      error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused the configuration: %v", e.Reloader, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Switch holds the configuration in force and the Reloaders that follow
// it, and puts a new configuration in force build-then-swap: every
// Reloader prepares it first; only when all of them succeeded is every
// commit called and the configuration published as Current. Otherwise
// nothing switches. Source implementations embed a Switch. It is safe for
// concurrent use; Apply calls are serialised.
type Switch struct {
	current atomic.Pointer[Config]

	mu        sync.Mutex // serialises Apply and guards reloaders
	reloaders []namedReloader
}

type namedReloader struct {
	name string
	r    Reloader
}

// NewSwitch returns a Switch with cfg in force.
func NewSwitch(cfg *Config) *Switch {
	s := &Switch{}
	s.current.Store(cfg)
	return s
}

// Current returns the configuration in force.
func (s *Switch) Current() *Config { return s.current.Load() }

// OnChange adds r to the Reloaders of every new configuration.
func (s *Switch) OnChange(name string, r Reloader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloaders = append(s.reloaders, namedReloader{name, r})
}

// Apply puts cfg in force in every Reloader, or in none: it prepares cfg
// in each, and only when all succeeded commits them all, in order,
// publishes cfg as Current, and then calls the observers added with
// Notify. The error of a refusal is a *RefusedError
// naming the first Reloader that refused; the configuration in force
// stays everywhere.
func (s *Switch) Apply(ctx context.Context, cfg *Config) error {
	if cfg == nil {
		return errors.New("config: no configuration to apply")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var commits, notes []func()
	for _, nr := range s.reloaders {
		commit, err := nr.r.Prepare(ctx, cfg)
		if err != nil {
			return &RefusedError{Reloader: nr.name, Err: err}
		}
		if _, ok := nr.r.(notifier); ok {
			notes = append(notes, commit)
		} else {
			commits = append(commits, commit)
		}
	}
	for _, commit := range commits {
		if commit != nil {
			commit()
		}
	}
	s.current.Store(cfg)
	for _, note := range notes {
		note()
	}
	return nil
}

// StaticSource is a Source whose configuration changes only when its
// owner calls Apply: tests, embedding, and the base of a Source that is
// pushed its configuration (a Kubernetes controller, a config sent over
// gRPC).
type StaticSource struct {
	Switch
}

var (
	_ Source = (*StaticSource)(nil)
	_ Source = (*FileSource)(nil)
)

// NewStaticSource returns a Source with cfg in force.
func NewStaticSource(cfg *Config) *StaticSource {
	s := &StaticSource{}
	s.current.Store(cfg)
	return s
}

// FileSource is the Source of a configuration file (and the environment):
// Reload reads the file again and Watch reloads on every change of it. It
// is safe for concurrent use.
type FileSource struct {
	Switch
	reloadMu sync.Mutex // one Reload at a time: the last file read wins
	path     string
	env      Environ
	logger   *slog.Logger
}

// NewSource loads the configuration at path and returns a FileSource for
// it. It starts no goroutine: call Watch.
func NewSource(path string, env Environ, logger *slog.Logger) (*FileSource, error) {
	cfg, err := Load(path, env)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &FileSource{path: path, env: env, logger: logger}
	s.current.Store(cfg)
	return s, nil
}

// Reload reads the file again and applies it (see Switch.Apply). A valid
// file that every Reloader accepts becomes the running configuration;
// an invalid file, or one that a Reloader refuses, is refused with an
// error naming the problem (and the Reloader), logged, and the running
// configuration stays everywhere.
func (s *FileSource) Reload(ctx context.Context) error {
	if s.path == "" {
		return nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, err := Load(s.path, s.env)
	if err != nil {
		s.logger.Error("config reload refused; keeping the running configuration", "file", s.path, "error", err.Error())
		return fmt.Errorf("reload %s: %w", s.path, err)
	}
	old := s.Current()
	if err := s.Apply(ctx, cfg); err != nil {
		attrs := []any{"file", s.path, "error", err.Error()}
		var re *RefusedError
		if errors.As(err, &re) {
			attrs = append(attrs, "service", re.Reloader)
		}
		s.logger.Error("config reload refused; keeping the running configuration", attrs...)
		return fmt.Errorf("reload %s: %w", s.path, err)
	}
	if old != nil && fmt.Sprint(old.Services) != fmt.Sprint(cfg.Services) {
		s.logger.Warn("services changed in the config file; a restart is needed for that to take effect", "file", s.path)
	}
	s.logger.Info("config reloaded", "file", s.path, "routes", len(cfg.Routes))
	return nil
}

// Watch reloads whenever the file changes, until ctx ends. It watches the
// directory, so editors that write a new file and rename it, and
// Kubernetes ConfigMap symlink swaps, are seen too.
func (s *FileSource) Watch(ctx context.Context) error {
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
