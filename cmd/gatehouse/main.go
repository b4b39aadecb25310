// Command gatehouse runs the gatehouse identity-aware access proxy: any of
// its four services (authenticate, authorize, proxy, databroker), a
// development identity provider, and operator helpers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gatehouse: identity-aware access proxy (Pomerium-compatible configuration)

Usage:
  gatehouse [run] --config FILE      run the services named by the services option
  gatehouse validate --config FILE   check a configuration and list every problem
  gatehouse token [--config FILE] [--ttl 1h]
                                     print a service token for grpcurl
  gatehouse dev-idp [flags]          run the development OpenID Connect provider
  gatehouse gen-secrets --dir DIR | --kubernetes-secret NAME
                                     make shared_secret and cookie_secret once
  gatehouse dev-certs --dir DIR --domain localhost.pomerium.io
                                     make a local CA and wildcard certificate
  gatehouse demo-upstream [--address A]
                                     run a demo app that shows what it receives
  gatehouse healthcheck [--url URL]  exit 0 when URL (default /readyz) answers 200
  gatehouse version                  print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runCommand(args, stderr)
	case "validate":
		err = validateCommand(args, stdout)
	case "token":
		err = tokenCommand(args, stdout)
	case "dev-idp":
		err = devIDPCommand(args, stdout)
	case "healthcheck":
		err = healthcheckCommand(args, stdout)
	case "dev-certs":
		err = devCertsCommand(args, stdout)
	case "gen-secrets":
		err = genSecretsCommand(args, stdout)
	case "demo-upstream":
		err = demoUpstreamCommand(args, stdout)
	case "version":
		fmt.Fprintln(stdout, "gatehouse", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("GATEHOUSE_CONFIG"), "configuration file (YAML, Pomerium option names)")
}

func validateCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return fmt.Errorf("%s: %d problem(s):\n%w", displayPath(*path), len(errs), err)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes, services: %s)\n", displayPath(*path), len(cfg.Routes), cfg.Services)
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	return nil
}

func displayPath(p string) string {
	if p == "" {
		return "(environment)"
	}
	return p
}

func tokenCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	path := configFlag(fs)
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid (at most 24h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ttl <= 0 || *ttl > grpcutil.MaxServiceTokenTTL {
		return fmt.Errorf("--ttl %s: a service token must live more than 0 and at most %s (services refuse longer ones)", *ttl, grpcutil.MaxServiceTokenTTL)
	}
	secret, ok := os.LookupEnv("SHARED_SECRET")
	if *path != "" {
		// Only the secret matters here; the rest of the file may be for
		// another service.
		o, err := config.LoadSharedSecret(*path, os.LookupEnv)
		if err != nil {
			return err
		}
		secret, ok = o, o != ""
	}
	if !ok || secret == "" {
		return errors.New("no shared_secret: pass --config FILE or set SHARED_SECRET")
	}
	key, err := cryptutil.DecodeSecret(secret)
	if err == nil {
		err = cryptutil.CheckSecret(key)
	}
	if err != nil {
		return fmt.Errorf("shared_secret: %w", err)
	}
	tok, err := grpcutil.NewServiceToken(key, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
