package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// removedKeys are Pomerium options that no longer exist; using one is an
// error that says so rather than a plain "unknown key".
var removedKeys = map[string]string{
	"cache_service_url":              "the cache service was merged into the databroker; use databroker_service_url",
	"headers":                        "renamed to set_response_headers",
	"idp_service_account":            "directory sync was removed; groups come from the IdP's groups claim",
	"idp_refresh_directory_timeout":  "directory sync was removed",
	"idp_refresh_directory_interval": "directory sync was removed",
	"signing_key_algorithm":          "the algorithm follows the key type of signing_key (EC → ES256, RSA → RS256)",
	"policy_file":                    "put routes in the main config file under routes",
	"grpc_server_max_connection_age": "removed; keepalive is managed by gatehouse",
	"allowed_groups":                 "removed; use a policy with the groups criterion",
	"forward_auth_url":               "forward-auth mode was removed; put gatehouse in front of the upstream",
	"databroker_storage_cert_file":   "use rediss:// in databroker_storage_connection_string",
	"databroker_storage_key_file":    "use rediss:// in databroker_storage_connection_string",
	"databroker_storage_ca_file":     "use rediss:// in databroker_storage_connection_string",
}

// removedRouteKeys are route options Pomerium no longer has.
var removedRouteKeys = map[string]string{
	"set_authorization_header": "removed in Pomerium v0.24; use set_request_headers with Authorization: Bearer ${pomerium.id_token} (or ${pomerium.access_token})",
}

// ignoredKey is a Pomerium option accepted without effect, for the one
// warning that names them all.
type ignoredKey struct {
	key  string
	line int
}

// fieldIndex maps the yaml names of a struct type to field indexes.
func fieldIndex(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// decodeStrict decodes a mapping node into the struct pointed to by dst,
// one field at a time so that every error names its key and line, and an
// unknown key is reported rather than ignored. what names the object for
// messages ("routes[2]").
func decodeStrict(n *yaml.Node, dst any, what string, errs *Errors, lines map[string]int) {
	decodeStrictIgnoring(n, dst, what, errs, lines, nil)
}

// decodeStrictIgnoring is decodeStrict that accepts the options the
// compatibility table marks Ignored, appending them to ignored (when nil,
// they are errors too).
func decodeStrictIgnoring(n *yaml.Node, dst any, what string, errs *Errors, lines map[string]int, ignored *[]ignoredKey) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		errs.add(what, n.Line, fmt.Sprintf("expected a map of options, got %s", kindName(n)))
		return
	}
	v := reflect.ValueOf(dst).Elem()
	idx := fieldIndex(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := joinKey(what, k.Value)
		lines[key] = k.Line
		if seen[k.Value] {
			errs.add(key, k.Line, "set twice")
			continue
		}
		seen[k.Value] = true
		fi, ok := idx[k.Value]
		if !ok {
			unknownKey(k, key, what, idx, errs, ignored)
			continue
		}
		field := v.Field(fi)
		if err := decodeFieldIgnoring(val, field, key, errs, lines, ignored); err != nil {
			errs.add(key, val.Line, withoutLine(err.Error(), val.Line))
		}
	}
}

// unknownKey reports a key that is no field of the object being decoded:
// a Pomerium option the compatibility table accepts and ignores (noted in
// ignored), one it refuses (with the reason), a removed one, or a typo.
func unknownKey(k *yaml.Node, key, what string, idx map[string]int, errs *Errors, ignored *[]ignoredKey) {
	isRoute := strings.HasPrefix(what, "routes[") || strings.HasPrefix(what, "policy[")
	if what == "" || isRoute {
		if o := pomeriumOption(k.Value, isRoute); o != nil {
			switch {
			case o.Support == Ignored && ignored != nil:
				*ignored = append(*ignored, ignoredKey{key, k.Line})
				return
			case o.Support == Refused:
				errs.add(key, k.Line, "is a Pomerium option that gatehouse refuses: "+o.Note)
				return
			}
		}
	}
	switch {
	case removedKeys[k.Value] != "" && what == "":
		errs.add(key, k.Line, "was removed from Pomerium: "+removedKeys[k.Value])
	case removedRouteKeys[k.Value] != "" && isRoute:
		errs.add(key, k.Line, "was removed from Pomerium: "+removedRouteKeys[k.Value])
	default:
		known := make(map[string]int, len(idx))
		for name := range idx {
			known[name] = 0
		}
		if what == "" || isRoute {
			for _, o := range pomeriumOptions {
				if o.Route == isRoute {
					known[o.Name] = 0
				}
			}
		}
		errs.add(key, k.Line, "unknown option"+suggest(k.Value, known))
	}
}

