package authorize

import (
	"os"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
)

// Headers of a Kubernetes API route (kubernetes_service_account_token),
// lower-case as Envoy carries them.
const (
	headerAuthorization    = "authorization"
	headerImpersonateUser  = "impersonate-user"
	headerImpersonateGroup = "impersonate-group"
)

// tokenFileTTL is how long a kubernetes_service_account_token_file's
// content is used before the file is read again (projected service
// account tokens rotate).
const tokenFileTTL = 30 * time.Second

// k8sToken is a route's service account token: the option's value, or the
// file's, read again after tokenFileTTL. It is safe for concurrent use.
type k8sToken struct {
	value string // kubernetes_service_account_token
	file  string // kubernetes_service_account_token_file

	mu     sync.Mutex
	cached string
	readAt time.Time
}

func newK8sToken(r *config.Route) *k8sToken {
	if !r.IsForKubernetes() {
		return nil
	}
	return &k8sToken{value: r.KubernetesServiceAccountToken, file: r.KubernetesServiceAccountTokenFile}
}

// get returns the token, "" when the file cannot be read (then no token
// goes upstream, and the proxy still removes the client's Authorization).
func (k *k8sToken) get(now time.Time) string {
	if k.file == "" {
		return k.value
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.readAt.IsZero() || now.Sub(k.readAt) >= tokenFileTTL {
		if b, err := os.ReadFile(k.file); err == nil {
			k.cached = strings.TrimSpace(string(b))
		}
		k.readAt = now
	}
	return k.cached
}

// withKubernetesHeaders returns base with the headers of a Kubernetes API
// route added, as Pomerium writes them: the service account's bearer
// token, and the signed-in user to impersonate (email, and groups
// comma-joined). Built per request: they are the user's.
func (st *state) withKubernetesHeaders(r *route, base *okAnswer, ident *identity, now time.Time) *okAnswer {
	ok := base.plain.GetOkResponse()
	headers := make([]*corev3.HeaderValueOption, 0, len(ok.GetHeaders())+3)
	headers = append(headers, ok.GetHeaders()...)
	if tok := r.k8s.get(now); tok != "" {
		headers = append(headers, extauthz.NewHeader(headerAuthorization, "Bearer "+tok))
	}
	if ident != nil {
		if e := ident.subject.Email; e != "" {
			headers = append(headers, extauthz.NewHeader(headerImpersonateUser, e))
		}
		if len(ident.subject.Groups) > 0 {
			headers = append(headers, extauthz.NewHeader(headerImpersonateGroup, strings.Join(ident.subject.Groups, ",")))
		}
	}
	return newOKAnswer(&authv3.OkHttpResponse{Headers: headers, HeadersToRemove: ok.GetHeadersToRemove()})
}
