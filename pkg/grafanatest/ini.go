package grafanatest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// iniKeys are the grafana.ini keys ParseINI reads, by section ("" is the
// default section before any header).
var iniKeys = map[string][]string{
	"":         {"app_mode"},
	"auth.jwt": {"enabled", "header_name", "email_claim", "username_claim", "jwk_set_url", "jwk_set_file", "cache_ttl", "auto_sign_up", "expect_claims", "tls_client_ca"},
	"users":    {"auto_assign_org", "auto_assign_org_role"},
	"security": {"admin_user", "admin_password"},
}

// ParseINI reads the Config from a grafana.ini: [auth.jwt] (enabled,
// header_name, email_claim, username_claim, jwk_set_url, jwk_set_file,
// cache_ttl, auto_sign_up, expect_claims as JSON, tls_client_ca as a file
// path), [users] (auto_assign_org, auto_assign_org_role), [security]
// (admin_user, admin_password) and app_mode (development allows an http
// jwk_set_url). Other keys are ignored, as in a full grafana.ini. It fails
// when [auth.jwt] is not enabled.
func ParseINI(data []byte) (Config, error) {
	return ParseINIEnv(data, nil)
}

// ParseINIEnv is ParseINI with Grafana's environment overrides: a variable
// GF_<SECTION>_<KEY> (upper case, "." and "-" as "_"; GF_DEFAULT_APP_MODE
// for the default section) replaces the file's value, as in Grafana's
// container image (GF_AUTH_JWT_TLS_CLIENT_CA=/certs/ca.pem). env may be nil.
func ParseINIEnv(data []byte, env func(string) (string, bool)) (Config, error) {
	values, err := parseINI(data)
	if err != nil {
		return Config{}, err
	}
	if env != nil {
		for section, keys := range iniKeys {
			for _, key := range keys {
				if v, ok := env(envName(section, key)); ok {
					if values[section] == nil {
						values[section] = map[string]string{}
					}
					values[section][key] = v
				}
			}
		}
	}
	get := func(section, key string) string { return values[section][key] }
	jwt := func(key string) string { return get("auth.jwt", key) }

	var cfg Config
	enabled, err := parseBool(jwt("enabled"), false)
	if err != nil {
		return Config{}, fmt.Errorf("grafanatest: [auth.jwt] enabled: %w", err)
	}
	if !enabled {
		return Config{}, fmt.Errorf("grafanatest: [auth.jwt] is not enabled")
	}
	cfg.HeaderName = jwt("header_name")
	cfg.EmailClaim = jwt("email_claim")
	cfg.UsernameClaim = jwt("username_claim")
	cfg.JWKSetURL = jwt("jwk_set_url")
	cfg.JWKSetFile = jwt("jwk_set_file")
	cfg.TLSClientCA = jwt("tls_client_ca")
	if v := jwt("cache_ttl"); v != "" {
		if cfg.CacheTTL, err = parseDuration(v); err != nil {
			return Config{}, fmt.Errorf("grafanatest: [auth.jwt] cache_ttl: %w", err)
		}
	}
	if cfg.AutoSignUp, err = parseBool(jwt("auto_sign_up"), false); err != nil {
		return Config{}, fmt.Errorf("grafanatest: [auth.jwt] auto_sign_up: %w", err)
	}
	if v := jwt("expect_claims"); v != "" {
		if err := json.Unmarshal([]byte(v), &cfg.ExpectClaims); err != nil {
			return Config{}, fmt.Errorf("grafanatest: [auth.jwt] expect_claims: expected a JSON object: %w", err)
		}
	}
	if v := get("users", "auto_assign_org"); v != "" {
		b, err := parseBool(v, true)
		if err != nil {
			return Config{}, fmt.Errorf("grafanatest: [users] auto_assign_org: %w", err)
		}
		cfg.AutoAssignOrg = &b
	}
	cfg.AutoAssignOrgRole = get("users", "auto_assign_org_role")
	cfg.AdminUser = get("security", "admin_user")
	cfg.AdminPassword = get("security", "admin_password")
	cfg.AllowInsecureJWKSURL = get("", "app_mode") == "development"
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func envName(section, key string) string {
	if section == "" {
		section = "default"
	}
	r := strings.NewReplacer(".", "_", "-", "_")
	return "GF_" + strings.ToUpper(r.Replace(section)) + "_" + strings.ToUpper(r.Replace(key))
}

// parseINI reads sections and key = value lines; ";" and "#" start a
// comment line; a value in matching quotes loses them.
func parseINI(data []byte) (map[string]map[string]string, error) {
	out := map[string]map[string]string{"": {}}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("grafanatest: grafana.ini line %d: unterminated section header", n)
			}
			section = strings.TrimSpace(line[1:end])
			if out[section] == nil {
				out[section] = map[string]string{}
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("grafanatest: grafana.ini line %d: expected key = value", n)
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'' || val[0] == '`') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		out[section][strings.TrimSpace(key)] = val
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseBool(s string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return def, nil
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("expected true or false, got %q", s)
}

// parseDuration reads Go durations plus Grafana's d (days) and w (weeks);
// a bare number is seconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, suffix); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return time.Duration(n) * unit, nil
			}
		}
	}
	return time.ParseDuration(s)
}
