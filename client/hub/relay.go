package hub

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Device-to-device messages (docs/protocol.md §6). The ledger's policies
// were checked by the topic ACL (mayPublish). A message goes straight to its
// recipient when it is connected here and subscribed to its inbox; a
// signed message envelope (reading.DeviceMessage) whose recipient is not
// here is relayed through the ledger's message contract, which keeps it for
// the recipient's hubs — of any org — until one of them delivers it or it
// expires. Either way the recipient gets it wrapped in an InboxMessage that
// names the sender the hub authenticated, signed by the delivering hub.

// inboxReady reports whether a device is connected here and subscribed to
// its inbox.
func (h *Hub) inboxReady(device string) bool {
	h.sessMu.Lock()
	defer h.sessMu.Unlock()
	s, ok := h.sessions[device]
	return ok && s.inbox
}

// relayInbox handles a device's publish to another device's inbox.
func (h *Hub) relayInbox(from, to string, pk *packets.Packet) *refusal {
	if len(pk.Payload) > wire.MaxInboxBytes {
		return &refusal{reason: wire.ReasonTooLarge, msg: fmt.Sprintf("inbox messages are limited to %d bytes", wire.MaxInboxBytes)}
	}
	env, msg := parseDeviceMessage(pk.Payload)
	if msg != nil {
		if msg.From != from || msg.To != to {
			return &refusal{reason: wire.ReasonWrongDevice, msg: fmt.Sprintf("the message is from %s to %s, published by %s to %s's inbox", msg.From, msg.To, from, to)}
		}
		if ref := h.checkSigner(from, 0, msg.Verify); ref != nil {
			return ref
		}
	}
	if h.inboxReady(to) {
		pk.Payload = h.stampInbox(from, to, pk.Payload)
		// Authorized and stamped: the hub vouches for it as for its own
		// messages, which is what mayDeliver lets through to the recipient.
		pk.Origin = mqtt.InlineClientId
		h.log.Debug("inbox message delivered here", "from", from, "to", to)
		return nil
	}
	pk.Ignore = true // nobody here to deliver it to
	ml, ok := h.cfg.Ledger.(MessageLedger)
	if msg == nil || !ok {
		return &refusal{reason: wire.ReasonUndeliverable, msg: fmt.Sprintf("%s is not connected to this hub; a signed message (docs/protocol.md §6) is kept for it on the ledger", to)}
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.LedgerTimeout)
	defer cancel()
	kept, err := ml.SendMessage(ctx, env)
	switch code := api.CodeOf(err); {
	case err == nil:
		h.awaitDelivery(*kept)
		h.log.Debug("inbox message relayed through the ledger", "from", from, "to", to, "id", msg.ID)
		return nil
	case code == api.CodeReplay: // kept by an earlier attempt
		return nil
	case code == api.CodeAccessDenied:
		return &refusal{reason: wire.ReasonNotAuthorized, msg: fmt.Sprintf("%s may not message %s (no such device, or its owner's policies do not allow it)", from, to)}
	case code == api.CodeResourceExhausted:
		return &refusal{reason: wire.ReasonUndeliverable, msg: err.Error()}
	case transient(code):
		return &refusal{reason: wire.ReasonUnavailable, msg: "the ledger did not take the message; send it again: " + err.Error()}
	default:
		return &refusal{reason: wire.ReasonLedgerRefused, msg: err.Error()}
	}
}

// parseDeviceMessage reads an inbox payload as a signed device message; nil
// when it is not one (an opaque message, delivered only on this hub).
func parseDeviceMessage(payload []byte) (reading.Envelope, *reading.DeviceMessage) {
	env, err := reading.ParseEnvelope(payload)
	if err != nil {
		return reading.Envelope{}, nil
	}
	m, err := reading.ParseMessage(env)
	if err != nil {
		return reading.Envelope{}, nil
	}
	return env, m
}

