package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/gatehouse/gatehouse/pkg/config/configtest"
	"github.com/gatehouse/gatehouse/pkg/cryptutil"
	"github.com/gatehouse/gatehouse/pkg/grpcutil"
	"github.com/gatehouse/gatehouse/pkg/testutil"
	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// testSecret and testCookieSecret are the secrets of every config the
// tests write (configtest's base).
const (
	testSecret       = configtest.Secret
	testCookieSecret = configtest.CookieSecret
)

func TestValidateCommand(t *testing.T) {
	bin := testutil.Gatehouse(t)
	tests := []struct {
		name     string
		config   string
		wantCode int
		want     []string
	}{
		{"unknown key", "services: databroker\nshared_secret: " + testSecret + "\nshraed_secret: x\n", 1, []string{"line 3: shraed_secret: unknown option"}},
		{"short secret", "services: databroker\nshared_secret: MDEyMzQ1Njc4OQ==\n", 1, []string{"line 2: shared_secret:", "32"}},
		{"valid", "services: databroker\nshared_secret: " + testSecret + "\n", 0, []string{"ok", "warning: grpc_address :5443 serves plaintext gRPC beyond loopback"}},
		{"valid on loopback", "services: databroker\ngrpc_address: 127.0.0.1:5443\nshared_secret: " + testSecret + "\n", 0, []string{"ok"}},
		{"published secret", "services: databroker\nshared_secret: ZGV2LW9ubHktc2hhcmVkLXNlY3JldC0zMi1ieXRlcyE=\n", 1,
			[]string{"line 2: shared_secret: not a random secret: it is the development shared_secret published", "head -c32 /dev/urandom | base64"}},
		{"all-in-one without secrets", "authenticate_service_url: https://a.example.com\ninsecure_server: true\nidp_provider_url: https://idp.example.com\nidp_client_id: x\nidp_client_secret: y\n", 0,
			[]string{"ok", "warning: shared_secret is not set: using a random one for this process", "warning: cookie_secret is not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testutil.WriteFile(t, "config.yaml", tt.config)
			out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestUnknownServiceIsAStartError(t *testing.T) {
	bin := testutil.Gatehouse(t)
	path := testutil.WriteFile(t, "config.yaml", "services: databroker,cache\nshared_secret: "+testSecret+"\n")
	out, err := exec.Command(bin, "--config", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown service "cache"`) {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

// startDataBroker runs `gatehouse` with only the databroker service.
func startDataBroker(t *testing.T) (grpcAddr string, proc *testutil.Process) {
	t.Helper()
	bin := testutil.Gatehouse(t)
	grpcAddr, healthAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	path := testutil.WriteFile(t, "config.yaml", fmt.Sprintf(
		"services: databroker\ngrpc_address: %s\nhealth_check_addr: %s\n", grpcAddr, healthAddr))
	proc = testutil.StartProcess(t, "gatehouse", bin, []string{"--config", path}, "SHARED_SECRET="+testSecret)
	testutil.WaitHTTP(t, "http://"+healthAddr+"/readyz", 20*time.Second, proc)
	return grpcAddr, proc
}

func TestGRPCServiceTokenFromTokenCommand(t *testing.T) {
	grpcAddr, _ := startDataBroker(t)
	cc, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Health and reflection are open, and reflection lists the service.
	if resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	lr, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range lr.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "gatehouse.databroker.v1.DataBrokerService") || !strings.Contains(got, "grpc.health.v1.Health") {
		t.Fatalf("services: %s", got)
	}

	db := databrokerv1.NewDataBrokerServiceClient(cc)
	if _, err := db.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without token: %v, want Unauthenticated", err)
	}
	cmd := exec.Command(testutil.Gatehouse(t), "token", "--ttl", "5m")
	cmd.Env = append(cmd.Environ(), "SHARED_SECRET="+testSecret)
	tok, err := cmd.Output()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(tok)))
	if _, err := db.ServerInfo(authed, &databrokerv1.ServerInfoRequest{}); err != nil {
		t.Fatalf("with token: %v", err)
	}
	wrong, _ := grpcutil.NewServiceToken([]byte("another-secret-another-secret-32"), time.Minute, time.Now())
	bad := metadata.AppendToOutgoingContext(ctx, "jwt", wrong)
	if _, err := db.ServerInfo(bad, &databrokerv1.ServerInfoRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong secret: %v, want Unauthenticated", err)
	}
}

func TestGracefulShutdownEndsStreamsAndExitsZero(t *testing.T) {
	grpcAddr, proc := startDataBroker(t)
	key, _ := cryptutil.DecodeSecret(testSecret)
	u, _ := url.Parse("http://" + grpcAddr)
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{Targets: []*url.URL{u}, SharedKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db := databrokerv1.NewDataBrokerServiceClient(cc)
	info, err := db.ServerInfo(ctx, &databrokerv1.ServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := db.Sync(ctx, &databrokerv1.SyncRequest{ServerVersion: info.ServerVersion, RecordVersion: info.LatestRecordVersion})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	if err := proc.Signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, proc.Output())
	}
	select {
	case err := <-ended:
		if err == io.EOF {
			return
		}
		if c := status.Code(err); c != codes.Unavailable && c != codes.Canceled && c != codes.OK {
			t.Fatalf("stream ended with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sync stream still open after the server stopped")
	}
}

func TestMetricsEndpoint(t *testing.T) {
	bin := testutil.Gatehouse(t)
	grpcAddr, healthAddr, metricsAddr := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	path := testutil.WriteFile(t, "config.yaml", fmt.Sprintf(
		"services: databroker\ngrpc_address: %s\nhealth_check_addr: %s\nmetrics_address: %s\n", grpcAddr, healthAddr, metricsAddr))
	proc := testutil.StartProcess(t, "gatehouse", bin, []string{"--config", path}, "SHARED_SECRET="+testSecret)
	testutil.WaitHTTP(t, "http://"+healthAddr+"/readyz", 20*time.Second, proc)

	key, _ := cryptutil.DecodeSecret(testSecret)
	cc, err := grpcutil.Dial(grpcutil.ClientOptions{Targets: []*url.URL{{Scheme: "http", Host: grpcAddr}}, SharedKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := databrokerv1.NewDataBrokerServiceClient(cc).ServerInfo(ctx, &databrokerv1.ServerInfoRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`grpc_server_handled_total{grpc_code="OK",grpc_method="ServerInfo"`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// gatehouse token mints only what services accept: a lifetime above 0 and
// at most 24 h, with a message that says so.
func TestTokenCommandRefusesBadTTL(t *testing.T) {
	for _, ttl := range []string{"0", "-5m", "25h", "720h"} {
		cmd := exec.Command(testutil.Gatehouse(t), "token", "--ttl", ttl)
		cmd.Env = append(cmd.Environ(), "SHARED_SECRET="+testSecret)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("--ttl %s: exit 0, printed %q", ttl, out)
			continue
		}
		if !strings.Contains(string(out), "at most 24h") {
			t.Errorf("--ttl %s: %s", ttl, out)
		}
	}
}

// gen-secrets makes a deployment's secrets once and keeps them; what it
// makes loads, and `token` reads it.
func TestGenSecretsCommand(t *testing.T) {
	bin := testutil.Gatehouse(t)
	dir := filepath.Join(t.TempDir(), "secrets")
	out, err := exec.Command(bin, "gen-secrets", "--dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "wrote "+filepath.Join(dir, "shared_secret")) {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "shared_secret"))
	out, err = exec.Command(bin, "gen-secrets", "--dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kept the secrets") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "shared_secret")); !bytes.Equal(first, again) {
		t.Fatal("the second run replaced shared_secret")
	}
	path := testutil.WriteFile(t, "config.yaml", "services: databroker\nshared_secret_file: "+filepath.Join(dir, "shared_secret")+"\n")
	if out, err := exec.Command(bin, "token", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("token with the generated secret: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "gen-secrets").CombinedOutput(); err == nil || !strings.Contains(string(out), "exactly one of --dir DIR or --kubernetes-secret NAME") {
		t.Fatalf("no flags: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "gen-secrets", "--kubernetes-secret", "x").CombinedOutput(); err == nil || !strings.Contains(string(out), "not in a Kubernetes pod") {
		t.Fatalf("outside a pod: %v\n%s", err, out)
	}
}
