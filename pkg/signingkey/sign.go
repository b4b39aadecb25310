package signingkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Sign marshals claims to JSON (see IdentityClaims) and returns it as a
// compact JWS signed by the first key, with protected header
// {"alg":…,"kid":…,"typ":"JWT"}.
//
// Sign runs once per proxied request, so it builds the compact form itself
// rather than through go-jose's generic JWS machinery: the header is encoded
// once per KeySet, and signing costs one hash and one signature plus a few
// buffers (go-jose's path allocated ~130 times per ES256 token). The output
// is byte-for-byte what go-jose produces; the tests verify it with go-jose.
func (s *KeySet) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("signingkey: marshal claims: %w", err)
	}
	k := &s.keys[0]
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(k.sigLen))
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)

	h := k.hash.New()
	h.Write(buf)
	var sum [64]byte
	digest := h.Sum(sum[:0])

	var sig []byte
	switch p := k.private.(type) {
	case *ecdsa.PrivateKey:
		der, err := ecdsa.SignASN1(rand.Reader, p, digest)
		if err != nil {
			return "", fmt.Errorf("signingkey: sign: %w", err)
		}
		var raw [132]byte // r || s for up to P-521
		sig, err = derToRaw(der, raw[:k.sigLen])
		if err != nil {
			return "", fmt.Errorf("signingkey: sign: %w", err)
		}
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(nil, p, k.hash, digest)
		if err != nil {
			return "", fmt.Errorf("signingkey: sign: %w", err)
		}
	default:
		return "", fmt.Errorf("signingkey: unsupported key type %T", k.private)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// derToRaw converts an ASN.1 ECDSA signature to the JWS form (RFC 7518
// 3.4): r and s as big-endian integers, each left-padded to half of out.
func derToRaw(der []byte, out []byte) ([]byte, error) {
	var (
		seq, r, s cryptobyte.String
		in        = cryptobyte.String(der)
	)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, cbasn1.INTEGER) || !seq.ReadASN1(&s, cbasn1.INTEGER) || !seq.Empty() {
		return nil, errors.New("malformed ECDSA signature")
	}
	half := len(out) / 2
	for _, part := range [2]struct {
		v   []byte
		dst []byte
	}{{r, out[:half]}, {s, out[half:]}} {
		v := part.v
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > half {
			return nil, errors.New("malformed ECDSA signature")
		}
		clear(part.dst[:half-len(v)])
		copy(part.dst[half-len(v):], v)
	}
	return out, nil
}

// signParams returns the hash, the JWS signature size and the encoded
// protected header for key k.
func signParams(k key) (crypto.Hash, int, string, error) {
	var (
		h      crypto.Hash
		sigLen int
	)
	switch k.alg {
	case jose.ES256:
		h, sigLen = crypto.SHA256, 64
	case jose.ES384:
		h, sigLen = crypto.SHA384, 96
	case jose.ES512:
		h, sigLen = crypto.SHA512, 132
	case jose.RS256:
		h, sigLen = crypto.SHA256, k.private.(*rsa.PrivateKey).Size()
	default:
		return 0, 0, "", fmt.Errorf("unsupported algorithm %s", k.alg)
	}
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{string(k.alg), k.kid, "JWT"})
	if err != nil {
		return 0, 0, "", err
	}
	return h, sigLen, base64.RawURLEncoding.EncodeToString(hdr), nil
}
