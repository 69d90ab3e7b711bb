package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// maxEnvelopeBytes bounds a telemetry or ack message: a maximal payload in
// base64 plus a signature and the JSON around them.
const maxEnvelopeBytes = reading.MaxPayloadBytes*4/3 + reading.MaxSignatureBytes*2 + 64

// brokerHook plugs the hub into mochi's broker.
type brokerHook struct {
	mqtt.HookBase
	h *Hub
}

func (b *brokerHook) ID() string { return "iotledger-hub" }

func (b *brokerHook) Provides(hook byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablished, mqtt.OnACLCheck, mqtt.OnPublish,
		mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnDisconnect,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, // conformance.go
	}, []byte{hook})
}

// refusal is why the hub refused something a device sent.
type refusal struct {
	reason string // wire.Reason*
	msg    string
	seq    uint64
	cmd    string
}

func (r *refusal) Error() string { return r.reason + ": " + r.msg }

// mqttCode maps a refusal to an MQTT 5 PUBACK reason code.
func (r *refusal) mqttCode() packets.Code {
	code := packets.ErrNotAuthorized.Code
	switch r.reason {
	case wire.ReasonMalformed:
		code = packets.ErrPayloadFormatInvalid.Code
	case wire.ReasonReplay, wire.ReasonTooLarge, wire.ReasonEnvelopeTooLarge, wire.ReasonUnknownCommand:
		code = packets.ErrImplementationSpecificError.Code
	case wire.ReasonUnavailable:
		code = packets.ErrUnspecifiedError.Code
	case wire.ReasonUndeliverable:
		code = packets.CodeNoMatchingSubscribers.Code // taken, and delivered to nobody
	}
	return packets.Code{Code: code, Reason: r.Error()}
}

// authFailure is why a connection was refused.
type authFailure struct{ reason, msg string }

// connackCode is the MQTT 5 CONNACK reason code of a refused connection
// (OnPacketEncode gives 3.1.1 clients the 3.1.1 return code). Only the
// class of the refusal is on the wire: a bad token, an authenticated device
// that may not connect, a will, the hub's own trouble; the reason is in the
// hub's log and metrics.
func (f *authFailure) connackCode() packets.Code {
	switch f.reason {
	case "client_id_mismatch":
		return packets.ErrClientIdentifierNotValid // 3.1.1: 0x02 identifier rejected
	case "device_inactive", "hub_not_authorized":
		return packets.ErrNotAuthorized // 3.1.1: 0x05 not authorized
	case "will_refused":
		// 0x90 is CONNACK's "the Will Topic Name is not malformed, but is
		// not accepted by this Server". 3.1.1: 0x05 not authorized.
		return packets.Code{Code: packets.ErrTopicNameInvalid.Code, Reason: "wills are not accepted by this hub: connect without a will"}
	case "ledger_unavailable":
		return packets.ErrServerUnavailable // 3.1.1: 0x03 server unavailable
	}
	// Anything else (busy included) is answered as a token that did not
	// get the device in.
	return packets.ErrBadUsernameOrPassword // 3.1.1: 0x04 bad user name or password
}

// OnConnectAuthenticate authenticates a device and refuses a will. The
// broker would answer any refusal with 0x86 (3.1.1: 0x05), so the hub
// writes its own CONNACK and closes the connection first.
func (b *brokerHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	h := b.h
	device := string(pk.Connect.Username)
	f := h.authenticate(cl.ID, device, pk.Connect.Password)
	if topic, ok := requestedWill(pk); ok && f == nil {
		f = &authFailure{"will_refused", fmt.Sprintf("a will on %q: the hub accepts no wills", topic)}
	}
	if f == nil {
		return true
	}
	h.metrics.authFailures.WithLabelValues(f.reason).Inc()
	h.log.Warn("device refused", "device", device, "client", cl.ID, "remote", cl.Net.Remote, "reason", f.reason, "detail", f.msg)
	code := f.connackCode()
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code.Code, Properties: packets.Properties{ReasonString: code.Reason}}
	if err := cl.WritePacket(ack); err != nil {
		h.log.Debug("refusal not sent", "device", device, "err", err)
	}
	cl.Stop(code) // the broker's own CONNACK then finds the connection closed
	return false
}

