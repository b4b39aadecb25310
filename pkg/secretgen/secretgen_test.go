package secretgen

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestEnsureFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "secrets")
	wrote, err := EnsureFiles(dir)
	if err != nil || len(wrote) != 2 {
		t.Fatalf("first run: wrote %v, err %v; want both files", wrote, err)
	}
	first := map[string]string{}
	for _, n := range Names {
		path := filepath.Join(dir, n.File)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if err := check(string(b)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		first[n.File] = string(b)
	}
	if first["shared_secret"] == first["cookie_secret"] {
		t.Fatal("shared_secret and cookie_secret are equal")
	}

	// A second run (a restarted job) keeps what is there.
	wrote, err = EnsureFiles(dir)
	if err != nil || len(wrote) != 0 {
		t.Fatalf("second run: wrote %v, err %v; want nothing", wrote, err)
	}
	for _, n := range Names {
		if b, _ := os.ReadFile(filepath.Join(dir, n.File)); string(b) != first[n.File] {
			t.Errorf("%s changed on the second run", n.File)
		}
	}

	// A damaged or published value is reported, never silently replaced.
	bad := filepath.Join(dir, "cookie_secret")
	if err := os.WriteFile(bad, []byte("ZGV2LW9ubHktY29va2llLXNlY3JldC0zMi1ieXRlcyE=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureFiles(dir); err == nil || !strings.Contains(err.Error(), "delete it to make a new one") {
		t.Fatalf("published value in a file: err = %v", err)
	}
}

// fakeSecretsAPI answers the two Secret calls the way kube-apiserver does:
// 404 with a Status for a missing Secret, 201 on create, 409 when it exists.
type fakeSecretsAPI struct {
	mu      sync.Mutex
	secrets map[string]secretObject
	// conflictOnce makes the next create lose a race: another Job created
	// the Secret first.
	conflictOnce bool
	forbidden    bool
}

func (f *fakeSecretsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	status := func(code int, msg string) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code})
	}
	if r.Header.Get("Authorization") != "Bearer test-token" {
		status(http.StatusUnauthorized, "Unauthorized")
		return
	}
	if f.forbidden {
		status(http.StatusForbidden, `secrets is forbidden: User "system:serviceaccount:gatehouse:default" cannot create resource "secrets"`)
		return
	}
	const prefix = "/api/v1/namespaces/gatehouse/secrets"
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix+"/"):
		s, ok := f.secrets[strings.TrimPrefix(r.URL.Path, prefix+"/")]
		if !ok {
			status(http.StatusNotFound, "not found")
			return
		}
		_ = json.NewEncoder(w).Encode(s)
	case r.Method == http.MethodPost && r.URL.Path == prefix:
		var s secretObject
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			status(http.StatusBadRequest, err.Error())
			return
		}
		if f.conflictOnce {
			f.conflictOnce = false
			other := s
			other.Data = map[string]string{}
			for _, n := range Names {
				other.Data[n.Env] = base64.StdEncoding.EncodeToString([]byte(New()))
			}
			f.secrets[s.Metadata.Name] = other
		}
		if _, ok := f.secrets[s.Metadata.Name]; ok {
			status(http.StatusConflict, "already exists")
			return
		}
		f.secrets[s.Metadata.Name] = s
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(s)
	default:
		status(http.StatusNotFound, "the server could not find the requested resource")
	}
}

func TestEnsureKubernetesSecret(t *testing.T) {
	t.Parallel()
	fake := &fakeSecretsAPI{secrets: map[string]secretObject{}}
	srv := httptest.NewTLSServer(fake)
	t.Cleanup(srv.Close)
	api := &KubeAPI{Server: srv.URL, Token: "test-token", Client: srv.Client(), Namespace: "gatehouse"}
	ctx := context.Background()

	created, err := api.EnsureKubernetesSecret(ctx, "", "gatehouse-generated")
	if err != nil || !created {
		t.Fatalf("first run: created %v, err %v", created, err)
	}
	s := fake.secrets["gatehouse-generated"]
	for _, n := range Names {
		raw, _ := base64.StdEncoding.DecodeString(s.Data[n.Env])
		if err := check(string(raw)); err != nil {
			t.Errorf("%s: %v", n.Env, err)
		}
	}
	before := s.Data["SHARED_SECRET"]
	if created, err := api.EnsureKubernetesSecret(ctx, "", "gatehouse-generated"); err != nil || created {
		t.Fatalf("second run: created %v, err %v; want kept", created, err)
	}
	if fake.secrets["gatehouse-generated"].Data["SHARED_SECRET"] != before {
		t.Fatal("second run changed the Secret")
	}

	// Another Job won the race: its Secret is kept and checked.
	fake.conflictOnce = true
	if created, err := api.EnsureKubernetesSecret(ctx, "gatehouse", "raced"); err != nil || created {
		t.Fatalf("lost race: created %v, err %v; want the other Job's Secret kept", created, err)
	}

	// A Secret someone filled with the published development values.
	fake.secrets["published"] = secretObject{Data: map[string]string{
		"SHARED_SECRET": base64.StdEncoding.EncodeToString([]byte("ZGV2LW9ubHktc2hhcmVkLXNlY3JldC0zMi1ieXRlcyE=")),
		"COOKIE_SECRET": base64.StdEncoding.EncodeToString([]byte(New())),
	}}
	if _, err := api.EnsureKubernetesSecret(ctx, "", "published"); err == nil || !strings.Contains(err.Error(), "SHARED_SECRET is not usable") {
		t.Fatalf("published values: err = %v", err)
	}

	fake.forbidden = true
	if _, err := api.EnsureKubernetesSecret(ctx, "", "other"); err == nil || !strings.Contains(err.Error(), "needs get and create on secrets") {
		t.Fatalf("forbidden: err = %v", err)
	}
}
