package grafanatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// allowedAlgs are the signature algorithms accepted for the identity JWT.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// verify checks a JWT as Grafana's JWT auth does and returns its claims.
func (s *Server) verify(ctx context.Context, token string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("not a compact JWS signed with ES256 or RS256: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("expected exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, errors.New("no kid in the JWT header")
	}
	keys, err := s.keys.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = jws.Verify(k); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bad signature: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("claims are not a JSON object: %w", err)
	}
	if err := s.validateClaims(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

func (s *Server) validateClaims(claims map[string]any) error {
	now := s.cfg.Now()
	for _, c := range []struct {
		name  string
		check func(t time.Time) bool
		msg   string
	}{
		{"exp", func(t time.Time) bool { return now.After(t.Add(Leeway)) }, "token is expired"},
		{"nbf", func(t time.Time) bool { return now.Add(Leeway).Before(t) }, "token not valid yet (nbf)"},
		{"iat", func(t time.Time) bool { return now.Add(Leeway).Before(t) }, "token issued in the future (iat)"},
	} {
		v, ok := claims[c.name]
		if !ok {
			continue
		}
		t, err := numericDate(v)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if c.check(t) {
			return errors.New(c.msg)
		}
	}
	for key, want := range s.cfg.ExpectClaims {
		switch key {
		case "iss", "sub":
			if got, _ := claims[key].(string); got != want {
				return fmt.Errorf("%s claim mismatch", key)
			}
		case "aud":
			wantList, err := stringList(want)
			if err != nil {
				return fmt.Errorf("expect_claims aud: %w", err)
			}
			got, err := stringList(claims["aud"])
			if err != nil {
				return fmt.Errorf("aud: %w", err)
			}
			for _, w := range wantList {
				if !contains(got, w) {
					return errors.New("aud claim mismatch")
				}
			}
		default:
			if !claimEqual(claims[key], want) {
				return fmt.Errorf("%s claim mismatch", key)
			}
		}
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return errors.New("missing mandatory 'sub' claim")
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(v any) (time.Time, error) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, errors.New("not a number")
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, errors.New("not a number")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []string:
		return v, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("expected a string or a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("expected a string or a list of strings")
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// claimEqual compares a claim with an expected value, numbers by value.
func claimEqual(got, want any) bool {
	norm := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			return v
		}
		var out any
		_ = json.Unmarshal(b, &out)
		return out
	}
	return reflect.DeepEqual(norm(got), norm(want))
}

// tokenFromHeader strips a leading "Bearer " (case-sensitive, as Grafana
// does).
func tokenFromHeader(v string) string {
	return strings.TrimPrefix(v, "Bearer ")
}
