package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Environ looks up an environment variable; os.LookupEnv in production,
// a map in tests.
type Environ func(key string) (string, bool)

// Load reads the YAML file at path (which may be empty for environment-only
// configuration), applies environment overrides, fills defaults and
// validates. The error, when not nil, is an Errors listing every problem.
func Load(path string, env Environ) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	return Parse(data, path, env)
}

// Parse is Load for configuration already in memory; path is only used in
// messages.
func Parse(data []byte, path string, env Environ) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	cfg := &Config{Path: path, lines: map[string]int{}}
	var errs Errors
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{{Key: "(file)", Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) > 0 {
		decodeStrictIgnoring(&doc, &cfg.Options, "", &errs, cfg.lines, &cfg.ignored)
	}
	fromEnv := applyEnv(&cfg.Options, env, &errs, cfg.lines, &cfg.ignored)
	mergePolicy(&cfg.Options)
	applyNestedEnv(&cfg.Options, env, &errs, cfg.lines)
	readSecretFiles(&cfg.Options, &errs, cfg.lines)
	cfg.Options.setDefaults()
	cfg.validate(&errs)
	errs.markEnv(fromEnv)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyEnv sets every option whose upper-cased name is in the environment
// and returns those options with their variables. Strings are taken as
// they are; everything else is read as YAML so that lists (`a,b` or
// `[a, b]`), maps and booleans work.
func applyEnv(o *Options, env Environ, errs *Errors, lines map[string]int, ignored *[]ignoredKey) map[string]string {
	fromEnv := map[string]string{}
	v := reflect.ValueOf(o).Elem()
	for name, i := range fieldIndex(v.Type()) {
		val, ok := env(strings.ToUpper(name))
		if !ok {
			continue
		}
		fromEnv[name] = strings.ToUpper(name)
		// The value no longer comes from the file: neither the option
		// nor anything in it (routes[0].from) has a file line.
		for k := range lines {
			if k == name || strings.HasPrefix(k, name+".") || strings.HasPrefix(k, name+"[") {
				delete(lines, k)
			}
		}
		field := v.Field(i)
		if field.Kind() == reflect.String {
			field.SetString(val)
			continue
		}
		if name == "routes" || name == "policy" {
			val = maybeBase64(val)
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(val), &n); err != nil || len(n.Content) == 0 {
			n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
		} else {
			n = *n.Content[0]
		}
		if err := decodeFieldIgnoring(&n, field, name, errs, lines, ignored); err != nil {
			*errs = append(*errs, FieldError{Key: name, Env: strings.ToUpper(name), Msg: withoutLine(err.Error(), 0)})
		}
	}
	return fromEnv
}

func maybeBase64(s string) string {
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s)); err == nil {
		return string(b)
	}
	return s
}

