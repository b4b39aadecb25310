package authenticate_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/services/authenticate"
)

// Example wires the service as cmd/gatehouse does: a databroker client, the
// handler on the authenticate_service_url host, Run for the refresher and
// Ready for /readyz.
func Example() {
	ctx := context.Background()
	src, err := config.NewSource("/etc/gatehouse/config.yaml", os.LookupEnv, slog.Default())
	if err != nil {
		log.Fatal(err)
	}
	cfg := src.Current()
	databroker, _ := url.Parse("http://127.0.0.1:5443")
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{Targets: []*url.URL{databroker}, SharedKey: cfg.SharedKey})
	if err != nil {
		log.Fatal(err)
	}
	svc, err := authenticate.New(ctx, authenticate.Options{Source: src, Logger: slog.Default(), DataBroker: cc})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = svc.Run(ctx) }() // the session refresher, while it holds the lease
	log.Fatal(http.ListenAndServe(cfg.Address, svc.Handler()))
}
