package reading

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/json"
	"fmt"
)

// Device-to-device messages. The sending device signs what it sends, so the
// recipient (and any hub or the ledger relaying it) can tell it came from the
// sender's enrolled key; it may seal the body to the recipient's enrolled
// encryption key, so that no hub, ledger member or orderer can read it:
//
//	Envelope  = {"p": base64(message payload bytes), "s": base64(signature)}
//	signature = over DomainMessage || payload bytes, with the sender's key
//	sealed    = HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//	            ChaCha20Poly1305; info = MessageSealInfo; aad = from "\n" to "\n" id
//
// The signature covers the ciphertext (encrypt, then sign), so relays can
// check the sender without the recipient's key, and the aad binds the
// ciphertext to its sender, recipient and id, so it cannot be moved into
// another message.

// Limits on messages.
const (
	MaxMessageBytes   = 6000     // payload bytes, sealed body included: its envelope (base64) fits an inbox message (8 KiB)
	MaxMessageBody    = 4 * 1024 // plaintext body bytes
	DefaultMessageTTL = 3600     // seconds an undelivered message is kept
	MaxMessageTTL     = 7 * 24 * 3600
)

// SealSuite names the one HPKE suite messages are sealed with.
const SealSuite = "DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305"

// MessageSealInfo is HPKE's info parameter for sealed message bodies.
const MessageSealInfo = "iotledger-message-v1"

// EncryptionKeySize is the size of an enrolled encryption key: a raw X25519
// public key.
const EncryptionKeySize = 32

// MessagePayload is what a device signs to message another device. Exactly
// one of Body (plaintext JSON) and Sealed is set.
type MessagePayload struct {
	From   string          `json:"from"`
	To     string          `json:"to"`
	ID     string          `json:"id"`            // chosen by the sender, unique among its messages
	Ts     int64           `json:"ts"`            // sender clock, Unix ms
	TTL    int64           `json:"ttl,omitempty"` // seconds to keep it for an offline recipient (default DefaultMessageTTL)
	Body   json.RawMessage `json:"body,omitempty"`
	Sealed *Sealed         `json:"sealed,omitempty"`
}

// Sealed is a body sealed to the recipient's encryption key.
type Sealed struct {
	Suite string `json:"suite"` // SealSuite
	Enc   []byte `json:"enc"`   // HPKE encapsulated key
	CT    []byte `json:"ct"`    // ciphertext of the body
}

// DeviceMessage is a decoded, structurally valid message envelope; its
// signature is checked with Verify.
type DeviceMessage struct {
	MessagePayload
	Raw       []byte
	Signature []byte
}