// readSecretFiles reads every *_file option into its option.
func readSecretFiles(o *Options, errs *Errors, lines map[string]int) {
	for _, f := range []struct {
		name   string
		file   string
		target *string
	}{
		{"shared_secret_file", o.SharedSecretFile, &o.SharedSecret},
		{"cookie_secret_file", o.CookieSecretFile, &o.CookieSecret},
		{"signing_key_file", o.SigningKeyFile, &o.SigningKey},
		{"idp_client_secret_file", o.IDPClientSecretFile, &o.IDPClientSecret},
		{"databroker_storage_connection_string_file", o.DataBrokerStorageConnectionStringFile, &o.DataBrokerStorageConnectionString},
		{"certificate_file", o.CertificateFile, &o.Certificate},
		{"certificate_key_file", o.CertificateKeyFile, &o.CertificateKey},
		{"certificate_authority_file", o.CertificateAuthorityFile, &o.CertificateAuthority},
		{"metrics_certificate_file", o.MetricsCertificateFile, &o.MetricsCertificate},
		{"metrics_certificate_key_file", o.MetricsCertificateKeyFile, &o.MetricsCertificateKey},
		{"metrics_client_ca_file", o.MetricsClientCAFile, &o.MetricsClientCA},
	} {
		if f.file == "" {
			continue
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			errs.add(f.name, lines[f.name], fmt.Sprintf("cannot read file: %v", err))
			continue
		}
		*f.target = strings.TrimSpace(string(b))
		if strings.Contains(f.name, "certificate") || f.name == "signing_key_file" {
			*f.target = string(b)
		}
	}
	for i := range o.Routes {
		r := &o.Routes[i]
		for _, f := range []struct {
			name   string
			file   string
			target *string
		}{
			{"tls_custom_ca_file", r.TLSCustomCAFile, &r.TLSCustomCA},
			{"tls_client_cert_file", r.TLSClientCertFile, &r.TLSClientCert},
			{"tls_client_key_file", r.TLSClientKeyFile, &r.TLSClientKey},
		} {
			if f.file == "" {
				continue
			}
			key := r.where + "." + f.name
			b, err := os.ReadFile(f.file)
			if err != nil {
				errs.add(key, lines[key], fmt.Sprintf("cannot read file: %v", err))
				continue
			}
			*f.target = string(b)
		}
	}
	for i := range o.Certificates {
		c := &o.Certificates[i]
		// Pomerium reads certificates[].cert and .key as file paths (its
		// OS packages install that shape); inline PEM and base64 PEM
		// are taken as they are.
		for _, f := range []struct {
			name   string
			target *string
		}{{"cert", &c.Cert}, {"key", &c.Key}} {
			if *f.target == "" || looksLikePEM(*f.target) {
				continue
			}
			key := fmt.Sprintf("certificates[%d].%s", i, f.name)
			b, err := os.ReadFile(*f.target)
			if err != nil {
				errs.add(key, lines[key], fmt.Sprintf("neither PEM, base64 of PEM nor a readable file: %v", err))
				*f.target = "" // reported once, here
				continue
			}
			*f.target = string(b)
		}
		for _, f := range []struct {
			name   string
			file   string
			target *string
		}{{"cert_file", c.CertFile, &c.Cert}, {"key_file", c.KeyFile, &c.Key}} {
			if f.file == "" {
				continue
			}
			key := fmt.Sprintf("certificates[%d].%s", i, f.name)
			b, err := os.ReadFile(f.file)
			if err != nil {
				errs.add(key, lines[key], fmt.Sprintf("cannot read file: %v", err))
				continue
			}
			*f.target = string(b)
		}
	}
}

// LoadSharedSecret returns shared_secret (or the content of
// shared_secret_file) from a file and the environment, without validating
// the rest of the configuration.
func LoadSharedSecret(path string, env Environ) (string, error) {
	var o struct {
		SharedSecret     string `yaml:"shared_secret"`
		SharedSecretFile string `yaml:"shared_secret_file"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	if err := yaml.Unmarshal(data, &o); err != nil {
		return "", fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	if v, ok := env("SHARED_SECRET"); ok {
		o.SharedSecret = v
	}
	if v, ok := env("SHARED_SECRET_FILE"); ok {
		o.SharedSecretFile = v
	}
	if o.SharedSecret == "" && o.SharedSecretFile != "" {
		b, err := os.ReadFile(o.SharedSecretFile)
		if err != nil {
			return "", fmt.Errorf("shared_secret_file: %w", err)
		}
		o.SharedSecret = strings.TrimSpace(string(b))
	}
	return o.SharedSecret, nil
}

// looksLikePEM reports whether a certificate option holds PEM or base64 of
// PEM rather than a file path.
func looksLikePEM(s string) bool {
	return strings.Contains(maybeBase64PEM(s), "-----BEGIN")
}

// mergePolicy puts the routes of the top-level policy list (Pomerium's old
// name for routes) before those of routes, as Pomerium does, naming each
// by where it was written.
func mergePolicy(o *Options) {
	for i := range o.Policy {
		o.Policy[i].where = fmt.Sprintf("policy[%d]", i)
	}
	for i := range o.Routes {
		o.Routes[i].where = fmt.Sprintf("routes[%d]", i)
	}
	if len(o.Policy) > 0 {
		o.Routes = append(o.Policy, o.Routes...)
		o.Policy = nil
	}
}
