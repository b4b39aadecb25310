// Command grafana is pkg/grafanatest's Grafana stand-in as a container:
// the grafana service of docker-compose.yaml in CI, where no Grafana image
// can be fetched (deployments/compose/ci.sh builds it into
// gatehouse-ci/grafana). It reads the mounted grafana.ini and the GF_*
// environment as Grafana does, verifies X-Pomerium-Jwt-Assertion against
// jwk_set_url (trusting the CAs of SSL_CERT_DIR, as Grafana's Go does) and
// serves /api/user on port 3000.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse/gatehouse/pkg/grafanatest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := grafanatest.RunCommand(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
