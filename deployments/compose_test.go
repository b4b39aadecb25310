package deployments

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/grafanatest"
)

// gatehouseServices are the compose services that run one gatehouse
// service each; compose may scale every one of them.
var gatehouseServices = []string{"databroker", "authorize", "authenticate", "proxy"}

// loadCompose loads docker-compose.yaml as `docker compose config` does:
// validated against the compose specification's JSON schema, anchors and
// merges resolved, paths made absolute.
func loadCompose(t *testing.T) (*types.Project, string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "docker-compose.yaml")
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: readFile(t, file)}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.ResolvePaths = true })
	if err != nil {
		t.Fatalf("docker-compose.yaml is not valid: %v", err)
	}
	return p, root
}

// env returns a service's environment as a plain map.
func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// flagValue reads --name=value or --name value from a command.
func flagValue(cmd []string, name string) (string, bool) {
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(cmd) {
			return cmd[i+1], true
		}
	}
	return "", false
}

// mountAt returns the volume mounted at target.
func mountAt(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

// aliasOwner returns the service that answers a host name on the compose
// network: a service name or a network alias.
func aliasOwner(p *types.Project, host string) (string, bool) {
	if _, ok := p.Services[host]; ok {
		return host, true
	}
	for name, s := range p.Services {
		for _, n := range s.Networks {
			if n != nil && slices.Contains(n.Aliases, host) {
				return name, true
			}
		}
	}
	return "", false
}

func TestComposeFile(t *testing.T) {
	p, root := loadCompose(t)

	var image string
	var build *types.BuildConfig
	for _, name := range gatehouseServices {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		e := env(s)
		// One image for every service, SERVICES picks the service.
		if image == "" {
			image, build = s.Image, s.Build
		}
		if s.Image != image || s.Build == nil || build == nil || s.Build.Context != build.Context || s.Build.Dockerfile != build.Dockerfile {
			t.Errorf("%s: image %q build %+v, want the same image and build as the others", name, s.Image, s.Build)
		}
		if e["SERVICES"] != name {
			t.Errorf("%s: SERVICES=%q, want %q", name, e["SERVICES"], name)
		}
		// Scalable: no fixed container name, no host port.
		if s.ContainerName != "" {
			t.Errorf("%s: container_name %q prevents --scale", name, s.ContainerName)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s: host ports %v prevent --scale", name, s.Ports)
		}
		// Health: the health check asks /readyz on health_check_addr.
		if !strings.HasPrefix(e["HEALTH_CHECK_ADDR"], "0.0.0.0:") {
			t.Errorf("%s: HEALTH_CHECK_ADDR=%q, want 0.0.0.0:PORT", name, e["HEALTH_CHECK_ADDR"])
		}
		hc := s.HealthCheck
		if hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != "/gatehouse" || hc.Test[2] != "healthcheck" {
			t.Errorf("%s: healthcheck %v, want [CMD /gatehouse healthcheck ...]", name, hc)
		} else if u, _ := flagValue(hc.Test, "url"); !strings.Contains(u, ":"+port(t, e["HEALTH_CHECK_ADDR"])+"/readyz") {
			t.Errorf("%s: healthcheck URL %q does not ask /readyz on HEALTH_CHECK_ADDR %s", name, u, e["HEALTH_CHECK_ADDR"])
		}
		// The shared config file, read-only, at the --config path.
		cfgPath, _ := flagValue(s.Command, "config")
		m, ok := mountAt(s, cfgPath)
		if cfgPath == "" || !ok || !m.ReadOnly || m.Source != filepath.Join(root, "deployments/compose/config.yaml") {
			t.Errorf("%s: --config %q is not deployments/compose/config.yaml mounted read-only (%+v)", name, cfgPath, m)
		}
	}

	// Secrets are the deployment's own: the secrets job makes them once in
	// a volume every gatehouse container mounts read-only and reads with
	// *_FILE; no value is written in the compose file.
	secrets := p.Services["secrets"]
	if got := strings.Join(secrets.Command, " "); got != "gen-secrets --dir /secrets" || secrets.Image != image {
		t.Errorf("secrets runs %q in %s", got, secrets.Image)
	}
	secretVol, ok := mountAt(secrets, "/secrets")
	if !ok || secretVol.ReadOnly {
		t.Errorf("the secrets job does not mount a writable volume at /secrets")
	}
	for _, key := range []string{"SHARED_SECRET", "COOKIE_SECRET"} {
		for _, name := range gatehouseServices {
			s := p.Services[name]
			e := env(s)
			if v, ok := e[key]; ok {
				t.Errorf("%s: %s=%q is written in the compose file, so it is published; read %s_FILE from the secrets volume", name, key, v, key)
			}
			want := "/secrets/" + strings.ToLower(key)
			if got := e[key+"_FILE"]; got != want {
				t.Errorf("%s: %s_FILE=%q, want %s", name, key, got, want)
			}
			if v, ok := mountAt(s, "/secrets"); !ok || v.Source != secretVol.Source || !v.ReadOnly {
				t.Errorf("%s does not mount the secrets volume read-only at /secrets", name)
			}
			if dep, ok := s.DependsOn["secrets"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for the secrets job", name)
			}
		}
	}

	// Clients reach replicas through the compose service names.
	for _, name := range gatehouseServices {
		e := env(p.Services[name])
		for key, svc := range map[string]string{"AUTHORIZE_SERVICE_URL": "authorize", "DATABROKER_SERVICE_URL": "databroker"} {
			u := mustURL(t, e[key])
			if u.Hostname() != svc {
				t.Errorf("%s: %s=%s, want the compose service name %s", name, key, e[key], svc)
			}
			if got, want := u.Port(), port(t, env(p.Services[svc])["GRPC_ADDRESS"]); got != want {
				t.Errorf("%s: %s port %s, but %s listens on %s", name, key, got, svc, want)
			}
		}
		if e["AUTHENTICATE_SERVICE_URL"] != authenticateURL {
			t.Errorf("%s: AUTHENTICATE_SERVICE_URL=%q, want %q", name, e["AUTHENTICATE_SERVICE_URL"], authenticateURL)
		}
	}
	db := env(p.Services["databroker"])
	if db["DATABROKER_STORAGE_TYPE"] != "redis" || mustURL(t, db["DATABROKER_STORAGE_CONNECTION_STRING"]).Hostname() != "redis" {
		t.Errorf("databroker storage %q %q, want redis at the redis service", db["DATABROKER_STORAGE_TYPE"], db["DATABROKER_STORAGE_CONNECTION_STRING"])
	}
	if got := env(p.Services["authorize"])["JWT_CLAIMS_HEADERS"]; got != "email,name" {
		t.Errorf("authorize: JWT_CLAIMS_HEADERS=%q, want the guide's email,name", got)
	}

	// Redis persists.
	redis := p.Services["redis"]
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") {
		t.Errorf("redis command %v lacks --appendonly yes", redis.Command)
	}
	if v, ok := mountAt(redis, "/data"); !ok || v.Type != types.VolumeTypeVolume {
		t.Errorf("redis: /data is not a named volume (%+v)", v)
	}

	// The public host names resolve inside the network too, to the edge
	// that routes them like the host's port 443 does.
	edgeConf := string(readFile(t, "compose/edge.conf"))
	auth := mustURL(t, authenticateURL).Hostname()
	for host, backend := range map[string]string{auth: "authenticate", "grafana.localhost.pomerium.io": "proxy"} {
		owner, ok := aliasOwner(p, host)
		if !ok || owner != "edge" {
			t.Errorf("%s is answered by %q, want the edge", host, owner)
		}
		addr := env(p.Services[backend])["ADDRESS"]
		key := host
		if backend == "proxy" {
			key = "default"
		}
		re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s+` + regexp.QuoteMeta(backend+":"+port(t, addr)) + `;`)
		if !re.MatchString(edgeConf) {
			t.Errorf("edge.conf does not send %s to %s:%s", key, backend, port(t, addr))
		}
	}
	if edge := p.Services["edge"]; len(edge.Ports) != 1 || edge.Ports[0].Published != "443" || edge.Ports[0].Target != 443 {
		t.Errorf("edge ports %+v, want 443:443", edge.Ports)
	}
	if m, ok := mountAt(p.Services["edge"], "/etc/nginx/nginx.conf"); !ok || m.Source != filepath.Join(root, "deployments/compose/edge.conf") {
		t.Errorf("edge does not mount deployments/compose/edge.conf")
	}

	// The dev IdP: reachable under the same URL from the browser and from
	// authenticate, and registered for authenticate's callback.
	authn := env(p.Services["authenticate"])
	idp := p.Services["idp"]
	idpURL := mustURL(t, authn["IDP_PROVIDER_URL"])
	if owner, ok := aliasOwner(p, idpURL.Hostname()); !ok || owner != "idp" {
		t.Errorf("IDP_PROVIDER_URL host %s is answered by %q, want idp", idpURL.Hostname(), owner)
	}
	if len(idp.Command) == 0 || idp.Command[0] != "dev-idp" || idp.Image != image {
		t.Errorf("idp runs %v in %s, want gatehouse dev-idp", idp.Command, idp.Image)
	}
	for flag, want := range map[string]string{
		"issuer":        authn["IDP_PROVIDER_URL"],
		"client-id":     authn["IDP_CLIENT_ID"],
		"client-secret": authn["IDP_CLIENT_SECRET"],
		"redirect-uri":  authenticateURL + "/oauth2/callback",
	} {
		if got, _ := flagValue(idp.Command, flag); got != want {
			t.Errorf("idp --%s=%q, want %q", flag, got, want)
		}
	}
	if a, _ := flagValue(idp.Command, "address"); port(t, a) != idpURL.Port() {
		t.Errorf("idp listens on %s but IDP_PROVIDER_URL is %s", a, idpURL)
	}

	// Development certificates: made once by the certs job into a shared
	// volume that every TLS user mounts.
	certs := p.Services["certs"]
	if got := strings.Join(certs.Command, " "); got != "dev-certs --dir /certs --domain localhost.pomerium.io" || certs.Image != image {
		t.Errorf("certs runs %q in %s", got, certs.Image)
	}
	certVol, _ := mountAt(certs, "/certs")
	for _, name := range []string{"authenticate", "proxy", "grafana"} {
		s := p.Services[name]
		if v, ok := mountAt(s, "/certs"); !ok || v.Source != certVol.Source || !v.ReadOnly {
			t.Errorf("%s does not mount the certs volume read-only at /certs", name)
		}
		if dep, ok := s.DependsOn["certs"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for the certs job", name)
		}
	}
	for _, name := range []string{"authenticate", "proxy"} {
		e := env(p.Services[name])
		for _, key := range []string{"CERTIFICATE_FILE", "CERTIFICATE_KEY_FILE"} {
			if !strings.HasPrefix(e[key], "/certs/") {
				t.Errorf("%s: %s=%q, want a file of the certs volume", name, key, e[key])
			}
		}
	}

	// depends_on service_healthy only on services that have a health check.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy {
				if hc := p.Services[dep].HealthCheck; hc == nil || hc.Disable {
					t.Errorf("%s waits for %s to be healthy, but it has no health check", name, dep)
				}
			}
		}
		if s.ContainerName != "" {
			t.Errorf("%s: container_name is set", name)
		}
	}

	// Every bind mount exists in the repository.
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
			}
		}
	}
}

func TestComposeGrafana(t *testing.T) {
	p, root := loadCompose(t)
	g, ok := p.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service")
	}
	if !strings.HasPrefix(g.Image, "grafana/grafana") {
		t.Errorf("grafana image %q", g.Image)
	}
	m, ok := mountAt(g, "/etc/grafana/grafana.ini")
	if !ok || !m.ReadOnly || m.Source != filepath.Join(root, "deployments/grafana/grafana.ini") {
		t.Fatalf("grafana does not mount deployments/grafana/grafana.ini read-only at /etc/grafana/grafana.ini (%+v)", m)
	}
	cfg, err := grafanatest.ParseINIEnv(readFile(t, m.Source), mapEnv(env(g)))
	if err != nil {
		t.Fatalf("grafana.ini with the compose environment: %v", err)
	}
	authn := env(p.Services["authenticate"])
	if cfg.JWKSetURL != authn["AUTHENTICATE_SERVICE_URL"]+jwksPath {
		t.Errorf("Grafana's jwk_set_url %q is not %s%s", cfg.JWKSetURL, authn["AUTHENTICATE_SERVICE_URL"], jwksPath)
	}
	if !cfg.AutoSignUp || cfg.UsernameClaim != "sub" || cfg.AutoAssignOrgRole != "Editor" {
		t.Errorf("grafana.ini is not the guide's auto sign-up variant: %+v", cfg)
	}
	// The CA Grafana trusts for jwk_set_url is the certs job's ca.pem.
	if cfg.TLSClientCA != "/certs/ca.pem" {
		t.Errorf("GF_AUTH_JWT_TLS_CLIENT_CA = %q, want /certs/ca.pem", cfg.TLSClientCA)
	}
	dir, _ := flagValue(p.Services["certs"].Command, "dir")
	if dir+"/ca.pem" != cfg.TLSClientCA {
		t.Errorf("dev-certs writes to %s, Grafana trusts %s", dir, cfg.TLSClientCA)
	}
	if !slices.Contains(strings.Split(env(g)["SSL_CERT_DIR"], ":"), dir) {
		t.Errorf("SSL_CERT_DIR=%q lacks %s (Grafana versions without tls_client_ca)", env(g)["SSL_CERT_DIR"], dir)
	}
	// The guide's route goes to this service, on its port.
	routes := routesOf(t, readFile(t, filepath.Join(root, "deployments/compose/config.yaml")))
	checkGuideRoute(t, "deployments/compose/config.yaml", routes)
	for _, r := range routes {
		to, _ := r.(map[string]any)["to"].(string)
		u := mustURL(t, to)
		if _, ok := p.Services[u.Hostname()]; !ok {
			t.Errorf("route to %s: no compose service %s", to, u.Hostname())
		}
	}
}

// TestComposeConfigValidates loads deployments/compose/config.yaml with
// each gatehouse container's environment, certificate paths pointing at
// freshly made development certificates.
func TestComposeConfigValidates(t *testing.T) {
	p, root := loadCompose(t)
	data := readFile(t, filepath.Join(root, "deployments/compose/config.yaml"))
	f := devCerts(t)
	certDir := filepath.Dir(f.Cert)
	secretDir := genSecrets(t)
	for _, name := range gatehouseServices {
		t.Run(name, func(t *testing.T) {
			e := env(p.Services[name])
			for k, v := range e {
				if rest, ok := strings.CutPrefix(v, "/certs/"); ok {
					e[k] = filepath.Join(certDir, rest)
				}
				if rest, ok := strings.CutPrefix(v, "/secrets/"); ok {
					e[k] = filepath.Join(secretDir, rest)
				}
			}
			cfg, err := config.Parse(data, "/etc/gatehouse/config.yaml", mapEnv(e))
			if err != nil {
				t.Fatalf("the %s container's configuration does not validate:\n%v", name, err)
			}
			if len(cfg.ServiceSet) != 1 || !cfg.Runs(name) {
				t.Errorf("runs %v, want only %s", cfg.ServiceSet, name)
			}
			// Docker's SIGKILL must not come before the grace period and
			// the drain are over.
			if g := p.Services[name].StopGracePeriod; g == nil || time.Duration(*g) < cfg.ShutdownGrace()+maxDrain {
				t.Errorf("stop_grace_period %v does not cover shutdown_grace_period %v + the %v drain", g, cfg.ShutdownGrace(), maxDrain)
			}
			if (name == "authorize" || name == "authenticate") && len(cfg.DataBrokerTargets) == 0 {
				t.Error("no databroker targets")
			}
			if name == "proxy" && len(cfg.AuthorizeTargets) == 0 {
				t.Error("no authorize targets")
			}
			if name == "authorize" && cfg.JWTClaimsHeaders["X-Pomerium-Claim-Name"] != "name" {
				t.Errorf("jwt_claims_headers = %v", cfg.JWTClaimsHeaders)
			}
		})
	}
}

// maxDrain is how long a gatehouse process drains at most after its
// shutdown grace period (drainTimeout in cmd/gatehouse).
const maxDrain = 10 * time.Second

// TestDockerfile checks the image's shape: a Go builder, a static binary,
// a small final image running as a non-root user with gatehouse as the
// entrypoint (compose and Kubernetes pass only arguments).
func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "Dockerfile"))
	// Global ARGs (before the first FROM) with their defaults: what a
	// user's plain `docker build` uses.
	args := map[string]string{}
	var froms []string
	for _, l := range strings.Split(df, "\n") {
		l = strings.TrimSpace(l)
		if a, ok := strings.CutPrefix(l, "ARG "); ok && len(froms) == 0 {
			k, v, _ := strings.Cut(a, "=")
			args[k] = v
		}
		if f, ok := strings.CutPrefix(l, "FROM "); ok {
			froms = append(froms, os.Expand(f, func(k string) string { return args[k] }))
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Errorf("stages %q: want a golang:1.26 builder and a final stage", froms)
	}
	if strings.HasPrefix(df, "# syntax=") {
		t.Error("a # syntax= line makes BuildKit fetch its frontend from a registry")
	}
	// By default the binary comes from the golang stage.
	if args["GATEHOUSE_FROM"] != "build" || !strings.Contains(df, "FROM ${GATEHOUSE_FROM} AS gatehouse") {
		t.Errorf("GATEHOUSE_FROM defaults to %q, want the build stage", args["GATEHOUSE_FROM"])
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final image %q is not distroless/static or scratch", final)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/gatehouse", `ENTRYPOINT ["/gatehouse"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if !regexp.MustCompile(`(?m)^USER (65532|nonroot)`).MatchString(df) {
		t.Error("Dockerfile does not switch to a non-root USER")
	}
}
