package deployments

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestComposeObservability: docker compose runs a Prometheus that scrapes
// every gatehouse service on its METRICS_ADDRESS port, and Grafana is
// provisioned with it as a data source and with gatehouse's dashboard.
func TestComposeObservability(t *testing.T) {
	p, root := loadCompose(t)
	prom, ok := p.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service")
	}
	m, ok := mountAt(prom, "/etc/prometheus/prometheus.yml")
	if !ok || !m.ReadOnly || m.Source != filepath.Join(root, "deployments/prometheus/prometheus.yml") {
		t.Fatalf("prometheus does not mount deployments/prometheus/prometheus.yml read-only (%+v)", m)
	}
	var scrape struct {
		ScrapeConfigs []struct {
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, m.Source), &scrape); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]int{}
	for _, sc := range scrape.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				scraped[n] = d.Port
			}
		}
	}
	for _, name := range gatehouseServices {
		addr := env(p.Services[name])["METRICS_ADDRESS"]
		if !strings.HasPrefix(addr, "0.0.0.0:") {
			t.Errorf("%s: METRICS_ADDRESS=%q, want 0.0.0.0:PORT", name, addr)
			continue
		}
		if got := scraped[name]; got == 0 || port(t, addr) != strconv.Itoa(got) {
			t.Errorf("%s: Prometheus scrapes port %d, the service serves metrics on %s", name, got, addr)
		}
	}

	g := p.Services["grafana"]
	prov, ok := mountAt(g, "/etc/grafana/provisioning")
	if !ok || prov.Source != filepath.Join(root, "deployments/grafana/provisioning") {
		t.Fatalf("grafana does not mount deployments/grafana/provisioning (%+v)", prov)
	}
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(prov.Source, "datasources/prometheus.yaml")), &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" || ds.Datasources[0].UID != "prometheus" {
		t.Errorf("data sources %+v, want the prometheus service with uid prometheus (the dashboard's)", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(prov.Source, "dashboards/gatehouse.yaml")), &dp); err != nil {
		t.Fatal(err)
	}
	if len(dp.Providers) != 1 {
		t.Fatalf("dashboard providers %+v", dp.Providers)
	}
	dash, ok := mountAt(g, dp.Providers[0].Options.Path)
	if !ok || dash.Source != filepath.Join(root, "deployments/grafana/dashboards") {
		t.Errorf("the dashboard provider reads %s, where grafana mounts %+v", dp.Providers[0].Options.Path, dash)
	}
	if _, ok := g.DependsOn["prometheus"]; !ok {
		t.Errorf("grafana does not depend on prometheus")
	}
}
