package routematch_test

import (
	"fmt"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/routematch"
)

func Example() {
	cfg, err := config.Parse([]byte(`
services: proxy
insecure_server: true
authorize_service_url: http://127.0.0.1:5443
shared_secret: 93pDpOHbb0pg+nEAHTZS1COZMt/53VNFXDp/hkyGHCg=
cookie_secret: HmVs8hCfDZ2PW46zvbj4j7k2jZhVb3Tuq0Rxsvtxl8I=
authenticate_service_url: https://auth.example.com
routes:
  - {id: grafana-api, from: https://grafana.example.com, prefix: /api/, to: http://grafana:3000}
  - {id: grafana, from: https://grafana.example.com, to: http://grafana:3000}
  - {id: apps, from: "https://*.apps.example.com", to: http://apps:8080}
`), "config.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		fmt.Println(err)
		return
	}
	table := routematch.New(cfg.Routes)
	for _, req := range []struct{ host, path string }{
		{"grafana.example.com", "/api/health"},
		{"grafana.example.com:443", "/d/home"},
		{"wiki.apps.example.com", "/"},
		{"example.com", "/"},
	} {
		if r := table.Match(req.host, req.path); r != nil {
			fmt.Println(req.host+req.path, "→", r.ID)
		} else {
			fmt.Println(req.host+req.path, "→ no route")
		}
	}
	// Output:
	// grafana.example.com/api/health → grafana-api
	// grafana.example.com:443/d/home → grafana
	// wiki.apps.example.com/ → apps
	// example.com/ → no route
}
