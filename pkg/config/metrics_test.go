package config_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/pkg/config"
)

// metrics_basic_auth is base64 of user:password, as in Pomerium; a bad
// value is refused without being echoed.
func TestMetricsBasicAuth(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte("prometheus:s3cret"))
	cfg, err := config.Parse([]byte(base().Set("metrics_address", "127.0.0.1:9091").Set("metrics_basic_auth", good).YAML()), "config.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.BasicAuthUser != "prometheus" || cfg.Metrics.BasicAuthPassword != "s3cret" {
		t.Fatalf("got %q / %q", cfg.Metrics.BasicAuthUser, cfg.Metrics.BasicAuthPassword)
	}
	_, err = config.Parse([]byte(base().Set("metrics_basic_auth", "plain-secret-value").YAML()), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "metrics_basic_auth: expected base64 of user:password") || strings.Contains(err.Error(), "plain-secret-value") {
		t.Fatalf("got %v", err)
	}
	_, err = config.Parse([]byte(base().Set("metrics_client_ca", "not pem").YAML()), "config.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "metrics_client_ca") {
		t.Fatalf("got %v", err)
	}
}
