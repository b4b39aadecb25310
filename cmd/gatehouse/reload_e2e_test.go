package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// A running gatehouse picks up a config edit (a new public route) without a
// restart, and refuses an invalid edit while it keeps serving.
func TestHotReloadInRunningProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatehouse")
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s", r.Host)
	}))
	defer upstream.Close()

	bin := testutil.Gatehouse(t)
	addr, grpcAddr, health := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	// Edits append to base, whose routes come last.
	base := configtest.New().
		Delete("log_level").
		Set("address", addr).
		Set("grpc_address", grpcAddr).
		Set("health_check_addr", health).
		Set("authenticate_service_url", "http://authenticate.localhost").
		Set("idp_provider_url", "http://127.0.0.1:1").
		Set("idp_client_id", "x").
		Set("idp_client_secret", "y").
		Route(`
			from: http://one.localhost
			to: ` + upstream.URL + `
			allow_public_unauthenticated_access: true`).
		YAML()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(content string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	proc := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", path})
	testutil.WaitHTTP(t, "http://"+health+"/readyz", 30*time.Second, proc)

	status := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("one.localhost"); got != http.StatusOK {
		t.Fatalf("route one: %d", got)
	}
	if got := status("two.localhost"); got != http.StatusNotFound {
		t.Fatalf("route two before the edit: %d, want 404", got)
	}

	// An invalid edit is refused; the running routes stay.
	write(base + "  - from: http://two.localhost\n    to: %%%\n")
	write(base + "bogus_option: true\n")
	testutil.WaitFor(t, 10*time.Second, "the invalid edit to be refused", func() bool {
		return strings.Contains(proc.Output(), "config reload refused")
	})
	if got := status("one.localhost"); got != http.StatusOK {
		t.Fatalf("route one after an invalid edit: %d", got)
	}

	// A valid edit adds a route, without a restart.
	write(base + fmt.Sprintf("  - from: http://two.localhost\n    to: %s\n    allow_public_unauthenticated_access: true\n", upstream.URL))
	testutil.WaitFor(t, 10*time.Second, "route two after the valid edit", func() bool { return status("two.localhost") == http.StatusOK })
	if proc.Exited() {
		t.Fatal("gatehouse exited")
	}
}
