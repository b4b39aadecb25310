package signingkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/pkg/cryptutil"
)

// MinRSABits is the smallest RSA modulus Parse accepts.
const MinRSABits = 2048

// deriveInfo is the HKDF context string of Derive. Changing it changes every
// derived key (and so every kid) of every deployment: don't.
const deriveInfo = "gatehouse signing key P-256 v1"

// KeySet is a set of private signing keys: the first signs, all are
// published (so an upstream keeps verifying JWTs signed by a key that is
// being rotated out). A KeySet is immutable and safe for concurrent use.
type KeySet struct {
	keys     []key
	jwks     jose.JSONWebKeySet
	jwksJSON []byte
	etag     string
}

// key is one private key with its algorithm and key id.
type key struct {
	private crypto.Signer
	alg     jose.SignatureAlgorithm
	kid     string
	hash    crypto.Hash // of alg
	sigLen  int         // JWS signature size in bytes
	header  string      // base64url of the protected header
}

// Parse reads the value of the signing_key option: one or several PEM blocks
// of EC (P-256 → ES256, P-384 → ES384, P-521 → ES512) or RSA (→ RS256,
// at least MinRSABits bits) private keys in SEC 1 ("EC PRIVATE KEY"), PKCS #1
// ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY") form, or the base64 of
// such PEM (standard or URL alphabet, padded or not). "EC PARAMETERS" blocks,
// as written by `openssl ecparam -genkey`, are skipped. The first key signs;
// every key is published. A key repeated in the input is published once.
func Parse(data string) (*KeySet, error) {
	data = strings.TrimSpace(data)
	if data == "" {
		return nil, errors.New("signingkey: signing_key is empty")
	}
	pemData := []byte(data)
	if !strings.Contains(data, "-----BEGIN") {
		b, err := decodeBase64(data)
		if err != nil {
			return nil, errors.New("signingkey: signing_key is neither PEM nor base64 of PEM")
		}
		pemData = b
	}

	var keys []key
	seen := make(map[string]bool)
	for n := 1; ; n++ {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		k, err := parseBlock(block)
		if err != nil {
			return nil, fmt.Errorf("signingkey: PEM block %d (%s): %w", n, block.Type, err)
		}
		if !seen[k.kid] {
			seen[k.kid] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("signingkey: signing_key holds no PEM private key")
	}
	if rest := strings.TrimSpace(string(pemData)); strings.Contains(rest, "-----BEGIN") {
		return nil, errors.New("signingkey: signing_key has a malformed PEM block")
	}
	return newKeySet(keys)
}

// Derive returns a KeySet holding one P-256 (ES256) key derived
// deterministically from sharedSecret, the decoded shared_secret: every
// service given the same secret derives the same key and kid.
//
// The scalar is d = (c mod (n-1)) + 1, where c is 40 bytes of
// HKDF-SHA256(sharedSecret, info "gatehouse signing key P-256 v1") read as a
// big-endian integer and n is the order of P-256; the 64 extra bits make the
// bias of the reduction negligible (FIPS 186-5, A.2.1), and d is never zero.
func Derive(sharedSecret []byte) (*KeySet, error) {
	if len(sharedSecret) == 0 {
		return nil, errors.New("signingkey: cannot derive a signing key from an empty shared secret")
	}
	curve := elliptic.P256()
	n := curve.Params().N
	c := new(big.Int).SetBytes(cryptutil.DeriveKey(sharedSecret, deriveInfo, 40))
	nMinus1 := new(big.Int).Sub(n, big.NewInt(1))
	d := c.Mod(c, nMinus1).Add(c, big.NewInt(1))
	priv, err := ecdsa.ParseRawPrivateKey(curve, d.FillBytes(make([]byte, 32)))
	if err != nil {
		return nil, fmt.Errorf("signingkey: derive: %w", err)
	}
	k, err := newKey(priv)
	if err != nil {
		return nil, err
	}
	return newKeySet([]key{k})
}

// Algorithm returns the JWS algorithm of the signing key: ES256, ES384,
// ES512 or RS256.
func (s *KeySet) Algorithm() jose.SignatureAlgorithm { return s.keys[0].alg }

// KeyID returns the kid of the signing key: the hex SHA-256 JWK thumbprint
// (RFC 7638) of its public key.
func (s *KeySet) KeyID() string { return s.keys[0].kid }

// JWKS returns the public keys, signing key first, each with kid, alg and
// use "sig". The returned set is a fresh copy of the slice; the keys in it
// are shared and must not be modified.
func (s *KeySet) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), s.jwks.Keys...)}
}

// JWKSJSON returns the JSON form of JWKS, computed once when the KeySet was
// built. The caller must not modify the returned slice.
func (s *KeySet) JWKSJSON() []byte { return s.jwksJSON }

func parseBlock(block *pem.Block) (key, error) {
	if len(block.Headers) != 0 {
		return key{}, errors.New("encrypted or annotated PEM blocks are not supported")
	}
	var (
		priv any
		err  error
		form string
	)
	switch block.Type {
	case "EC PRIVATE KEY":
		form = "SEC 1"
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		form = "PKCS #1"
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		form = "PKCS #8"
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return key{}, errors.New("not a private key: expected EC PRIVATE KEY, RSA PRIVATE KEY or PRIVATE KEY")
	}
	if err != nil {
		return key{}, fmt.Errorf("parse %s key: %w", form, err)
	}
	return newKey(priv)
}

// newKey checks priv and computes its algorithm and kid.
func newKey(priv any) (key, error) {
	var (
		signer crypto.Signer
		alg    jose.SignatureAlgorithm
	)
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		switch p.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		case elliptic.P521():
			alg = jose.ES512
		default:
			return key{}, fmt.Errorf("unsupported EC curve %s: expected P-256, P-384 or P-521", p.Curve.Params().Name)
		}
		signer = p
	case *rsa.PrivateKey:
		if bits := p.N.BitLen(); bits < MinRSABits {
			return key{}, fmt.Errorf("RSA key has %d bits: at least %d are required", bits, MinRSABits)
		}
		alg, signer = jose.RS256, p
	default:
		return key{}, fmt.Errorf("unsupported key type %T: expected an EC or RSA private key", priv)
	}
	jwk := jose.JSONWebKey{Key: signer.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return key{}, fmt.Errorf("thumbprint: %w", err)
	}
	return key{private: signer, alg: alg, kid: hex.EncodeToString(tp)}, nil
}

func newKeySet(keys []key) (*KeySet, error) {
	var err error
	k := &keys[0]
	if k.hash, k.sigLen, k.header, err = signParams(*k); err != nil {
		return nil, fmt.Errorf("signingkey: %w", err)
	}
	s := &KeySet{keys: keys}
	for _, k := range keys {
		s.jwks.Keys = append(s.jwks.Keys, jose.JSONWebKey{
			Key:       k.private.Public(),
			KeyID:     k.kid,
			Algorithm: string(k.alg),
			Use:       "sig",
		})
	}
	s.jwksJSON, err = json.Marshal(s.jwks)
	if err != nil {
		return nil, fmt.Errorf("signingkey: marshal JWKS: %w", err)
	}
	sum := sha256.Sum256(s.jwksJSON)
	s.etag = `"` + hex.EncodeToString(sum[:16]) + `"`
	return s, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}
