package device

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// SendMessage signs a message to another device (docs/protocol.md §6) and
// publishes it to the recipient's inbox. With sealTo (the recipient's
// enrolled encryption key) the body is sealed so that no hub or ledger
// member can read it; without, body must be JSON. id is the sender's own
// (unique among its messages); ttl is how long, in seconds, the ledger keeps
// it for a recipient that is offline or on another hub (0: an hour).
func (d *Device) SendMessage(ctx context.Context, to, id string, body []byte, sealTo *ecdh.PublicKey, ttl int64) error {
	p := reading.MessagePayload{From: d.cfg.ID, To: to, ID: id, Ts: d.cfg.Now().UnixMilli(), TTL: ttl}
	if sealTo != nil {
		sealed, err := reading.Seal(sealTo, p.From, to, id, body)
		if err != nil {
			return err
		}
		p.Sealed = sealed
	} else {
		if !json.Valid(body) {
			return errors.New("an unsealed message body must be JSON")
		}
		p.Body = json.RawMessage(body)
	}
	env, err := d.cfg.Signer.SignMessage(p)
	if err != nil {
		return err
	}
	return d.SendTo(ctx, to, env.Encode())
}

// OpenMessage reads a signed message a hub delivered (the InboxMessage the
// device's OnInbox handler got, its hub signature already checked): the
// sender's signature must verify with sender (its enrolled key), the
// message must be from the device the hub authenticated and to this one,
// and a sealed body is opened with key. It returns the message and its
// body.
func OpenMessage(in wire.InboxMessage, self string, sender *reading.PublicKey, key *ecdh.PrivateKey) (*reading.DeviceMessage, []byte, error) {
	var env reading.Envelope
	if err := reading.DecodeStrict(in.Payload, &env); err != nil {
		return nil, nil, fmt.Errorf("not a signed message: %w", err)
	}
	m, err := reading.ParseMessage(env)
	if err != nil {
		return nil, nil, err
	}
	if m.From != in.From || m.To != self || in.To != self {
		return nil, nil, fmt.Errorf("the message is from %s to %s, relayed from %s to %s", m.From, m.To, in.From, in.To)
	}
	if err := m.Verify(sender); err != nil {
		return nil, nil, fmt.Errorf("the message's signature is not %s's: %w", m.From, err)
	}
	if m.Sealed == nil {
		return m, m.Body, nil
	}
	if key == nil {
		return nil, nil, errors.New("the message is sealed and no encryption key was given")
	}
	body, err := m.Open(key)
	if err != nil {
		return nil, nil, err
	}
	return m, body, nil
}
