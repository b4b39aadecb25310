package authorize

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// pathConfigYAML allows /open and denies /open/secret twice over: by a
// route of its own (route matching) and by http_path (the policy).
var pathConfigYAML = `
services: authorize
shared_secret: ` + testSecret + `
authenticate_service_url: https://authenticate.localhost.pomerium.io
databroker_service_url: http://127.0.0.1:5443
routes:
  - id: secret-route
    from: https://open.localhost.pomerium.io
    prefix: /open/secret
    to: http://app:80
    policy:
      allow:
        and:
          - reject: true
  - id: open
    from: https://open.localhost.pomerium.io
    to: http://app:80
    policy:
      allow:
        or:
          - accept: true
      deny:
        or:
          - http_path:
              starts_with: /open/secret
`

// A CheckRequest may come from any Envoy or gRPC client, with a path the
// proxy would have normalized: authorize normalizes it itself (the same
// function, so a path from the proxy is unchanged), and matches and
// evaluates only the normal form.
func TestCheckEvaluatesNormalPath(t *testing.T) {
	for _, extra := range []string{"", "path_with_escaped_slashes_action: keep_unchanged\n", "merge_slashes: false\n"} {
		s := newTestService(t, testConfig(t, pathConfigYAML+extra))
		for _, tt := range []struct {
			path    string
			routeID string // context extension route_id, as the proxy sends it
			status  int    // 0 = allowed
		}{
			{path: "/open/ok", status: 0},
			{path: "/open/ok?next=/open/secret", status: 0},
			{path: "/OPEN/secret", status: 0},
			{path: "/open/secret", status: 403},
			{path: "/open/%73ecret", status: 403},
			{path: "/open/%73ecret", routeID: "open", status: 403},
			{path: "/open/secre%74?x=1", routeID: "open", status: 403},
			{path: "/open/./secret", status: 403},
			{path: "/open/x/../secret", routeID: "open", status: 403},
			{path: "/open/x/%2e%2e/secret", routeID: "open", status: 403},
			{path: `/open\secret`, routeID: "open", status: 403},
			{path: "/open/secret%00", status: 400},
			{path: "/open/secret%zz", routeID: "open", status: 400},
			{path: "open/secret", status: 400},
			{path: "", routeID: "open", status: 400},
			{path: "/open/secret#x", routeID: "open", status: 400},
		} {
			opts := []reqOpt{fromBrowser()}
			if tt.routeID != "" {
				opts = append(opts, ctxExt(extauthz.ContextRouteID, tt.routeID))
			}
			req := newReq("GET", "https://open.localhost.pomerium.io/", opts...)
			req.Attributes.Request.Http.Path = tt.path
			resp, err := s.Check(context.Background(), req)
			if err != nil {
				t.Fatalf("%q %s: %v", extra, tt.path, err)
			}
			if got := statusOf(resp); got != tt.status {
				t.Errorf("%q: %q (route_id %q): status %d, want %d", extra, tt.path, tt.routeID, got, tt.status)
			}
		}
		// // and %2F follow the options, as in the proxy.
		for _, tt := range []struct {
			path   string
			status map[string]int
		}{
			{"/open//secret", map[string]int{"": 403, "path_with_escaped_slashes_action: keep_unchanged\n": 403, "merge_slashes: false\n": 0}},
			{"/open%2Fsecret", map[string]int{"": 400, "path_with_escaped_slashes_action: keep_unchanged\n": 0, "merge_slashes: false\n": 400}},
		} {
			req := newReq("GET", "https://open.localhost.pomerium.io/", fromBrowser(), ctxExt(extauthz.ContextRouteID, "open"))
			req.Attributes.Request.Http.Path = tt.path
			resp, _ := s.Check(context.Background(), req)
			if got := statusOf(resp); got != tt.status[extra] {
				t.Errorf("%q: %q: status %d, want %d", extra, tt.path, got, tt.status[extra])
			}
		}
	}
}

// The decision log names the path that was evaluated.
func TestDecisionLogHasNormalPath(t *testing.T) {
	var buf bytes.Buffer
	cfg := testConfig(t, pathConfigYAML)
	s := newTestService(t, cfg)
	s.logger = slog.New(slog.NewTextHandler(&buf, nil))
	req := newReq("GET", "https://open.localhost.pomerium.io/", fromBrowser(), ctxExt(extauthz.ContextRouteID, "open"))
	req.Attributes.Request.Http.Path = "/open/x/../%73ecret?q=1"
	resp, _ := s.Check(context.Background(), req)
	if statusOf(resp) != http.StatusForbidden || !strings.Contains(buf.String(), "path=/open/secret ") {
		t.Errorf("status %d, log %s", statusOf(resp), buf.String())
	}
}

// statusOf is 0 for an allowed response, else the denial's HTTP status.
func statusOf(resp *authv3.CheckResponse) int {
	if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		return 0
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}
