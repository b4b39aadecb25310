package config

import (
	"context"
	"errors"
	"testing"
)

// A new configuration is put in force everywhere or nowhere: when one
// Reloader refuses it, no commit runs and Current stays; when all accept,
// every commit runs, in order, before it becomes Current.
func TestSwitchBuildThenSwap(t *testing.T) {
	old, next := &Config{}, &Config{}
	src := NewStaticSource(old)
	var log []string
	refuse := errors.New("no thanks")
	accept := func(name string) Reloader {
		return ReloaderFunc(func(_ context.Context, cfg *Config) (func(), error) {
			log = append(log, "prepare "+name)
			return func() {
				if src.Current() != old {
					t.Errorf("%s: the configuration was published before every commit ran", name)
				}
				log = append(log, "commit "+name)
			}, nil
		})
	}
	refusing := true
	src.OnChange("a", accept("a"))
	src.OnChange("b", ReloaderFunc(func(_ context.Context, cfg *Config) (func(), error) {
		log = append(log, "prepare b")
		if refusing {
			return nil, refuse
		}
		return func() { log = append(log, "commit b") }, nil
	}))
	src.OnChange("c", accept("c"))

	err := src.Apply(context.Background(), next)
	var re *RefusedError
	if !errors.As(err, &re) || re.Reloader != "b" || !errors.Is(err, refuse) {
		t.Fatalf("Apply = %v, want b's refusal", err)
	}
	if src.Current() != old {
		t.Fatal("a refused configuration became Current")
	}
	if got, want := join(log), "prepare a, prepare b"; got != want {
		t.Fatalf("calls = %s, want %s (no commit, nothing prepared after the refusal)", got, want)
	}

	log, refusing = nil, false
	if err := src.Apply(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if src.Current() != next {
		t.Fatal("the accepted configuration is not Current")
	}
	if got, want := join(log), "prepare a, prepare b, prepare c, commit a, commit b, commit c"; got != want {
		t.Fatalf("calls = %s, want %s", got, want)
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// An observer added with Notify sees the new configuration as Current.
func TestNotifyRunsAfterPublishing(t *testing.T) {
	src := NewStaticSource(&Config{})
	next := &Config{}
	seen := false
	src.OnChange("observer", Notify(func(_ context.Context, cfg *Config) {
		seen = cfg == next && src.Current() == next
	}))
	if err := src.Apply(context.Background(), next); err != nil || !seen {
		t.Fatalf("Apply = %v; the observer saw the configuration in force: %v", err, seen)
	}
}
