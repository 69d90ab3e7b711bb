package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// runEvents follows the ledger's events, reconnecting when the stream ends.
func (h *Hub) runEvents(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := h.cfg.Events.LedgerEvents(ctx)
		if err != nil {
			h.log.Warn("event stream failed; retrying", "err", err)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 500 * time.Millisecond
		for ev := range ch {
			h.handleEvent(ctx, ev)
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
	}
}

// handleEvent applies one chaincode event: it drops stale cache entries,
// disconnects devices that may no longer connect, and delivers commands.
func (h *Hub) handleEvent(ctx context.Context, ev api.Event) {
	switch ev.Type {
	case api.EventPolicyChanged:
		h.dir.invalidateAll()
	case api.EventDeviceEnrolled, api.EventDeviceKeyRotated, api.EventDeviceUpdated, api.EventDeviceTransfer, api.EventDeviceStatus:
		for _, d := range ev.Devices {
			h.dir.invalidate(d)
		}
	}
	for _, sc := range ev.StatusChanges {
		h.dir.invalidate(sc.Device)
		if sc.To != api.StatusActive {
			h.disconnect(sc.Device, string(sc.To))
		}
	}
	for _, d := range ev.Revocations {
		h.dir.invalidate(d)
		h.disconnect(d, "revoked")
	}
	h.messageEvents(ctx, ev)
	for _, c := range ev.Commands {
		if c.Status != api.CommandPending || !h.ready(c.Device) {
			continue
		}
		// Marking delivered is a ledger transaction: do not let it hold up
		// the events behind it (a revocation must act at once).
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.deliverCommand(ctx, c)
		}()
	}
}

// disconnect drops a device's connection at once. It must authenticate
// again, which the ledger's new status refuses.
func (h *Hub) disconnect(device, status string) {
	h.sessMu.Lock()
	s, ok := h.sessions[device]
	if !ok {
		// The device may be between its authentication and its session
		// (CONNACK on the way): remember, so that the session is dropped
		// as soon as it is established (OnSessionEstablished).
		if h.dropOnArrival == nil {
			h.dropOnArrival = map[string]dropMark{}
		}
		now := h.cfg.Now()
		if len(h.dropOnArrival) >= 1024 { // keep it to the recent ones
			for d, m := range h.dropOnArrival {
				if now.Sub(m.at) >= dropOnArrivalWindow {
					delete(h.dropOnArrival, d)
				}
			}
		}
		h.dropOnArrival[device] = dropMark{status: status, at: now}
	}
	h.sessMu.Unlock()
	if !ok {
		return
	}
	h.metrics.disconnects.WithLabelValues(status).Inc()
	h.log.Warn("disconnecting device", "device", device, "status", status)
	_ = h.broker.DisconnectClient(s.client, packets.Code{Code: packets.ErrNotAuthorized.Code, Reason: "device " + status + " on the ledger"})
}

// ready reports whether a device is connected here and subscribed to its commands.
func (h *Hub) ready(device string) bool {
	return h.readyConnection(device) != nil
}

// readyConnection is the device's connection if it is subscribed to its
// commands, else nil.
func (h *Hub) readyConnection(device string) *mqtt.Client {
	h.sessMu.Lock()
	defer h.sessMu.Unlock()
	if s, ok := h.sessions[device]; ok && s.subscribed {
		return s.client
	}
	return nil
}

// deliverCommand publishes a command that is pending, or delivered and not
// yet completed, to its device if the device is connected here and
// subscribed, once per connection. A pending command is then marked
// delivered on the ledger; a delivered one is sent again as it is (at least
// once: the device acts on a command id once), which changes nothing on the
// ledger, where only a pending command can be marked delivered.
func (h *Hub) deliverCommand(ctx context.Context, c api.Command) {
	cl := h.readyConnection(c.Device)
	if cl == nil {
		return
	}
	if c.Status != api.CommandPending && c.Status != api.CommandDelivered {
		return
	}
	if !c.ExpiresAt.IsZero() && h.cfg.Now().After(c.ExpiresAt) {
		return
	}
	h.cmdMu.Lock()
	if h.delivered[c.ID] == cl {
		h.cmdMu.Unlock()
		return
	}
	h.delivered[c.ID] = cl
	h.cmdMu.Unlock()
	b, err := json.Marshal(c)
	if err == nil {
		b, err = h.sign(wire.DomainCommand, b)
	}
	if err != nil {
		h.log.Error("encoding command", "command", c.ID, "device", c.Device, "err", err)
		h.forgetDelivery(c.ID)
		return
	}
	if err := h.broker.Publish(wire.Topic(c.Device, wire.KindCommands), b, false, 1); err != nil {
		h.log.Error("publishing command", "command", c.ID, "device", c.Device, "err", err)
		h.forgetDelivery(c.ID)
		return
	}
	if c.Status == api.CommandDelivered {
		h.metrics.commandsRedelivered.Inc()
		h.log.Info("command sent again (delivered, not acked)", "command", c.ID, "device", c.Device, "name", c.Name)
		return
	}
	if _, err := h.cfg.Ledger.MarkCommandDelivered(ctx, c.ID); err != nil {
		// The device has it; an ack will complete it anyway.
		h.log.Warn("command published but not marked delivered", "command", c.ID, "device", c.Device, "err", err)
		return
	}
	h.metrics.commandsDelivered.Inc()
	h.log.Info("command delivered", "command", c.ID, "device", c.Device, "name", c.Name)
}

func (h *Hub) forgetDelivery(id string) {
	h.cmdMu.Lock()
	delete(h.delivered, id)
	h.cmdMu.Unlock()
}

// forgetDeliveries drops what was sent on a connection that has ended: its
// device gets those commands again on its next connection if it has not
// completed them.
func (h *Hub) forgetDeliveries(cl *mqtt.Client) {
	h.cmdMu.Lock()
	defer h.cmdMu.Unlock()
	for id, on := range h.delivered {
		if on == cl {
			delete(h.delivered, id)
		}
	}
}

// deliverOutstanding runs when a device subscribes to its commands topic:
// it sends every command the device has not completed, oldest first: those
// issued while it was away (pending) and those sent before, on an earlier
// connection or by an earlier run of the hub, that it never acked
// (delivered). Expired ones are not sent.
func (h *Hub) deliverOutstanding(ctx context.Context, device string) {
	var cmds []api.Command
	for _, status := range []api.CommandStatus{api.CommandPending, api.CommandDelivered} {
		q := api.CommandQuery{Device: device, Status: status, PageSize: 100}
		for {
			cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
			page, err := h.cfg.Ledger.ListCommands(cctx, q)
			cancel()
			if err != nil {
				h.log.Warn("listing outstanding commands", "device", device, "status", status, "err", err)
				return
			}
			cmds = append(cmds, page.Commands...)
			if page.Bookmark == "" || len(page.Commands) == 0 {
				break
			}
			q.Bookmark = page.Bookmark
		}
	}
	slices.SortStableFunc(cmds, func(a, b api.Command) int {
		if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, c := range cmds {
		h.deliverCommand(ctx, c)
	}
}

func errorForAck(reason string, a AckRecord, err error) wire.ErrorMessage {
	return wire.ErrorMessage{Reason: reason, Message: err.Error(), Topic: wire.Topic(a.Device, wire.KindAcks), Command: a.Command}
}