// OnSessionEstablished records a connected device once its CONNACK is sent
// (from here on, OnDisconnect is sure to follow).
func (b *brokerHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h := b.h
	device := string(cl.Properties.Username)
	h.sessMu.Lock()
	h.sessions[device] = &session{client: cl}
	mark, drop := h.dropOnArrival[device]
	delete(h.dropOnArrival, device)
	h.sessMu.Unlock()
	h.log.Info("device connected", "device", device, "remote", cl.Net.Remote, "mqtt", cl.Properties.ProtocolVersion)
	if drop && h.cfg.Now().Sub(mark.at) < dropOnArrivalWindow {
		// Suspended or revoked while it was connecting.
		h.disconnect(device, mark.status)
	}
}

// authenticate checks a device's connect token against its enrolled key.
func (h *Hub) authenticate(clientID, device string, password []byte) *authFailure {
	if err := reading.ValidateID("username", device); err != nil {
		return &authFailure{"malformed", err.Error()}
	}
	if device == mqtt.InlineClientId {
		// The broker's own client goes by this id; a device of that name
		// would take its session over.
		return &authFailure{"reserved_id", fmt.Sprintf("device id %q is reserved by the hub's broker", device)}
	}
	if clientID != device {
		return &authFailure{"client_id_mismatch", fmt.Sprintf("client id %q must equal the device id", clientID)}
	}
	tok, err := wire.ParseToken(string(password))
	if err != nil {
		return &authFailure{"malformed", err.Error()}
	}
	now := h.cfg.Now()
	if d := now.Sub(tok.Time()); d > h.cfg.ClockSkew || d < -h.cfg.ClockSkew {
		return &authFailure{"stale_token", fmt.Sprintf("token time is %s away from the hub clock (allowed ±%s)", d.Round(1e6), h.cfg.ClockSkew)}
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.LedgerTimeout)
	defer cancel()
	info, err := h.dir.lookup(ctx, device)
	if err != nil {
		if api.CodeOf(err) == api.CodeNotFound || api.CodeOf(err) == api.CodeAccessDenied {
			return &authFailure{"unknown_device", err.Error()}
		}
		return &authFailure{"ledger_unavailable", err.Error()}
	}
	if err := tok.Verify(info.key, h.cfg.HubID, device); err != nil {
		return &authFailure{"bad_signature", err.Error()}
	}
	// Authenticated from here on: what follows is whether it may connect,
	// which only the device's key holder learns.
	if info.device.Status != api.StatusActive {
		return &authFailure{"device_inactive", "device status is " + string(info.device.Status)}
	}
	if !info.canWrite {
		return &authFailure{"hub_not_authorized", "this hub may not write telemetry for the device (telemetry:write denied)"}
	}
	// Replay, per-device nonce space and connect rate (limits.go).
	return h.limits.admitToken(device, tok, now)
}

func (b *brokerHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	h := b.h
	device := string(cl.Properties.Username)
	h.sessMu.Lock()
	if s, ok := h.sessions[device]; ok && s.client == cl {
		delete(h.sessions, device)
	}
	h.sessMu.Unlock()
	h.forgetDeliveries(cl)
	if reason := protocolErrorReason(err); reason != "" {
		h.metrics.protocolErrors.WithLabelValues(reason).Inc()
	}
	h.log.Info("device disconnected", "device", device, "err", err)
}

// OnACLCheck is the topic ACL for subscriptions, for every delivery, and
// for an MQTT 5 client's publishes. A 3.1.1 client's publish passes here
// and OnPublish, which checks every publish again, refuses it: MQTT 3.1.1
// has no negative PUBACK, and the broker would close the connection
// (after a DISCONNECT, which 3.1.1 does not have) where the hub
// acknowledges and explains on the errors topic, as for any refusal.
func (b *brokerHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	h := b.h
	device := string(cl.Properties.Username)
	if !write {
		reason, _ := subscriptionRefusal(device, topic) // OnSubscribed reports refused subscriptions
		return reason == ""
	}
	if cl.Properties.ProtocolVersion < 5 {
		return true
	}
	ok, why := h.mayPublish(device, topic)
	if !ok {
		h.refuseTopic(device, topic, why)
	}
	return ok
}

