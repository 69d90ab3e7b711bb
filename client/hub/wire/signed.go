package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Hub-signed messages. What a hub delivers to a device — a command, a
// relayed inbox message — is signed by that hub with the key of its Fabric
// identity, whose certificate the org's Fabric CA issued with the attribute
// iotledger.role=hub. A device provisioned with its org's CA root checks the
// signature and the certificate chain with nothing else, so whoever can
// inject packets on the path (plain MQTT, a broker in the middle, a device
// setting a will) cannot make it act on a forged command.
//
//	SignedMessage = {"p": base64(payload bytes), "s": base64(signature), "x5c": [base64(certificate DER), …]}
//	message       = domain || payload bytes
//	signature     = ECDSA P-256 ASN.1 DER over SHA-256(message)
//
// x5c holds the hub's certificate first, then any intermediate CA
// certificates; the root is the device's own, never taken from the message.
const (
	DomainCommand = "iotledger-command-v1\n"
	DomainInbox   = "iotledger-inbox-v1\n"
)

// HubRole is the value of the iotledger.role attribute a signing hub's
// certificate must carry.
const HubRole = "hub"

// MaxChainCertificates bounds x5c.
const MaxChainCertificates = 4

// SignedMessage is a payload with a hub's signature and certificate chain.
type SignedMessage struct {
	Payload   []byte   `json:"p"`
	Signature []byte   `json:"s"`
	Chain     [][]byte `json:"x5c"`
}

// HubSigner signs what a hub delivers to devices.
type HubSigner struct {
	key   *ecdsa.PrivateKey
	chain [][]byte
}

// NewHubSigner reads a hub's certificate (PEM, the hub's first, then any
// intermediates) and its private key (PEM, PKCS#8 or SEC 1 EC), as Fabric
// CA enrolls them. The key must be the certificate's.
func NewHubSigner(certPEM, keyPEM []byte) (*HubSigner, error) {
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("hub signer: no CERTIFICATE block in the certificate PEM")
	}
	if len(chain) > MaxChainCertificates {
		return nil, fmt.Errorf("hub signer: %d certificates, at most %d", len(chain), MaxChainCertificates)
	}
	cert, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("hub signer: certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("hub signer: no PEM block in the key")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			return nil, fmt.Errorf("hub signer: key is neither PKCS#8 nor SEC 1 EC: %w", err)
		}
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("hub signer: key is %T, want an ECDSA key (Fabric CA issues P-256)", key)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&ec.PublicKey) {
		return nil, errors.New("hub signer: the key is not the certificate's")
	}
	return &HubSigner{key: ec, chain: chain}, nil
}

// LoadHubSigner reads a hub's Fabric identity (certificate and key files,
// as Fabric CA enrolls them) and makes its signer. Devices accept
// signatures only from a certificate with iotledger.role=hub, so an identity
// without that role is refused here rather than by every device.
func LoadHubSigner(certFile, keyFile string) (*HubSigner, error) {
	certPEM, err := os.ReadFile(certFile) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("hub identity certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("hub identity key: %w", err)
	}
	s, err := NewHubSigner(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(s.chain[0])
	if err != nil {
		return nil, fmt.Errorf("hub identity certificate %s: %w", certFile, err)
	}
	attrs, err := attrmgr.New().GetAttributesFromCert(cert)
	if err != nil {
		return nil, fmt.Errorf("hub identity certificate %s: %w", certFile, err)
	}
	if role, _, _ := attrs.Value(api.RoleAttribute); role != HubRole {
		return nil, fmt.Errorf("the identity in %s has %s=%q: a hub runs as an identity with the %q role (e.g. --identity hub), whose signature devices accept",
			certFile, api.RoleAttribute, role, HubRole)
	}
	return s, nil
}

// Sign returns the SignedMessage JSON of payload in domain.
func (s *HubSigner) Sign(domain string, payload []byte) ([]byte, error) {
	digest := sha256.Sum256(reading.Message(domain, payload))
	sig, err := s.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return json.Marshal(SignedMessage{Payload: payload, Signature: sig, Chain: s.chain})
}

// SignedMessageError says why a signed message was refused.
type SignedMessageError struct{ Reason string }

func (e *SignedMessageError) Error() string { return "signed message: " + e.Reason }

func refuse(format string, args ...any) error {
	return &SignedMessageError{Reason: fmt.Sprintf(format, args...)}
}

// HubVerifier checks hub-signed messages against the CA roots a device was
// provisioned with.
type HubVerifier struct {
	roots *x509.CertPool
	now   func() time.Time
}

// NewHubVerifier trusts the CA certificates in rootsPEM (the device's org
// CA root, or several). now is the device's clock for certificate validity
// (time.Now when nil).
func NewHubVerifier(rootsPEM []byte, now func() time.Time) (*HubVerifier, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootsPEM) {
		return nil, errors.New("hub verifier: no CA certificate in the roots PEM")
	}
	if now == nil {
		now = time.Now
	}
	return &HubVerifier{roots: pool, now: now}, nil
}

