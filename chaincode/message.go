package chaincode

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// maxPendingMessages bounds the messages the ledger holds for one device.
const maxPendingMessages = 100

// kindMessage keys the messages waiting for a device:
// msg~<to>~<from>~<id> → api.StoredMessage.
const kindMessage = "msg"

// MessageContract relays device-to-device messages between hubs — of one
// org or of several — and keeps them for recipients that are offline,
// until they are delivered or expire. A message is signed by its sender
// (reading.DomainMessage) and may be sealed to the recipient's encryption
// key, so the ledger holds it without being able to read it. Transactions
// are addressed as "message:<Tx>".
type MessageContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *MessageContract) GetEvaluateTransactions() []string {
	return []string{"List"}
}

// Send stores a device's signed message for its recipient. The caller is a
// hub that may telemetry:write the sender; the sender must be allowed
// device:message on the recipient by the recipient owner's policies.
func (c *MessageContract) Send(ctx contractapi.TransactionContextInterface, envelope string) (string, error) {
	env, err := reading.ParseEnvelope([]byte(envelope))
	if err != nil {
		return "", invalidArg(err)
	}
	m, err := reading.ParseMessage(env)
	if err != nil {
		return "", invalidArg(err)
	}
	return submit(c.e, ctx, func(t *txn) (*api.StoredMessage, *api.Event, error) { return t.sendMessage(env, m) })
}

// List returns one page of the messages waiting for a device, for its
// owner's hubs (command:deliver on the recipient).
func (c *MessageContract) List(ctx contractapi.TransactionContextInterface, query string) (string, error) {
	var q api.MessageQuery
	if err := decodeArg("message query", query, &q); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.MessagePage, error) { return t.listMessages(q) })
}

// MarkDelivered records that a hub handed a waiting message to its
// recipient, and forgets it.
func (c *MessageContract) MarkDelivered(ctx contractapi.TransactionContextInterface, to, from, id string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.StoredMessage, *api.Event, error) {
		return t.closeMessage(to, from, id, api.EventMessageDelivered)
	})
}

// Expire forgets a message whose time has passed; its event tells the
// sender's hub that it was not delivered.
func (c *MessageContract) Expire(ctx contractapi.TransactionContextInterface, to, from, id string) (string, error) {
	return submit(c.e, ctx, func(t *txn) (*api.StoredMessage, *api.Event, error) {
		return t.closeMessage(to, from, id, api.EventMessageExpired)
	})
}

// refuseMessage is the one refusal of a message whose recipient does not
// exist, is retired, or may not be messaged by the sender: the answer does
// not say which, so nobody learns which device ids exist.
func refuseMessage(from, to string) error {
	return api.Errorf(api.CodeAccessDenied, fmt.Sprintf("device %s may not message %s (no such device, or its owner's policies do not allow it)", from, to))
}

func (t *txn) sendMessage(env reading.Envelope, m *reading.DeviceMessage) (*api.StoredMessage, *api.Event, error) {
	sender, err := t.device(m.From)
	if err != nil {
		return nil, nil, err
	}
	if err := t.authorize(api.ActionTelemetryWrite, deviceResource(sender)); err != nil {
		return nil, nil, err
	}
	if sender.Status != api.StatusActive {
		return nil, nil, api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("device %s is %s, only active devices send messages", sender.ID, sender.Status))
	}
	key, err := t.deviceKey(sender)
	if err != nil {
		return nil, nil, err
	}
	if err := m.Verify(key); err != nil {
		return nil, nil, api.Errorf(api.CodeBadSignature, fmt.Sprintf("message %s of %s: signature does not verify with the key enrolled for the device (key version %d)", m.ID, m.From, sender.KeyVersion))
	}
	recipient, err := t.findDevice(m.To)
	if err != nil && api.CodeOf(err) != api.CodeInconsistentRecord {
		return nil, nil, err
	}
	if recipient == nil || final(recipient.Status) {
		return nil, nil, refuseMessage(m.From, m.To)
	}
	dec, err := t.decide(policy.DevicePrincipal(*sender), api.ActionDeviceMessage, deviceResource(recipient), nil)
	if err != nil {
		return nil, nil, err
	}
	if !dec.Allowed {
		return nil, nil, refuseMessage(m.From, m.To)
	}
	k, err := compositeKey(kindMessage, m.To, m.From, m.ID)
	if err != nil {
		return nil, nil, err
	}
	if old, err := t.l.GetState(k); err != nil {
		return nil, nil, internal("reading world state", err)
	} else if old != nil {
		return nil, nil, api.Errorf(api.CodeReplay, fmt.Sprintf("message %s of %s to %s is already waiting", m.ID, m.From, m.To))
	}
	if err := t.checkMailbox(m.To); err != nil {
		return nil, nil, err
	}
	e := env
	sm := &api.StoredMessage{
		From: m.From, To: m.To, ID: m.ID, Owner: recipient.Owner, Envelope: &e,
		SentAt: t.now, ExpiresAt: t.now.Add(time.Duration(m.Lifetime()) * time.Second), RelayedBy: t.caller.ClientID,
	}
	if err := putJSON(t.l, k, sm); err != nil {
		return nil, nil, err
	}
	// Only the recipient's org delivers or expires what waits for it.
	if err := restrictTo(t.l, []string{recipient.Owner}, k); err != nil {
		return nil, nil, err
	}
	return sm, &api.Event{Type: api.EventMessageSent, Devices: []string{m.To}, Messages: []api.StoredMessage{*sm}}, nil
}

