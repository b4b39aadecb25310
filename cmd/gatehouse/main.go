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
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand as help shows it.
type command struct {
	name    string
	args    string // what follows the name in a usage line
	summary string // what it does, one sentence
	example string // a command line to copy
}

// commands are gatehouse's subcommands, in the order help lists them.
var commands = []command{
	{"run", "--config FILE", "Run the services named by the config's services option (all four by default). The default command: `gatehouse --config FILE` is the same.",
		"gatehouse run --config deployments/dev/config.yaml"},
	{"ingress-controller", "--config FILE [--ingress-class NAME] [--kubeconfig FILE]", "Run the services of the settings file with routes from the Kubernetes Ingresses of the class, and certificates from their TLS Secrets. Changes apply without a restart; an invalid Ingress is refused alone, with an Event on it.",
		"gatehouse ingress-controller --config /etc/gatehouse/config.yaml --ingress-class gatehouse.io/ingress-controller"},
	{"validate", "--config FILE", "Check a configuration and list every problem. Each names its key and where its value came from (a file line or an environment variable); nothing is started.",
		"gatehouse validate --config config.yaml"},
	{"token", "[--config FILE] [--ttl 1h]", "Print a service token for grpcurl. It is an HS256 JWT under shared_secret that gatehouse's gRPC APIs accept for --ttl (more than 0, at most 24h).",
		`grpcurl -plaintext -H "authorization: Bearer $(gatehouse token --config config.yaml)" 127.0.0.1:5443 list`},
	{"dev-idp", "[flags]", "Run the development OpenID Connect provider, on which anyone signs in as anyone. FOR DEVELOPMENT ONLY.",
		"gatehouse dev-idp --address 127.0.0.1:9000 --redirect-uri http://authenticate.localhost:8000/oauth2/callback"},
	{"gen-secrets", "--dir DIR | --kubernetes-secret NAME", "Make shared_secret and cookie_secret once. Writes files (mode 0600) or a Kubernetes Secret, and keeps the ones that exist.",
		"gatehouse gen-secrets --dir /etc/gatehouse"},
	{"dev-certs", "[--dir DIR] [--domain DOMAIN]", "Make a local CA and a wildcard certificate for development. By default they go to ~/.config/gatehouse/dev-certs, outside any repository: the CA's private key must not be committed.",
		"gatehouse dev-certs --domain localhost.pomerium.io"},
	{"demo-upstream", "[--address ADDR]", "Run a demo app that shows what gatehouse sends it. Its page lists the identity headers and the JWT's claims.",
		"gatehouse demo-upstream --address 127.0.0.1:8081"},
	{"healthcheck", "[--url URL]", "Exit 0 when a URL answers 200. A container health check without curl; the default URL is `make run`'s health_check_addr /readyz.",
		"gatehouse healthcheck --url http://127.0.0.1:28080/readyz"},
	{"version", "", "Print the version.", "gatehouse version"},
	{"help", "[COMMAND]", "Print the list of commands, or one command's help.", "gatehouse help token"},
}

// usage is the command list that help, -h and --help print.
func usage() string {
	var b strings.Builder
	b.WriteString("gatehouse: identity-aware access proxy (Pomerium-compatible configuration)\n\nUsage:\n  gatehouse COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-19s %s\n", c.name, firstSentence(c.summary))
	}
	b.WriteString("\nRun `gatehouse help COMMAND` or `gatehouse COMMAND --help` for a command's flags and an example.\n")
	return b.String()
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// helpOutput is where a flag set prints its usage: stdout when help was
// asked for, stderr with a parse error. run sets it.
var helpOutput io.Writer = os.Stderr

// newFlagSet returns the flag set of a subcommand, whose -h/--help prints
// what the command does, an example and its flags.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(helpOutput)
	fs.Usage = func() {
		out := fs.Output()
		if c := findCommand(name); c != nil {
			fmt.Fprintf(out, "Usage: gatehouse %s %s\n\n%s\n\nExample:\n  %s\n", c.name, c.args, c.summary, c.example)
		} else {
			fmt.Fprintf(out, "Usage: gatehouse %s [flags]\n", name)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(out, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// asksHelp reports whether args ask for help.
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	helpOutput = stderr
	if asksHelp(args) {
		helpOutput = stdout
	}
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			if len(args) > 1 && args[0] == "help" && findCommand(args[1]) != nil && args[1] != "help" {
				// `gatehouse help token` is `gatehouse token --help`.
				return run([]string{args[1], "--help"}, stdout, stderr)
			}
			fmt.Fprint(stdout, usage())
			return 0
		case "-version", "--version", "-v":
			fmt.Fprintln(stdout, "gatehouse", version)
			return 0
		}
		if len(args[0]) > 0 && args[0][0] != '-' {
			cmd, args = args[0], args[1:]
		}
	}
	var err error
	switch cmd {
	case "run":
		err = runCommand(args, stderr)
	case "ingress-controller":
		err = ingressControllerCommand(args, stderr)
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
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage())
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
	fs := newFlagSet("validate")
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
	fs := newFlagSet("token")
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
