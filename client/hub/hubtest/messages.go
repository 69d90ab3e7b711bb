package hubtest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// The message contract's rules, as the hub relies on them: the sender's
// signature must verify with its enrolled key, it must be allowed to
// message the recipient (Messaging), one refusal for unknown and forbidden
// recipients, and a waiting message is delivered once.

func messageKey(to, from, id string) string { return to + "/" + from + "/" + id }

// SendMessage implements the hub's MessageLedger.
func (f *Ledger) SendMessage(_ context.Context, env reading.Envelope) (*api.StoredMessage, error) {
	m, err := reading.ParseMessage(env)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sender, ok := f.devices[m.From]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("device %q is not enrolled", m.From))
	}
	key, err := reading.ParsePublicKey(sender.PublicKey)
	if err != nil || m.Verify(key) != nil {
		return nil, api.Errorf(api.CodeBadSignature, "message "+m.ID+": signature does not verify")
	}
	recipient, ok := f.devices[m.To]
	if !ok || !f.Messaging[[2]string{m.From, m.To}] {
		return nil, api.Errorf(api.CodeAccessDenied, fmt.Sprintf("device %s may not message %s (no such device, or its owner's policies do not allow it)", m.From, m.To))
	}
	if f.messages == nil {
		f.messages = map[string]api.StoredMessage{}
	}
	k := messageKey(m.To, m.From, m.ID)
	if _, dup := f.messages[k]; dup {
		return nil, api.Errorf(api.CodeReplay, "message "+m.ID+" is already waiting")
	}
	now := time.Now().UTC()
	e := env
	sm := api.StoredMessage{From: m.From, To: m.To, ID: m.ID, Owner: recipient.Owner, Envelope: &e,
		SentAt: now, ExpiresAt: now.Add(time.Duration(m.Lifetime()) * time.Second)}
	f.messages[k] = sm
	f.sentMessages++
	select {
	case f.Events <- api.Event{Type: api.EventMessageSent, Devices: []string{m.To}, Messages: []api.StoredMessage{sm}}:
	default:
	}
	return &sm, nil
}

// ListMessages implements the hub's MessageLedger.
func (f *Ledger) ListMessages(_ context.Context, q api.MessageQuery) (*api.MessagePage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	page := &api.MessagePage{Messages: []api.StoredMessage{}}
	for _, m := range f.messages {
		if m.To == q.To {
			page.Messages = append(page.Messages, m)
		}
	}
	sort.Slice(page.Messages, func(i, j int) bool {
		return messageKey(page.Messages[i].To, page.Messages[i].From, page.Messages[i].ID) < messageKey(page.Messages[j].To, page.Messages[j].From, page.Messages[j].ID)
	})
	return page, nil
}

// MarkMessageDelivered implements the hub's MessageLedger.
func (f *Ledger) MarkMessageDelivered(_ context.Context, to, from, id string) (*api.StoredMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := messageKey(to, from, id)
	m, ok := f.messages[k]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("no message %s of %s waits for %s", id, from, to))
	}
	delete(f.messages, k)
	m.Envelope = nil
	return &m, nil
}

// WaitingMessages counts the messages the ledger holds.
func (f *Ledger) WaitingMessages() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.messages)
}

// SentMessages counts SendMessage calls that stored a message.
func (f *Ledger) SentMessages() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sentMessages
}