// checkMailbox refuses a message when maxPendingMessages already wait for
// the recipient (a bounded read of at most one more key than the bound).
func (t *txn) checkMailbox(to string) error {
	it, err := t.l.GetStateByPartialCompositeKey(kindMessage, []string{to})
	if err != nil {
		return internal("querying messages", err)
	}
	defer closeQuery(it)
	n := 0
	for it.HasNext() && n < maxPendingMessages {
		if _, err := it.Next(); err != nil {
			return internal("iterating messages", err)
		}
		n++
	}
	if n >= maxPendingMessages {
		return api.Errorf(api.CodeResourceExhausted, fmt.Sprintf("%d messages already wait for %s, the limit per device: it must take some first", maxPendingMessages, to))
	}
	return nil
}

// recipientOfOwnOrg loads a message's recipient for one of its owner's hubs.
func (t *txn) recipientOfOwnOrg(to string) (*api.Device, error) {
	d, err := t.device(to)
	if err != nil {
		return nil, err
	}
	if err := t.authorize(api.ActionCommandDeliver, deviceResource(d)); err != nil {
		return nil, err
	}
	return d, nil
}

func (t *txn) listMessages(q api.MessageQuery) (*api.MessagePage, error) {
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	d, err := t.recipientOfOwnOrg(q.To)
	if err != nil {
		return nil, err
	}
	kvs, bookmark, err := scanPage(t.l, kindMessage, []string{d.ID}, size, q.Bookmark)
	if err != nil {
		return nil, err
	}
	page := &api.MessagePage{Messages: []api.StoredMessage{}, Bookmark: bookmark}
	for _, e := range kvs {
		var m api.StoredMessage
		if err := json.Unmarshal(e.Value, &m); err != nil {
			return nil, inconsistent("message record "+readableKey(e.Key), "cannot be decoded: "+err.Error())
		}
		if t.now.Before(m.ExpiresAt) {
			page.Messages = append(page.Messages, m)
		}
	}
	return page, nil
}

// closeMessage forgets a waiting message as delivered (before it expires)
// or expired (after).
func (t *txn) closeMessage(to, from, id, how string) (*api.StoredMessage, *api.Event, error) {
	for _, f := range [...]struct{ field, v string }{{"to", to}, {"from", from}, {"id", id}} {
		if err := reading.ValidateID(f.field, f.v); err != nil {
			return nil, nil, invalidArg(err)
		}
	}
	if _, err := t.recipientOfOwnOrg(to); err != nil {
		return nil, nil, err
	}
	k, err := compositeKey(kindMessage, to, from, id)
	if err != nil {
		return nil, nil, err
	}
	var m api.StoredMessage
	ok, err := getJSON(t.l, k, &m)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("no message %s of %s waits for %s", id, from, to))
	}
	expired := !t.now.Before(m.ExpiresAt)
	switch {
	case how == api.EventMessageDelivered && expired:
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("message %s of %s expired at %s: call message:Expire", id, from, m.ExpiresAt.Format(time.RFC3339)))
	case how == api.EventMessageExpired && !expired:
		return nil, nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("message %s of %s expires at %s, it is still valid at the transaction time %s", id, from,
			m.ExpiresAt.Format(time.RFC3339), t.now.Format(time.RFC3339)))
	}
	if err := del(t.l, k); err != nil {
		return nil, nil, err
	}
	note := m
	note.Envelope = nil // the event says what happened, not the message again
	return &note, &api.Event{Type: how, Devices: []string{to, from}, Messages: []api.StoredMessage{note}}, nil
}
