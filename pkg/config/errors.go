package config

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem with one option.
type FieldError struct {
	Key  string // option name, with the route index for route fields ("routes[0].from")
	Line int    // line in the config file, 0 when the value came from the environment or a default
	// Env is the environment variable the value came from ("" when it
	// did not): messages name it rather than a line of the file.
	Env string
	Msg string
}

func (e FieldError) Error() string {
	switch {
	case e.Env != "":
		return fmt.Sprintf("%s (environment variable %s): %s", e.Key, e.Env, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// markEnv names the environment variable of every problem with an option
// whose value came from one (fromEnv: option name → variable).
func (e Errors) markEnv(fromEnv map[string]string) {
	for i := range e {
		root, _, _ := strings.Cut(e[i].Key, ".")
		root, _, _ = strings.Cut(root, "[")
		if v, ok := fromEnv[root]; ok && e[i].Line == 0 && e[i].Env == "" {
			e[i].Env = v
		}
	}
}

// Errors is every problem found in a configuration. Load returns it as its
// error so that `gatehouse validate` can list them all at once.
type Errors []FieldError

func (e *Errors) add(key string, line int, msg string) {
	*e = append(*e, FieldError{Key: key, Line: line, Msg: msg})
}

func (e Errors) Error() string {
	sorted := append(Errors(nil), e...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Line < sorted[j].Line })
	lines := make([]string, len(sorted))
	for i, fe := range sorted {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

func (e Errors) err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}
