package secretgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// serviceAccountDir is where Kubernetes mounts a pod's API credentials.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// KubeAPI is the little of the Kubernetes API that making one Secret needs:
// read it, create it. It speaks the API's REST form directly, so the binary
// carries no Kubernetes client library for a one-shot Job.
type KubeAPI struct {
	// Server is the API server's base URL (https://host:port).
	Server string
	// Token is a bearer token (the pod's service account token).
	Token  string
	Client *http.Client
	// Namespace is the pod's namespace, the default for EnsureKubernetesSecret.
	Namespace string
}

// InCluster returns the API of the cluster the pod runs in, from the
// environment and service account files Kubernetes gives every pod.
func InCluster() (*KubeAPI, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset")
	}
	token, err := os.ReadFile(filepath.Join(serviceAccountDir, "token"))
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("service account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("service account CA: no PEM certificate in ca.crt")
	}
	ns, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace"))
	if err != nil {
		return nil, fmt.Errorf("service account namespace: %w", err)
	}
	return &KubeAPI{
		Server: "https://" + net.JoinHostPort(host, port),
		Token:  strings.TrimSpace(string(token)),
		Client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
		Namespace: strings.TrimSpace(string(ns)),
	}, nil
}

// secretObject is the part of a v1 Secret read and written here.
type secretObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   secretMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string]string `json:"data,omitempty"` // base64 of each value, as the API returns it
}

type secretMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// EnsureKubernetesSecret creates the Secret namespace/name holding
// SHARED_SECRET and COOKIE_SECRET unless it exists, and reports whether it
// created it. An existing Secret is kept when both values are good secrets
// and refused otherwise; a Secret another Job created in the meantime (409)
// counts as existing.
func (k *KubeAPI) EnsureKubernetesSecret(ctx context.Context, namespace, name string) (bool, error) {
	if namespace == "" {
		namespace = k.Namespace
	}
	path := "/api/v1/namespaces/" + url.PathEscape(namespace) + "/secrets"
	existing, err := k.getSecret(ctx, path+"/"+url.PathEscape(name))
	if err != nil {
		return false, err
	}
	if existing == nil {
		obj := secretObject{
			APIVersion: "v1", Kind: "Secret", Type: "Opaque",
			Metadata: secretMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "gatehouse"}},
			Data:     map[string]string{},
		}
		for _, n := range Names {
			obj.Data[n.Env] = base64.StdEncoding.EncodeToString([]byte(New()))
		}
		status, body, err := k.do(ctx, http.MethodPost, path, obj)
		switch {
		case err != nil:
			return false, err
		case status == http.StatusCreated || status == http.StatusOK:
			return true, nil
		case status != http.StatusConflict:
			return false, apiError("create secret "+namespace+"/"+name, status, body)
		}
		if existing, err = k.getSecret(ctx, path+"/"+url.PathEscape(name)); err != nil {
			return false, err
		}
		if existing == nil {
			return false, fmt.Errorf("secret %s/%s: the API server said it exists, then that it does not", namespace, name)
		}
	}
	for _, n := range Names {
		raw, err := base64.StdEncoding.DecodeString(existing.Data[n.Env])
		if err == nil {
			err = check(string(raw))
		}
		if err != nil {
			return false, fmt.Errorf("secret %s/%s exists but its %s is not usable: %w; delete the Secret to make a new one", namespace, name, n.Env, err)
		}
	}
	return false, nil
}

// getSecret returns the Secret at path, or nil when there is none.
func (k *KubeAPI) getSecret(ctx context.Context, path string) (*secretObject, error) {
	status, body, err := k.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusNotFound:
		return nil, nil
	case http.StatusOK:
		var s secretObject
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("read secret %s: %w", path, err)
		}
		return &s, nil
	}
	return nil, apiError("get secret "+path, status, body)
}

func (k *KubeAPI) do(ctx context.Context, method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(k.Server, "/")+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+k.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.Client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// apiError turns a Kubernetes Status answer into an error that says what to
// fix; 403 is the common one (the Job's Role is missing).
func apiError(what string, status int, body []byte) error {
	var st struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &st)
	msg := st.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	if status == http.StatusForbidden {
		return fmt.Errorf("%s: %s (the Job's service account needs get and create on secrets: see deployments/kubernetes/secrets-job.yaml)", what, msg)
	}
	return fmt.Errorf("%s: API server answered %d: %s", what, status, msg)
}