// decodeField decodes one value; nested option structs are decoded strictly.
func decodeField(val *yaml.Node, field reflect.Value, key string, errs *Errors, lines map[string]int) error {
	return decodeFieldIgnoring(val, field, key, errs, lines, nil)
}

func decodeFieldIgnoring(val *yaml.Node, field reflect.Value, key string, errs *Errors, lines map[string]int, ignored *[]ignoredKey) error {
	switch field.Interface().(type) {
	case []Route:
		return decodeList(val, field, key, errs, func(n *yaml.Node, what string) reflect.Value {
			var r Route
			decodeStrictIgnoring(n, &r, what, errs, lines, ignored)
			lines[what] = n.Line
			return reflect.ValueOf(r)
		})
	case []Certificate:
		return decodeList(val, field, key, errs, func(n *yaml.Node, what string) reflect.Value {
			var c Certificate
			decodeStrict(n, &c, what, errs, lines)
			return reflect.ValueOf(c)
		})
	case DownstreamMTLS:
		if val.Kind != yaml.MappingNode {
			return fmt.Errorf("expected a map of options (ca, ca_file, crl, crl_file, enforcement, match_subject_alt_names, max_verify_depth), got %s", kindName(val))
		}
		decodeStrict(val, field.Addr().Interface(), key, errs, lines)
		return nil
	case []RewriteHeader:
		return decodeList(val, field, key, errs, func(n *yaml.Node, what string) reflect.Value {
			var h RewriteHeader
			decodeStrict(n, &h, what, errs, lines)
			if h.Header == "" {
				errs.add(what+".header", n.Line, "required: the response header to rewrite")
			}
			return reflect.ValueOf(h)
		})
	case *RouteRedirect:
		var rr RouteRedirect
		decodeStrict(val, &rr, key, errs, lines)
		field.Set(reflect.ValueOf(&rr))
		return nil
	case *DirectResponse:
		var dr DirectResponse
		decodeStrict(val, &dr, key, errs, lines)
		field.Set(reflect.ValueOf(&dr))
		return nil
	case *yaml.Node:
		c := *val
		field.Set(reflect.ValueOf(&c))
		return nil
	}
	ptr := reflect.New(field.Type())
	if err := val.Decode(ptr.Interface()); err != nil {
		return cleanYAMLError(err, field.Type(), val)
	}
	field.Set(ptr.Elem())
	return nil
}

func decodeList(val *yaml.Node, field reflect.Value, key string, errs *Errors, one func(*yaml.Node, string) reflect.Value) error {
	if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
		return nil
	}
	if val.Kind != yaml.SequenceNode {
		return fmt.Errorf("expected a list, got %s", kindName(val))
	}
	out := reflect.MakeSlice(field.Type(), 0, len(val.Content))
	for i, c := range val.Content {
		out = reflect.Append(out, one(c, fmt.Sprintf("%s[%d]", key, i)))
	}
	field.Set(out)
	return nil
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// lineRE matches the "line N: " that value decoders put first.
var lineRE = regexp.MustCompile(`^line (\d+): `)

// withoutLine drops a leading "line N: " from msg when N is line (the
// line the error is reported at already), or any such prefix when line is
// 0 (a value from an environment variable, whose "line 1" means nothing).
func withoutLine(msg string, line int) string {
	for {
		m := lineRE.FindStringSubmatch(msg)
		if m == nil || (line > 0 && m[1] != strconv.Itoa(line)) {
			return msg
		}
		msg = msg[len(m[0]):]
	}
}

// cleanYAMLError turns yaml.v3's "cannot unmarshal !!str `abc` into bool"
// into what the option expects, with the value as written (no YAML tags).
func cleanYAMLError(err error, t reflect.Type, val *yaml.Node) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	if strings.Contains(msg, "cannot unmarshal") {
		want := t.String()
		switch t.Kind() {
		case reflect.Bool:
			want = "true or false"
		case reflect.Pointer:
			if t.Elem().Kind() == reflect.Bool {
				want = "true or false"
			}
		case reflect.Int, reflect.Int64:
			want = "a whole number"
		case reflect.String:
			want = "a string"
		case reflect.Map:
			want = "a map"
		}
		return fmt.Errorf("expected %s, got %s", want, kindName(val))
	}
	return fmt.Errorf("%s", msg)
}

// suggest offers the closest known key for a probable typo.
func suggest(key string, idx map[string]int) string {
	best, bestD := "", 3
	for k := range idx {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
