// Package kubetest starts a real Kubernetes control plane for tests: etcd
// and kube-apiserver on loopback, built from the Go module proxy by
// tools/kube/build.sh into KUBE_ASSETS (default ~/.cache/gatehouse-kube,
// outside the clone, so later runs reuse them). No kubelet, scheduler or
// controller-manager runs: tests create the Services and EndpointSlices
// (addresses on 127.0.0.1) that controllers would.
package kubetest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gatehouse/gatehouse/pkg/testutil"
)

// DefaultAssets is where `make kube-assets` builds the binaries when
// KUBE_ASSETS is unset.
func DefaultAssets() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "gatehouse-kube")
}

// Assets returns the folder holding etcd and kube-apiserver, or "" and why
// not: KUBE_ASSETS (default DefaultAssets), complete once build.sh wrote
// its .stamp.
func Assets() (dir, why string) {
	dir, set := os.LookupEnv("KUBE_ASSETS")
	if !set {
		dir = DefaultAssets()
	}
	if dir == "" {
		return "", "KUBE_ASSETS is empty (.ci/run sets it so while the kube binaries build in the background, and runs `make test-kube` afterwards when they are ready)"
	}
	if _, err := os.Stat(filepath.Join(dir, ".stamp")); err != nil {
		return "", fmt.Sprintf("no kube binaries in %s (no .stamp: not built, or the build is still running); build them with `make kube-assets` (about 20 min cold, seconds warm)", dir)
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Sprintf("%s missing in %s; run `make kube-assets`", b, dir)
		}
	}
	return dir, ""
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// URL is the API server's https URL.
	URL string
	// Kubeconfig is a kubeconfig file for the admin (system:masters).
	Kubeconfig string
	// Config is the admin's client configuration; Client a clientset on it.
	Config *rest.Config
	Client kubernetes.Interface
	// UserToken is the bearer token of the user "gatehouse-test-user" (no
	// groups: it may do only what RBAC grants it), and UserKubeconfig a
	// kubeconfig for it, to check least-privilege RBAC.
	UserToken      string
	UserKubeconfig string
}

// Start starts etcd and kube-apiserver on free loopback ports, or skips
// the test with the reason when the binaries are not built. Both stop when
// the test ends.
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	assets, why := Assets()
	if assets == "" {
		t.Skipf("skipping the Kubernetes test: %s", why)
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(certs, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	admin, user := token(), token()
	tokens := write("tokens.csv", []byte(admin+",admin,admin,system:masters\n"+user+",gatehouse-test-user,gatehouse-test-user\n"))

	etcdPort, peerPort, apiPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	etcd := testutil.StartProcess(t, "etcd", filepath.Join(assets, "etcd"), []string{
		"--name=test", "--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=http://127.0.0.1:" + strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:" + strconv.Itoa(peerPort),
		"--initial-cluster=test=http://127.0.0.1:" + strconv.Itoa(peerPort),
		"--unsafe-no-fsync", "--listen-metrics-urls=",
	})
	testutil.WaitHTTP(t, etcdURL+"/health", 30*time.Second, etcd)

	apiURL := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	api := testutil.StartProcess(t, "kube-apiserver", filepath.Join(assets, "kube-apiserver"), []string{
		"--advertise-address=127.0.0.1", "--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(apiPort),
		"--etcd-servers=" + etcdURL, "--cert-dir=" + certs,
		"--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
		"--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount",
		"--service-account-issuer=" + apiURL + "/",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--endpoint-reconciler-type=none", "--token-auth-file=" + tokens,
	})
	cp := &ControlPlane{URL: apiURL, UserToken: user}
	ca := filepath.Join(certs, "apiserver.crt")
	cp.Config = &rest.Config{Host: apiURL, BearerToken: admin, TLSClientConfig: rest.TLSClientConfig{CAFile: ca}, QPS: 100, Burst: 200}
	var client *http.Client
	testutil.WaitFor(t, 90*time.Second, "kube-apiserver ready", func() error {
		if api.Exited() {
			t.Fatalf("kube-apiserver exited:\n%s", tail(api.Output(), 30))
		}
		if client == nil {
			if _, err := os.Stat(ca); err != nil {
				return err
			}
			hc, err := rest.HTTPClientFor(cp.Config)
			if err != nil {
				return err
			}
			client = hc
		}
		resp, err := client.Get(apiURL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d", resp.StatusCode)
		}
		return nil
	})
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	cp.Client = cs
	cp.Kubeconfig = writeKubeconfig(t, dir, "admin", apiURL, ca, admin)
	cp.UserKubeconfig = writeKubeconfig(t, dir, "user", apiURL, ca, user)
	return cp
}

func writeKubeconfig(t testing.TB, dir, name, url, ca, tok string) string {
	p := filepath.Join(dir, name+".kubeconfig")
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: %s}
current-context: test
`, url, ca, name, tok, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