// deliverStored hands a message the ledger kept to its recipient, if it is
// connected here, and marks it delivered.
func (h *Hub) deliverStored(ctx context.Context, m api.StoredMessage) {
	ml, ok := h.cfg.Ledger.(MessageLedger)
	if !ok || m.Envelope == nil || !h.inboxReady(m.To) {
		return
	}
	b := h.stampInbox(m.From, m.To, m.Envelope.Encode())
	if err := h.broker.Publish(wire.Topic(m.To, wire.KindInbox), b, false, 1); err != nil {
		h.log.Error("publishing a kept message", "from", m.From, "to", m.To, "id", m.ID, "err", err)
		return
	}
	if _, err := ml.MarkMessageDelivered(ctx, m.To, m.From, m.ID); err != nil {
		// Published; another hub may have marked it first, or the ledger
		// will hand it out again (the recipient acts on (from, id) once).
		h.log.Warn("kept message delivered but not marked", "from", m.From, "to", m.To, "id", m.ID, "err", err)
		return
	}
	h.log.Info("kept message delivered", "from", m.From, "to", m.To, "id", m.ID)
}

// deliverWaiting hands a device that subscribed to its inbox the messages
// the ledger kept for it.
func (h *Hub) deliverWaiting(ctx context.Context, device string) {
	ml, ok := h.cfg.Ledger.(MessageLedger)
	if !ok {
		return
	}
	q := api.MessageQuery{To: device, PageSize: 100}
	for range 10 { // at most 1,000 messages a subscription
		cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
		page, err := ml.ListMessages(cctx, q)
		cancel()
		if err != nil {
			h.log.Warn("listing kept messages", "device", device, "err", err)
			return
		}
		for _, m := range page.Messages {
			h.deliverStored(ctx, m)
		}
		if page.Bookmark == "" || len(page.Messages) == 0 {
			return
		}
		q.Bookmark = page.Bookmark
	}
}

// maxAwaited bounds the relayed messages a hub watches for delivery.
const maxAwaited = 10000

// awaitDelivery remembers a message this hub relayed, to tell its sender if
// it expires before a message.delivered event arrives (in memory: a hub
// restarted meanwhile forgets).
func (h *Hub) awaitDelivery(m api.StoredMessage) {
	k := m.To + "/" + m.From + "/" + m.ID
	h.cmdMu.Lock()
	defer h.cmdMu.Unlock()
	if h.awaited == nil {
		h.awaited = map[string]*time.Timer{}
	}
	if len(h.awaited) >= maxAwaited {
		return
	}
	h.awaited[k] = time.AfterFunc(time.Until(m.ExpiresAt), func() {
		h.cmdMu.Lock()
		_, still := h.awaited[k]
		delete(h.awaited, k)
		h.cmdMu.Unlock()
		if still {
			h.sendError(m.From, wire.ErrorMessage{Reason: wire.ReasonUndeliverable, Topic: wire.Topic(m.To, wire.KindInbox),
				Message: fmt.Sprintf("message %s to %s expired at %s before it was delivered", m.ID, m.To, m.ExpiresAt.Format(time.RFC3339))})
		}
	})
}

// stopAwaiting stops watching a relayed message.
func (h *Hub) stopAwaiting(m api.StoredMessage) {
	k := m.To + "/" + m.From + "/" + m.ID
	h.cmdMu.Lock()
	defer h.cmdMu.Unlock()
	if t, ok := h.awaited[k]; ok {
		t.Stop()
		delete(h.awaited, k)
	}
}

// messageEvents acts on the message contract's events: a message kept for
// a device connected here is delivered, a delivered one is no longer
// watched, and the sender of one that expired undelivered is told, if it is
// connected here.
func (h *Hub) messageEvents(ctx context.Context, ev api.Event) {
	for _, m := range ev.Messages {
		switch ev.Type {
		case api.EventMessageSent:
			if h.inboxReady(m.To) {
				h.wg.Add(1)
				go func() {
					defer h.wg.Done()
					h.deliverStored(ctx, m)
				}()
			}
		case api.EventMessageDelivered:
			h.stopAwaiting(m)
		case api.EventMessageExpired:
			h.stopAwaiting(m)
			h.sendError(m.From, wire.ErrorMessage{Reason: wire.ReasonUndeliverable, Topic: wire.Topic(m.To, wire.KindInbox),
				Message: fmt.Sprintf("message %s to %s expired at %s before it was delivered", m.ID, m.To, m.ExpiresAt.Format(time.RFC3339))})
		}
	}
}
