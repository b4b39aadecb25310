package deployments

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// runPrometheus is the compose end-to-end test's stand-in for the
// prometheus image: it reads the mounted prometheus.yml as Prometheus
// does (dns_sd_configs of type A), scrapes every address the names
// resolve to every few seconds, logging each target's answer, and serves
// /-/healthy on :9090.
func runPrometheus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prometheus", flag.ContinueOnError)
	path := fs.String("config", "/etc/prometheus/prometheus.yml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Prometheus Server is Healthy.\n"))
	})
	srv := &http.Server{Addr: ":9090", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Close()
	client := &http.Client{Timeout: 3 * time.Second}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		for _, sc := range cfg.ScrapeConfigs {
			for _, d := range sc.DNSSDConfigs {
				if d.Type != "" && d.Type != "A" {
					return fmt.Errorf("dns_sd_configs type %q has no stand-in", d.Type)
				}
				for _, name := range d.Names {
					addrs, _ := net.DefaultResolver.LookupHost(ctx, name)
					for _, a := range addrs {
						u := "http://" + net.JoinHostPort(a, strconv.Itoa(d.Port)) + "/metrics"
						status := "down"
						if resp, err := client.Get(u); err == nil {
							status = resp.Status
							resp.Body.Close()
						}
						fmt.Printf("scrape %s %s (%s): %s\n", sc.JobName, name, u, status)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
