package grafanatest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// RunCommand serves a Server configured from a grafana.ini until ctx ends:
// flags --config (the grafana.ini; GF_* environment variables override
// it) and --address (default 127.0.0.1:3000).
// Logs go to stdout. -h prints usage and returns nil.
func RunCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grafanatest", flag.ContinueOnError)
	fs.SetOutput(stdout)
	path := fs.String("config", "", "grafana.ini to read [auth.jwt], [users] and [security] from")
	addr := fs.String("address", "127.0.0.1:3000", "listen address")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *path == "" {
		return errors.New("grafanatest: --config is required")
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("grafanatest: %w", err)
	}
	cfg, err := ParseINIEnv(data, os.LookupEnv)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stdout, nil))
	s, err := New(cfg)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("grafanatest: %w", err)
	}
	fmt.Fprintf(stdout, "Grafana (test) listening on http://%s\n", lis.Addr())
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
