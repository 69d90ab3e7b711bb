package hub

import (
	"context"
	"encoding/json"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire"
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
	h.sessMu.Lock()
	defer h.sessMu.Unlock()
	s, ok := h.sessions[device]
	return ok && s.subscribed
}

// deliverCommand publishes a pending command to its device if the device
// is connected here and subscribed, then marks it delivered on the ledger.
func (h *Hub) deliverCommand(ctx context.Context, c api.Command) {
	if !h.ready(c.Device) {
		return
	}
	now := h.cfg.Now()
	if !c.ExpiresAt.IsZero() && now.After(c.ExpiresAt) {
		return
	}
	h.cmdMu.Lock()
	if _, done := h.delivered[c.ID]; done {
		h.cmdMu.Unlock()
		return
	}
	h.delivered[c.ID] = now
	for id, at := range h.delivered { // keep the set small
		if now.Sub(at) > time.Hour {
			delete(h.delivered, id)
		}
	}
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

// deliverPending delivers the commands that waited on the ledger while the
// device was away.
func (h *Hub) deliverPending(ctx context.Context, device string) {
	q := api.CommandQuery{Device: device, Status: api.CommandPending, PageSize: 100}
	for {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
		page, err := h.cfg.Ledger.ListCommands(cctx, q)
		cancel()
		if err != nil {
			h.log.Warn("listing pending commands", "device", device, "err", err)
			return
		}
		for _, c := range page.Commands {
			h.deliverCommand(ctx, c)
		}
		if page.Bookmark == "" || len(page.Commands) == 0 {
			return
		}
		q.Bookmark = page.Bookmark
	}
}

func errorForAck(reason string, a AckRecord, err error) wire.ErrorMessage {
	return wire.ErrorMessage{Reason: reason, Message: err.Error(), Topic: wire.Topic(a.Device, wire.KindAcks), Command: a.Command}
}