// ParseMessage decodes and validates a message envelope strictly.
func ParseMessage(env Envelope) (*DeviceMessage, error) {
	if len(env.Payload) == 0 || len(env.Payload) > MaxMessageBytes {
		return nil, invalid("p", "message payload must be 1..%d bytes, got %d", MaxMessageBytes, len(env.Payload))
	}
	if len(env.Signature) == 0 || len(env.Signature) > MaxSignatureBytes {
		return nil, invalid("s", "signature must be 1..%d bytes, got %d", MaxSignatureBytes, len(env.Signature))
	}
	var p MessagePayload
	if err := DecodeStrict(env.Payload, &p); err != nil {
		return nil, invalid("p", "message payload is not valid message JSON: %v", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &DeviceMessage{MessagePayload: p, Raw: env.Payload, Signature: env.Signature}, nil
}

// Validate checks a message payload's fields.
func (p MessagePayload) Validate() error {
	for _, f := range [...]struct{ field, id string }{{"from", p.From}, {"to", p.To}, {"id", p.ID}} {
		if err := ValidateID(f.field, f.id); err != nil {
			return err
		}
	}
	if p.From == p.To {
		return invalid("to", "a device does not message itself")
	}
	if p.Ts <= 0 {
		return invalid("ts", "must be Unix milliseconds > 0")
	}
	if p.TTL < 0 || p.TTL > MaxMessageTTL {
		return invalid("ttl", "must be 0..%d seconds (0 means %d)", MaxMessageTTL, DefaultMessageTTL)
	}
	switch {
	case (len(p.Body) == 0) == (p.Sealed == nil):
		return invalid("body", "exactly one of body and sealed is required")
	case p.Sealed != nil:
		if p.Sealed.Suite != SealSuite {
			return invalid("sealed.suite", "must be %q", SealSuite)
		}
		if len(p.Sealed.Enc) != EncryptionKeySize {
			return invalid("sealed.enc", "must be %d bytes (an X25519 encapsulated key)", EncryptionKeySize)
		}
		if len(p.Sealed.CT) == 0 || len(p.Sealed.CT) > MaxMessageBody+16 {
			return invalid("sealed.ct", "must be 1..%d bytes", MaxMessageBody+16)
		}
	case len(p.Body) > MaxMessageBody:
		return invalid("body", "is %d bytes, the limit is %d", len(p.Body), MaxMessageBody)
	}
	return nil
}

// Lifetime is the message's TTL in seconds, its default applied.
func (p MessagePayload) Lifetime() int64 {
	if p.TTL == 0 {
		return DefaultMessageTTL
	}
	return p.TTL
}

// Verify checks the message's signature with the sender's enrolled key.
func (m *DeviceMessage) Verify(key *PublicKey) error {
	return key.Verify(Message(DomainMessage, m.Raw), m.Signature)
}

// SignMessage signs a message payload with the sender's key.
func (s *Signer) SignMessage(p MessagePayload) (Envelope, error) {
	if err := p.Validate(); err != nil {
		return Envelope{}, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, err
	}
	sig, err := s.Sign(DomainMessage, b)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Payload: b, Signature: sig}, nil
}

// ParseEncryptionKey checks an enrolled encryption key: a raw X25519 public
// key.
func ParseEncryptionKey(raw []byte) (*ecdh.PublicKey, error) {
	if len(raw) != EncryptionKeySize {
		return nil, fmt.Errorf("encryption key must be %d bytes (a raw X25519 public key), got %d", EncryptionKeySize, len(raw))
	}
	k, err := ecdh.X25519().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	return k, nil
}

// GenerateEncryptionKey makes a device's encryption key pair; enroll the
// public half (PublicKey().Bytes()).
func GenerateEncryptionKey() (*ecdh.PrivateKey, error) {
	return ecdh.X25519().GenerateKey(rand.Reader)
}

func sealAAD(from, to, id string) []byte {
	return []byte(from + "\n" + to + "\n" + id)
}

// Seal seals body to the recipient's encryption key for the message from →
// to with the given id.
func Seal(recipient *ecdh.PublicKey, from, to, id string, body []byte) (*Sealed, error) {
	if len(body) == 0 || len(body) > MaxMessageBody {
		return nil, fmt.Errorf("body must be 1..%d bytes, got %d", MaxMessageBody, len(body))
	}
	pk, err := hpke.NewDHKEMPublicKey(recipient)
	if err != nil {
		return nil, err
	}
	enc, sender, err := hpke.NewSender(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(MessageSealInfo))
	if err != nil {
		return nil, err
	}
	ct, err := sender.Seal(sealAAD(from, to, id), body)
	if err != nil {
		return nil, err
	}
	return &Sealed{Suite: SealSuite, Enc: enc, CT: ct}, nil
}

// Open opens a sealed message body with the recipient's private key.
func (p MessagePayload) Open(key *ecdh.PrivateKey) ([]byte, error) {
	if p.Sealed == nil {
		return nil, invalid("sealed", "the message is not sealed")
	}
	k, err := hpke.NewDHKEMPrivateKey(key)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(p.Sealed.Enc, k, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(MessageSealInfo))
	if err != nil {
		return nil, fmt.Errorf("opening the message: %w", err)
	}
	body, err := r.Open(sealAAD(p.From, p.To, p.ID), p.Sealed.CT)
	if err != nil {
		return nil, fmt.Errorf("opening the message: %w", err)
	}
	return body, nil
}
