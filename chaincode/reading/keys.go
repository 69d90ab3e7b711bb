package reading

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Algorithm names a device key type.
type Algorithm string

// Supported device key algorithms.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	Ed25519   Algorithm = "ed25519"
)

// MaxPublicKeyPEM bounds the size of a public key accepted from a caller.
const MaxPublicKeyPEM = 1024

// PublicKey is a device's enrolled verification key.
type PublicKey struct {
	alg   Algorithm
	ecdsa *ecdsa.PublicKey
	ed    ed25519.PublicKey
	der   []byte
}

// KeyError says why a key was refused.
type KeyError struct{ Reason string }

func (e *KeyError) Error() string { return "invalid public key: " + e.Reason }

// ParsePublicKey accepts a PEM "PUBLIC KEY" block (PKIX / SubjectPublicKeyInfo)
// holding an ECDSA P-256 or Ed25519 key.
func ParsePublicKey(pemText string) (*PublicKey, error) {
	if len(pemText) > MaxPublicKeyPEM {
		return nil, &KeyError{fmt.Sprintf("PEM is %d bytes, the limit is %d", len(pemText), MaxPublicKeyPEM)}
	}
	block, rest := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil {
		return nil, &KeyError{"not PEM: expected -----BEGIN PUBLIC KEY-----"}
	}
	if block.Type != "PUBLIC KEY" {
		return nil, &KeyError{fmt.Sprintf("PEM block is %q, expected \"PUBLIC KEY\"", block.Type)}
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, &KeyError{"trailing data after the PEM block"}
	}
	return ParsePublicKeyDER(block.Bytes)
}

// ParsePublicKeyDER accepts a DER SubjectPublicKeyInfo.
func ParsePublicKeyDER(der []byte) (*PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, &KeyError{"not a PKIX public key: " + err.Error()}
	}
	k := &PublicKey{der: append([]byte(nil), der...)}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, &KeyError{fmt.Sprintf("ECDSA curve %s is not supported, use P-256", p.Curve.Params().Name)}
		}
		k.alg, k.ecdsa = ECDSAP256, p
	case ed25519.PublicKey:
		k.alg, k.ed = Ed25519, p
	default:
		return nil, &KeyError{fmt.Sprintf("key type %T is not supported, use ECDSA P-256 or Ed25519", pub)}
	}
	return k, nil
}

// Algorithm reports the key's algorithm.
func (k *PublicKey) Algorithm() Algorithm { return k.alg }

// PEM renders the key as a PKIX PEM block.
func (k *PublicKey) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.der}))
}

// Fingerprint is the hex SHA-256 of the key's DER encoding.
func (k *PublicKey) Fingerprint() string {
	sum := sha256.Sum256(k.der)
	return hex.EncodeToString(sum[:])
}

// Equal reports whether two keys are the same key.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return o != nil && string(k.der) == string(o.der)
}

// Verify checks sig over msg.
func (k *PublicKey) Verify(msg, sig []byte) error {
	if len(sig) == 0 || len(sig) > MaxSignatureBytes {
		return ErrBadSignature
	}
	switch k.alg {
	case ECDSAP256:
		digest := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k.ecdsa, digest[:], sig) {
			return ErrBadSignature
		}
	case Ed25519:
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k.ed, msg, sig) {
			return ErrBadSignature
		}
	default:
		return ErrBadSignature
	}
	return nil
}

// Signer holds a device's private key. Devices (and the simulator) use it;
// the chaincode never does.
type Signer struct {
	priv crypto.Signer
	pub  *PublicKey
	alg  Algorithm
}

// GenerateKey makes a new device key pair.
func GenerateKey(alg Algorithm) (*Signer, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ECDSAP256, "":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q: use %q or %q", alg, ECDSAP256, Ed25519)
	}
	if err != nil {
		return nil, err
	}
	return newSigner(priv)
}

func newSigner(priv crypto.Signer) (*Signer, error) {
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyDER(der)
	if err != nil {
		return nil, err
	}
	return &Signer{priv: priv, pub: pub, alg: pub.alg}, nil
}

// ParsePrivateKey reads a PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY" PEM.
func ParsePrivateKey(pemText []byte) (*Signer, error) {
	block, _ := pem.Decode(pemText)
	if block == nil {
		return nil, errors.New("invalid private key: not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("invalid private key: PEM block %q, expected \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("invalid private key: unsupported type %T", key)
	}
	return newSigner(signer)
}

// PrivateKeyPEM renders the private key as PKCS#8 PEM.
func (s *Signer) PrivateKeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(s.priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Public returns the verification key.
func (s *Signer) Public() *PublicKey { return s.pub }

// Sign signs domain || payload.
func (s *Signer) Sign(domain string, payload []byte) ([]byte, error) {
	return s.SignWith(rand.Reader, domain, payload)
}

// SignWith signs with an explicit entropy source (tests use a fixed one).
func (s *Signer) SignWith(entropy io.Reader, domain string, payload []byte) ([]byte, error) {
	msg := Message(domain, payload)
	switch s.alg {
	case Ed25519:
		return ed25519.Sign(s.priv.(ed25519.PrivateKey), msg), nil
	default:
		digest := sha256.Sum256(msg)
		return ecdsa.SignASN1(entropy, s.priv.(*ecdsa.PrivateKey), digest[:])
	}
}

// SignReading encodes p, signs it and returns the envelope a device publishes.
func (s *Signer) SignReading(p Payload) (Envelope, error) {
	if err := p.Validate(); err != nil {
		return Envelope{}, err
	}
	raw, err := jsonMarshal(p)
	if err != nil {
		return Envelope{}, err
	}
	sig, err := s.Sign(DomainReading, raw)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Payload: raw, Signature: sig}, nil
}
