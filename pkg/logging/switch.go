package logging

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
)

// Switch is a slog.Handler whose level and format are set after it is in
// use: a process logs from its first line (the configuration being read)
// and every later line (reloads included) in the one format the
// configuration asks for. Safe for concurrent use; Set may be called at
// any time, e.g. on a configuration reload.
type Switch struct {
	w    io.Writer
	base atomic.Pointer[generation]
}

// generation is one setting of a Switch.
type generation struct{ h slog.Handler }

// NewSwitch returns a Switch writing to w, at info level in JSON until Set
// says otherwise.
func NewSwitch(w io.Writer) *Switch {
	s := &Switch{w: w}
	s.Set("info", "json")
	return s
}

// Set makes every logger of the Switch write at level (debug, info, warn,
// error) in format (json or text) from now on.
func (s *Switch) Set(level, format string) {
	s.base.Store(&generation{h: New(s.w, level, format).Handler()})
}

// Logger returns a logger writing through the Switch.
func (s *Switch) Logger() *slog.Logger { return slog.New(&switched{s: s}) }

// switched is a handler of a Switch with the attributes and groups of
// With and WithGroup, applied to the Switch's current handler (and cached
// until the next Set).
type switched struct {
	s     *Switch
	ops   []func(slog.Handler) slog.Handler
	cache atomic.Pointer[derived]
}

type derived struct {
	gen *generation
	h   slog.Handler
}

func (h *switched) current() slog.Handler {
	gen := h.s.base.Load()
	if d := h.cache.Load(); d != nil && d.gen == gen {
		return d.h
	}
	out := gen.h
	for _, op := range h.ops {
		out = op(out)
	}
	h.cache.Store(&derived{gen: gen, h: out})
	return out
}

func (h *switched) Enabled(ctx context.Context, l slog.Level) bool {
	return h.s.base.Load().h.Enabled(ctx, l)
}

func (h *switched) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *switched) with(op func(slog.Handler) slog.Handler) *switched {
	ops := make([]func(slog.Handler) slog.Handler, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &switched{s: h.s, ops: append(ops, op)}
}

func (h *switched) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithAttrs(attrs) })
}

func (h *switched) WithGroup(name string) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithGroup(name) })
}