// refuseTopic counts, logs and explains a publish to a topic the device may
// not publish to.
func (h *Hub) refuseTopic(device, topic, why string) {
	h.metrics.aclDenied.WithLabelValues("publish").Inc()
	h.log.Warn("topic refused", "device", device, "topic", topic, "op", "publish", "why", why)
	h.sendError(device, wire.ErrorMessage{Reason: wire.ReasonNotAuthorized, Message: why, Topic: topic})
}

// mayPublish is the topic ACL for publishes: a device publishes its own
// telemetry and acks and, when the ledger allows device:message, other
// devices' inboxes. Nothing else. (What it may subscribe to is
// subscriptionRefusal's.)
func (h *Hub) mayPublish(device, topic string) (bool, string) {
	target, kind, err := wire.ParseTopic(topic)
	if err != nil {
		return false, err.Error()
	}
	switch {
	case kind == wire.KindInbox && target != device:
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.LedgerTimeout)
		defer cancel()
		ok, err := h.dir.mayMessage(ctx, device, target)
		if c := api.CodeOf(err); c != api.CodeNotFound && c != api.CodeAccessDenied && err != nil {
			return false, "could not check device:message on the ledger; try again later"
		}
		if !ok {
			// One answer for an unknown recipient and a forbidden one, so
			// that no device can learn which ids exist.
			return false, fmt.Sprintf("%s may not message %s (no such device, or its owner's policies do not allow it)", device, target)
		}
		return true, ""
	case target != device:
		return false, "devices may only publish to their own topics (or permitted inboxes)"
	case kind == wire.KindTelemetry || kind == wire.KindAcks:
		return true, ""
	}
	return false, fmt.Sprintf("devices may not publish to %s", kind)
}

// OnSubscribed explains each refused filter on the device's errors topic
// and, when the device has subscribed to its commands, sends it every
// command it has not completed (events.go, deliverOutstanding).
func (b *brokerHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	h := b.h
	device := string(cl.Properties.Username)
	for i, f := range pk.Filters {
		if i >= len(codes) {
			break
		}
		if codes[i] >= packets.ErrUnspecifiedError.Code {
			h.reportRefusedSubscription(device, f.Filter, codes[i])
			continue
		}
		// What waits for the device goes out once it listens: outstanding
		// commands on its commands topic, kept messages on its inbox.
		var deliver func(context.Context, string)
		switch f.Filter {
		case wire.Topic(device, wire.KindCommands):
			deliver = h.deliverOutstanding
		case wire.Topic(device, wire.KindInbox):
			deliver = h.deliverWaiting
		default:
			continue
		}
		h.sessMu.Lock()
		s, ok := h.sessions[device]
		ok = ok && s.client == cl
		if ok {
			if f.Filter == wire.Topic(device, wire.KindInbox) {
				s.inbox = true
			} else {
				s.subscribed = true
			}
		}
		h.sessMu.Unlock()
		if ok {
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				deliver(h.ctx, device)
			}()
		}
	}
}

// OnUnsubscribed stops command delivery to a device that left its commands
// topic: a command published to nobody must not be marked delivered.
func (b *brokerHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	h := b.h
	device := string(cl.Properties.Username)
	for _, f := range pk.Filters {
		h.sessMu.Lock()
		if s, ok := h.sessions[device]; ok && s.client == cl {
			switch f.Filter {
			case wire.Topic(device, wire.KindCommands):
				s.subscribed = false
			case wire.Topic(device, wire.KindInbox):
				s.inbox = false
			}
		}
		h.sessMu.Unlock()
	}
}

