package devidp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// RunCommand is `gatehouse dev-idp`: it parses args (without the command
// name), prints where the provider is and serves it until ctx ends. Logs
// and usage go to stdout. -h/--help prints usage and returns nil.
//
// Flags:
//
//	--address            listen address (default 127.0.0.1:9000)
//	--issuer             issuer URL (default http://<address>)
//	--client-id          the client's id (default gatehouse)
//	--client-secret      the client's secret (empty: public client, PKCE required)
//	--redirect-uri       a registered redirect URI; repeatable; "*" globs a host label
//	--access-token-ttl   access token lifetime (default 1h)
//	--id-token-ttl       ID token lifetime (default 1h)
//	--refresh-token-ttl  refresh token lifetime (default 24h)
//	--tls-cert, --tls-key  serve HTTPS with this PEM certificate and key
//	--log-level          debug, info, warn or error (default info)
func RunCommand(ctx context.Context, args []string, stdout io.Writer) error {
	var (
		cfg          Config
		redirectURIs stringList
		logLevel     slog.Level
	)
	fs := flag.NewFlagSet("dev-idp", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.StringVar(&cfg.Address, "address", DefaultAddress, "listen address")
	fs.StringVar(&cfg.Issuer, "issuer", "", "issuer URL (default http://<address>)")
	fs.StringVar(&cfg.ClientID, "client-id", DefaultClientID, "the client's id")
	fs.StringVar(&cfg.ClientSecret, "client-secret", "", "the client's secret (empty: public client, PKCE required)")
	fs.Var(&redirectURIs, "redirect-uri", "a registered redirect URI (repeatable; a \"*\" matches any run of characters without \"/\")")
	fs.DurationVar(&cfg.AccessTokenTTL, "access-token-ttl", DefaultAccessTokenTTL, "access token lifetime")
	fs.DurationVar(&cfg.IDTokenTTL, "id-token-ttl", DefaultIDTokenTTL, "ID token lifetime")
	fs.DurationVar(&cfg.RefreshTokenTTL, "refresh-token-ttl", DefaultRefreshTokenTTL, "refresh token lifetime")
	fs.StringVar(&cfg.CertFile, "tls-cert", "", "PEM certificate file: serve HTTPS")
	fs.StringVar(&cfg.KeyFile, "tls-key", "", "PEM private key file for --tls-cert")
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gatehouse dev-idp [flags]\n\n"+
			"Runs an OpenID Connect provider on which anyone signs in as anyone.\n"+
			"FOR DEVELOPMENT ONLY.\n\nExample:\n"+
			"  gatehouse dev-idp --address 127.0.0.1:9000 --redirect-uri http://authenticate.localhost:8000/oauth2/callback\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dev-idp: unexpected arguments: %q", fs.Args())
	}
	cfg.RedirectURIs = redirectURIs
	cfg.Logger = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: logLevel}))
	s, err := New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gatehouse dev IdP — FOR DEVELOPMENT ONLY\n  issuer:        %s\n  client id:     %s\n  redirect URIs: %s\n",
		s.cfg.Issuer, s.cfg.ClientID, strings.Join(s.cfg.RedirectURIs, " "))
	return s.Run(ctx)
}