// NewHubVerifierPool is NewHubVerifier for roots already in a pool (the one
// a device pins for the hub's TLS certificate, issued by the same org CA).
func NewHubVerifierPool(roots *x509.CertPool, now func() time.Time) (*HubVerifier, error) {
	if roots == nil {
		return nil, errors.New("hub verifier: no CA pool")
	}
	if now == nil {
		now = time.Now
	}
	return &HubVerifier{roots: roots, now: now}, nil
}

// Verify checks msg in domain and returns the signed payload and the
// signing hub's certificate: the message parses strictly, the chain leads
// to one of the roots, the hub certificate carries iotledger.role=hub, and
// the signature verifies with its key.
func (v *HubVerifier) Verify(domain string, msg []byte) ([]byte, *x509.Certificate, error) {
	var m SignedMessage
	if err := reading.DecodeStrict(msg, &m); err != nil {
		return nil, nil, refuse("not {\"p\", \"s\", \"x5c\"}: %v", err)
	}
	if len(m.Payload) == 0 || len(m.Signature) == 0 || len(m.Chain) == 0 {
		return nil, nil, refuse("payload, signature and certificate chain are all required")
	}
	if len(m.Chain) > MaxChainCertificates {
		return nil, nil, refuse("%d certificates, at most %d", len(m.Chain), MaxChainCertificates)
	}
	certs := make([]*x509.Certificate, len(m.Chain))
	for i, der := range m.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, refuse("certificate %d: %v", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	hub := certs[0]
	if _, err := hub.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: v.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, nil, refuse("the hub's certificate is not issued by a trusted CA: %v", err)
	}
	attrs, err := attrmgr.New().GetAttributesFromCert(hub)
	if err != nil {
		return nil, nil, refuse("the hub's certificate attributes: %v", err)
	}
	if role, _, _ := attrs.Value(api.RoleAttribute); role != HubRole {
		return nil, nil, refuse("the signer's certificate has %s=%q, not %q", api.RoleAttribute, role, HubRole)
	}
	pub, ok := hub.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, nil, refuse("the hub's key is %T, want ECDSA", hub.PublicKey)
	}
	digest := sha256.Sum256(reading.Message(domain, m.Payload))
	if !ecdsa.VerifyASN1(pub, digest[:], m.Signature) {
		return nil, nil, refuse("signature does not verify with the hub's certificate")
	}
	return m.Payload, hub, nil
}

// VerifyCommand checks a message from a device's commands topic and returns
// the command, which must be addressed to device.
func (v *HubVerifier) VerifyCommand(device string, msg []byte) (api.Command, *x509.Certificate, error) {
	payload, hub, err := v.Verify(DomainCommand, msg)
	if err != nil {
		return api.Command{}, nil, err
	}
	var c api.Command
	if err := reading.DecodeStrict(payload, &c); err != nil {
		return api.Command{}, nil, refuse("command payload: %v", err)
	}
	if c.Device != device {
		return api.Command{}, nil, refuse("the command is for device %q, not %q", c.Device, device)
	}
	return c, hub, nil
}

// VerifyInbox checks a message from a device's inbox topic and returns what
// the hub relayed, which must be addressed to device.
func (v *HubVerifier) VerifyInbox(device string, msg []byte) (InboxMessage, *x509.Certificate, error) {
	payload, hub, err := v.Verify(DomainInbox, msg)
	if err != nil {
		return InboxMessage{}, nil, err
	}
	var m InboxMessage
	if err := reading.DecodeStrict(payload, &m); err != nil {
		return InboxMessage{}, nil, refuse("inbox payload: %v", err)
	}
	if m.To != device {
		return InboxMessage{}, nil, refuse("the message is for device %q, not %q", m.To, device)
	}
	return m, hub, nil
}
