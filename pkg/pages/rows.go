package pages

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TimeFormat is how pages show a time: readable, in UTC, unambiguous.
const TimeFormat = "Mon 2 Jan 2006, 15:04:05 UTC"

// TimeRow is a row showing t readably, with raw (the value as stored or
// sent) on hover.
func TimeRow(label string, t time.Time, raw string) Row {
	if t.IsZero() {
		return Row{Label: label, Value: "—"}
	}
	return Row{Label: label, Value: t.UTC().Format(TimeFormat), Title: raw}
}

// timeClaims are the JWT claims that hold NumericDate values.
var timeClaims = map[string]bool{"iat": true, "exp": true, "nbf": true, "auth_time": true, "updated_at": true}

// ClaimRows turns a JWT's or session's claims into rows sorted by name:
// strings as they are, dates (iat, exp, nbf, auth_time, updated_at)
// readable with the raw number on hover, anything else as JSON.
func ClaimRows(claims map[string]any) []Row {
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	rows := make([]Row, 0, len(names))
	for _, k := range names {
		v := claims[k]
		if timeClaims[k] {
			if sec, ok := numericDate(v); ok {
				raw, _ := json.Marshal(v)
				rows = append(rows, TimeRow(k, time.Unix(sec, 0), string(raw)))
				continue
			}
		}
		switch c := v.(type) {
		case string:
			rows = append(rows, Row{Label: k, Value: c})
		case []any:
			parts := make([]string, 0, len(c))
			plain := true
			for _, e := range c {
				s, ok := e.(string)
				if !ok {
					plain = false
					break
				}
				parts = append(parts, s)
			}
			if plain {
				raw, _ := json.Marshal(c)
				rows = append(rows, Row{Label: k, Value: strings.Join(parts, ", "), Title: string(raw)})
				continue
			}
			b, _ := json.Marshal(c)
			rows = append(rows, Row{Label: k, Value: string(b), Code: true})
		default:
			b, _ := json.Marshal(c)
			rows = append(rows, Row{Label: k, Value: string(b), Code: true})
		}
	}
	return rows
}

// numericDate reads a JWT NumericDate (seconds since the epoch).
func numericDate(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n > 0
	case int64:
		return n, n > 0
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, i > 0
		}
		if f, err := strconv.ParseFloat(string(n), 64); err == nil {
			return int64(f), f > 0
		}
	}
	return 0, false
}

// reasonTexts explain Pomerium's policy reasons to the person refused.
var reasonTexts = map[string]string{
	"claim-unauthorized":       "A claim of your account does not have a value the policy asks for.",
	"date-unauthorized":        "The route is not open on this date.",
	"day-of-week-unauthorized": "The route is not open on this day of the week.",
	"domain-unauthorized":      "Your email address's domain is not one the policy allows.",
	"email-unauthorized":       "Your email address is not one the policy allows.",
	"groups-unauthorized":      "You are not in a group the policy asks for.",
	"http-method-unauthorized": "The policy does not allow this request method.",
	"http-path-unauthorized":   "The policy does not allow this path.",
	"reject":                   "The policy rejects every request.",
	"source-ip-unauthorized":   "The policy does not allow requests from your network address.",
	"time-of-day-unauthorized": "The route is not open at this time of day.",
	"user-unauthorized":        "The policy does not allow your account.",
	"user-unauthenticated":     "The policy needs you to be signed in.",
	"non-cors-request":         "The policy allows only CORS preflight requests here.",
	"non-pomerium-route":       "The policy allows only gatehouse's own pages here.",
}

// Reasons explains the given policy reason names, keeping only those that
// say why a request was refused. denied says whether a deny rule matched
// (else no allow rule did).
func Reasons(names []string, denied bool) []Reason {
	var out []Reason
	for _, n := range names {
		text, ok := reasonTexts[n]
		if !ok {
			if denied && (strings.HasSuffix(n, "-ok") || n == "accept") {
				// A deny rule matched because this criterion did.
				out = append(out, Reason{Name: n, Text: "A deny rule of the policy matches this request on " +
					strings.ReplaceAll(strings.TrimSuffix(n, "-ok"), "-", " ") + "."})
			}
			continue
		}
		out = append(out, Reason{Name: n, Text: text})
	}
	return out
}