func (b *brokerHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	h := b.h
	device := string(cl.Properties.Username)
	pk.FixedHeader.Retain = false // device messages are never retained
	// The ACL has checked an MQTT 5 client's topic; a 3.1.1 client's is
	// checked here only (OnACLCheck). Check every publish, whatever the
	// version, so that nothing reaches the broker unauthorized.
	if ok, why := h.mayPublish(device, pk.TopicName); !ok {
		h.refuseTopic(device, pk.TopicName, why)
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			return pk, packets.Code{Code: packets.ErrNotAuthorized.Code, Reason: wire.ReasonNotAuthorized + ": " + why}
		}
		return pk, packets.CodeSuccessIgnore // acknowledged, dropped, explained on the errors topic
	}
	target, kind, err := wire.ParseTopic(pk.TopicName)
	if err != nil { // mayPublish has refused it already; be safe
		return pk, packets.ErrRejectPacket
	}
	var ref *refusal
	switch kind {
	case wire.KindTelemetry:
		ref = h.ingestReading(device, pk.Payload)
		pk.Ignore = true
	case wire.KindAcks:
		ref = h.ingestAck(device, pk.Payload)
		pk.Ignore = true
	case wire.KindInbox:
		ref = h.relayInbox(device, target, &pk)
	default:
		ref = &refusal{reason: wire.ReasonNotAuthorized, msg: "devices may not publish to " + string(kind)}
	}
	if ref == nil {
		return pk, nil
	}
	h.metrics.rejected.WithLabelValues(ref.reason).Inc()
	h.log.Warn("message refused", "device", device, "topic", pk.TopicName, "reason", ref.reason, "detail", ref.msg)
	h.sendError(device, wire.ErrorMessage{Reason: ref.reason, Message: ref.msg, Topic: pk.TopicName, Seq: ref.seq, Command: ref.cmd})
	if ref.reason == wire.ReasonUnavailable {
		// No PUBACK: the device keeps the message and sends it again.
		return pk, packets.ErrRejectPacket
	}
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return pk, ref.mqttCode()
	}
	// MQTT 3.1.1 has no negative PUBACK: acknowledge (so the device does not
	// resend forever), drop, and rely on the errors topic.
	return pk, packets.CodeSuccessIgnore
}

// ingestReading validates a telemetry envelope and stores it durably.
func (h *Hub) ingestReading(device string, payload []byte) *refusal {
	env, ref := parseEnvelope(payload)
	if ref != nil {
		return ref
	}
	r, err := env.Decode()
	if err != nil {
		return &refusal{reason: wire.ReasonMalformed, msg: err.Error()}
	}
	if r.Device != device {
		return &refusal{reason: wire.ReasonWrongDevice, msg: fmt.Sprintf("payload names device %q but the connection is %q", r.Device, device), seq: r.Seq}
	}
	if ref := h.checkSigner(device, r.Seq, func(k *reading.PublicKey) error { return r.Verify(k) }); ref != nil {
		return ref
	}
	res, err := h.outbox.Append(Record{Device: device, Seq: r.Seq, Envelope: env, Leaf: reading.Hash(r.LeafHash()), ReceivedMS: h.cfg.Now().UnixMilli()})
	if err != nil {
		h.log.Error("outbox write failed", "device", device, "seq", r.Seq, "err", err)
		return &refusal{reason: wire.ReasonUnavailable, msg: "the hub could not store the reading; it will be accepted when sent again", seq: r.Seq}
	}
	switch res {
	case Duplicate:
		h.metrics.duplicates.Inc()
	case Replay:
		return &refusal{reason: wire.ReasonReplay, msg: fmt.Sprintf("seq %d was already accepted with different content", r.Seq), seq: r.Seq}
	default:
		h.metrics.ingested.Inc()
		poke(h.readingsReady)
	}
	return nil
}

