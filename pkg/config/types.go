package config

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// StringList is a list option. It accepts a YAML list or a comma-separated
// string, as Pomerium does (`jwt_claims_headers: email,name`).
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = splitList(n.Value)
		return nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: expected a string, got %s", c.Line, kindName(c))
			}
			if v := strings.TrimSpace(c.Value); v != "" {
				out = append(out, v)
			}
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: expected a list or a comma-separated string, got %s", n.Line, kindName(n))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Duration is a time.Duration written as Go duration text ("30s", "14h").
// A bare number is read as seconds.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration such as 30s or 14h, got %s", n.Line, kindName(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("expected a positive duration, got %q", s)
		}
		return d, nil
	}
	var secs int64
	if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && fmt.Sprint(secs) == s && secs >= 0 {
		return time.Duration(secs) * time.Second, nil
	}
	return 0, fmt.Errorf("expected a duration such as 30s or 14h, got %q", s)
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// StringMap is a map option such as set_request_headers. Besides a YAML map
// it accepts "k=v,k2=v2" (the environment form).
type StringMap map[string]string

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *StringMap) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		out := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: value of %q must be a string, got %s", v.Line, k.Value, kindName(v))
			}
			out[k.Value] = v.Value
		}
		*m = out
		return nil
	case yaml.ScalarNode:
		out := map[string]string{}
		for _, p := range splitList(n.Value) {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("line %d: expected key=value pairs, got %q", n.Line, p)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		*m = out
		return nil
	}
	return fmt.Errorf("line %d: expected a map, got %s", n.Line, kindName(n))
}

// ClaimsHeaders maps a request header name to the JWT claim it carries.
// It accepts Pomerium's list form (`email,name` → X-Pomerium-Claim-Email,
// X-Pomerium-Claim-Name) and its map form ({X-Email: email}).
type ClaimsHeaders map[string]string

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *ClaimsHeaders) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var m StringMap
		if err := m.UnmarshalYAML(n); err != nil {
			return err
		}
		*c = ClaimsHeaders(m)
		return nil
	}
	var l StringList
	if err := l.UnmarshalYAML(n); err != nil {
		return fmt.Errorf("expected a list of claims or a map of header to claim: %w", err)
	}
	out := make(ClaimsHeaders, len(l))
	for _, claim := range l {
		out[ClaimHeaderName(claim)] = claim
	}
	*c = out
	return nil
}

// ClaimHeaderName is the header Pomerium uses for a claim named in the list
// form of jwt_claims_headers: "x-pomerium-claim-" and the claim verbatim,
// in Go's canonical form ("email" → "X-Pomerium-Claim-Email",
// "email_verified" → "X-Pomerium-Claim-Email_verified": the underscore
// stays, as on the wire from Pomerium).
func ClaimHeaderName(claim string) string {
	return textproto.CanonicalMIMEHeaderKey("x-pomerium-claim-" + claim)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}
