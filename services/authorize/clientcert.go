package authorize

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/gatehouse/gatehouse/pkg/clientcert"
	"github.com/gatehouse/gatehouse/pkg/extauthz"
	"github.com/gatehouse/gatehouse/pkg/pages"
	"github.com/gatehouse/gatehouse/pkg/policy"
)

// StatusInvalidClientCertificate is the HTTP status of a request denied
// for its client certificate (missing or invalid), as Pomerium (and
// nginx) answer it.
const StatusInvalidClientCertificate = 495

// Client certificate answers for routes without a client CA: every
// request counts as valid there, as in Pomerium, and nothing is verified.
var (
	noCANone      = &policy.ClientCertificate{Valid: true}
	noCAPresented = &policy.ClientCertificate{Presented: true, Valid: true}
)

// clientCertificate returns what the route's policy knows of the client
// certificate the proxy forwarded (attributes.source.certificate, which
// the proxy fills from its TLS stack and never from a header), with why it
// is not valid ("" when it is).
func clientCertificate(r *route, req *authv3.CheckRequest, now time.Time) (*policy.ClientCertificate, string) {
	s := req.GetAttributes().GetSource().GetCertificate()
	if r.cfg.ClientCA != nil {
		return r.cfg.ClientCA.Check(s, now)
	}
	if s == "" {
		return noCANone, ""
	}
	return noCAPresented, ""
}

// certDenied reports whether a decision denies the request for its client
// certificate.
func certDenied(d *policy.Decision) bool {
	return d.DenyResult.Value && d.DenyResult.Reasons&(policy.ReasonInvalidClientCertificate|policy.ReasonClientCertificateRequired) != 0
}

// invalidClientCertificate answers 495, as Pomerium does for a request
// denied by invalid_client_certificate.
func (st *state) invalidClientCertificate(req *authv3.CheckRequest, host, requestID string, reasons policy.Reasons) *authv3.CheckResponse {
	code, title, lead := "invalid_client_certificate", "Invalid client certificate", "The client certificate you presented is not valid for this route."
	if reasons.Has(policy.ReasonClientCertificateRequired) {
		code, title, lead = "client_certificate_required", "Client certificate required", "This route requires a client certificate, and your browser or client did not present one."
	}
	if !isBrowser(req) {
		return extauthz.Denied(StatusInvalidClientCertificate, []*corev3.HeaderValueOption{
			extauthz.NewHeader("content-type", "application/json"),
			extauthz.NewHeader("cache-control", "no-store"),
		}, jsonError(code, requestID))
	}
	h := extauthz.HTTPRequest(req)
	p := &pages.Page{
		Brand: st.brand, Status: StatusInvalidClientCertificate, Title: title, RequestID: requestID,
		Lead:  []string{lead},
		Facts: []pages.Row{{Label: "Request", Value: h.GetMethod() + " " + requestURL(h, host), Code: true}},
		Next:  "Install the certificate your administrator issued you in your browser or client and try again, or ask them for one, giving them the request ID below.",
	}
	headers := make([]*corev3.HeaderValueOption, 0, 6)
	for _, kv := range pages.Headers() {
		headers = append(headers, extauthz.NewHeader(kv[0], kv[1]))
	}
	return extauthz.Denied(StatusInvalidClientCertificate, headers, string(p.HTML()))
}

// certFingerprint returns the SHA-256 fingerprint of the forwarded client
// certificate for ${pomerium.client_cert_fingerprint} ("" without one).
func certFingerprint(cert *policy.ClientCertificate, req *authv3.CheckRequest) string {
	if cert == nil || !cert.Presented {
		return ""
	}
	if cert.Fingerprint != "" {
		return cert.Fingerprint
	}
	if chain, err := clientcert.ParseChain(req.GetAttributes().GetSource().GetCertificate()); err == nil {
		return clientcert.Fingerprint(chain[0])
	}
	return ""
}
