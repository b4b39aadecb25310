package policy

// invalidClientCertificateCriterion is true when the request's client
// certificate is missing (client-certificate-required) or does not verify
// (invalid-client-certificate), and false with valid-client-certificate
// otherwise, as Pomerium's. With downstream_mtls enforcement
// policy_with_default_deny, every route that has a client CA gets
// `deny: {or: [invalid_client_certificate: true]}` added to its policy.
type invalidClientCertificateCriterion struct{}

func (invalidClientCertificateCriterion) name() string       { return "invalid_client_certificate" }
func (invalidClientCertificateCriterion) takes() valueKind   { return flagValue{} }
func (invalidClientCertificateCriterion) needs() subjectData { return needsRequest }
func (invalidClientCertificateCriterion) compile(*Criterion) check {
	return check{eval: func(in *Input) (bool, Reasons) {
		c := in.ClientCert
		switch {
		case c != nil && c.Valid:
			return false, ReasonValidClientCertificate
		case c == nil || !c.Presented:
			return true, ReasonClientCertificateRequired
		}
		return true, ReasonInvalidClientCertificate
	}}
}