// parseEnvelope parses a telemetry or ack envelope within the size limits:
// the envelope (envelope_too_large), then the signed payload in it
// (payload_too_large), each refused with its own reason and limit.
func parseEnvelope(payload []byte) (reading.Envelope, *refusal) {
	if len(payload) > maxEnvelopeBytes {
		return reading.Envelope{}, &refusal{reason: wire.ReasonEnvelopeTooLarge, msg: fmt.Sprintf("envelope is %d bytes, the limit is %d", len(payload), maxEnvelopeBytes)}
	}
	env, err := reading.ParseEnvelope(payload)
	if err != nil {
		return reading.Envelope{}, &refusal{reason: wire.ReasonMalformed, msg: err.Error()}
	}
	if len(env.Payload) > reading.MaxPayloadBytes {
		return reading.Envelope{}, &refusal{reason: wire.ReasonTooLarge, msg: fmt.Sprintf("payload is %d bytes, the limit is %d", len(env.Payload), reading.MaxPayloadBytes)}
	}
	return env, nil
}

// checkSigner verifies a device message with the device's enrolled key,
// refusing it if the device is no longer active.
func (h *Hub) checkSigner(device string, seq uint64, verify func(*reading.PublicKey) error) *refusal {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.LedgerTimeout)
	defer cancel()
	info, err := h.dir.lookup(ctx, device)
	if err != nil {
		if c := api.CodeOf(err); c == api.CodeNotFound || c == api.CodeAccessDenied {
			return &refusal{reason: wire.ReasonUnknownDevice, msg: err.Error(), seq: seq}
		}
		return &refusal{reason: wire.ReasonUnavailable, msg: "could not read the device from the ledger: " + err.Error(), seq: seq}
	}
	if info.device.Status != api.StatusActive {
		return &refusal{reason: wire.ReasonDeviceInactive, msg: "device status is " + string(info.device.Status), seq: seq}
	}
	if err := verify(info.key); err != nil {
		return &refusal{reason: wire.ReasonBadSignature, msg: err.Error(), seq: seq}
	}
	return nil
}

// ingestAck validates a signed command ack and stores it durably; the ack
// worker records it on the ledger.
func (h *Hub) ingestAck(device string, payload []byte) *refusal {
	env, ref := parseEnvelope(payload)
	if ref != nil {
		return ref
	}
	ack, err := reading.ParseAck(env)
	if err != nil {
		return &refusal{reason: wire.ReasonMalformed, msg: err.Error()}
	}
	if ack.Device != device {
		return &refusal{reason: wire.ReasonWrongDevice, msg: fmt.Sprintf("ack names device %q but the connection is %q", ack.Device, device), cmd: ack.Command}
	}
	msg := reading.Message(reading.DomainAck, env.Payload)
	if ref := h.checkSigner(device, 0, func(k *reading.PublicKey) error { return k.Verify(msg, env.Signature) }); ref != nil {
		ref.cmd = ack.Command
		return ref
	}
	if err := h.outbox.AppendAck(AckRecord{Device: device, Command: ack.Command, Envelope: env}); err != nil {
		h.log.Error("outbox ack write failed", "device", device, "command", ack.Command, "err", err)
		return &refusal{reason: wire.ReasonUnavailable, msg: "the hub could not store the ack; send it again", cmd: ack.Command}
	}
	poke(h.acksReady)
	return nil
}

// stampInbox wraps a device-to-device message with its authenticated sender
// and its recipient, signed by the hub (signing.go).
func (h *Hub) stampInbox(from, to string, payload []byte) []byte {
	body := json.RawMessage(payload)
	if !json.Valid(payload) {
		b, _ := json.Marshal(payload) // a JSON string of base64
		body = b
	}
	out, err := json.Marshal(wire.InboxMessage{From: from, To: to, Hub: h.cfg.HubID, Ts: h.cfg.Now().UnixMilli(), Payload: body})
	if err != nil { // cannot happen: every field marshals
		return payload
	}
	signed, err := h.sign(wire.DomainInbox, out)
	if err != nil {
		h.log.Error("signing inbox message", "from", from, "to", to, "err", err)
		return out
	}
	return signed
}

// sendError tells a device why something it sent was refused.
func (h *Hub) sendError(device string, m wire.ErrorMessage) {
	m.Ts = h.cfg.Now().UnixMilli()
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	if err := h.broker.Publish(wire.Topic(device, wire.KindErrors), b, false, 1); err != nil && !errors.Is(err, mqtt.ErrInlineClientNotEnabled) {
		h.log.Debug("error reply not sent", "device", device, "err", err)
	}
}
