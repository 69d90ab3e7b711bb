package hub

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/iotledger/iotledger/client/hub/wire"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// What the hub's broker shows a device on the wire, whatever the device
// sends and whatever path inside the broker a packet takes:
//
//   - no wills: a CONNECT with a will is refused (MQTT 5: CONNACK 0x90,
//     3.1.1: 0x05), and the will is taken out of the packet before the
//     broker reads it, so no disconnect, revocation or second CONNECT can
//     ever publish it;
//   - no retained messages and no persistent sessions: every session is
//     clean and ends with its connection (session present is always 0);
//   - nothing on a device's connection that the hub did not publish itself
//     for that device (its commands, its errors, inbox messages the hub
//     authorized and stamped): wills, $SYS and anything a future broker
//     path might send are dropped before they are written (mayDeliver);
//   - only packets that exist in the client's protocol version: a 3.1.1
//     client never gets a DISCONNECT (its connection is closed instead) nor
//     a CONNACK return code above 5;
//   - an answer to every QoS 1 PUBLISH, $SYS topics included.
//
// docs/protocol.md (§2, §3, §8) and docs/decisions.md ("Device edge: no
// wills, no retained messages, clean sessions only") say the same for
// device authors.

// refusedWill marks a CONNECT whose will OnPacketRead took out; it stands in
// the packet's will topic (unused by the broker once the will flag is off)
// so that OnConnectAuthenticate can refuse the connection without state
// kept on the side.
const refusedWill = "\x00will"

// OnPacketRead adjusts what a device sends before the broker acts on it.
func (b *brokerHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return normaliseConnect(pk), nil
	case packets.Publish:
		if !cl.Net.Inline && !strings.ContainsAny(pk.TopicName, "+#") && !mqtt.IsValidFilter(pk.TopicName, true) {
			// $SYS/... (or a bare $share): the broker would drop it without
			// an acknowledgement, and a QoS 1 client would resend it forever.
			b.h.answerUnroutablePublish(cl, pk)
		}
	}
	return pk, nil
}

// normaliseConnect makes a CONNECT ask only for what the hub offers.
func normaliseConnect(pk packets.Packet) packets.Packet {
	// Clean sessions only: nothing is inherited from an earlier connection
	// and nothing outlives this one (the broker deletes a clean session on
	// disconnect), so CONNACK's session present is always 0.
	pk.Connect.Clean = true
	// A password flag with an empty password is no password: the broker
	// would answer 0x82 (protocol error), which 3.1.1 does not have; the
	// hub answers "bad user name or password" instead.
	if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	// The hub never abbreviates topics to a client: every PUBLISH it writes
	// names its topic, which mayDeliver checks.
	pk.Properties.TopicAliasMaximum = 0
	if pk.Connect.WillFlag {
		pk.Connect.WillFlag, pk.Connect.WillRetain, pk.Connect.WillQos = false, false, 0
		pk.Connect.WillPayload, pk.Connect.WillProperties = nil, packets.Properties{}
		pk.Connect.WillTopic = refusedWill + pk.Connect.WillTopic
	}
	return pk
}

// requestedWill returns the will topic of a CONNECT that asked for a will.
func requestedWill(pk packets.Packet) (string, bool) {
	return strings.CutPrefix(pk.Connect.WillTopic, refusedWill)
}

// answerUnroutablePublish refuses a PUBLISH to a topic the broker does not
// route, answering it as the ACL answers a refused topic.
func (h *Hub) answerUnroutablePublish(cl *mqtt.Client, pk packets.Packet) {
	why := fmt.Sprintf("topic %q is reserved by the broker ($SYS, $share): devices publish only to device topics", pk.TopicName)
	h.refuseTopic(string(cl.Properties.Username), pk.TopicName, why)
	if pk.FixedHeader.Qos == 0 || pk.PacketID == 0 { // a missing packet id is the broker's protocol error
		return
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
	if pk.FixedHeader.Qos == 2 {
		ack.FixedHeader.Type = packets.Pubrec
	}
	if cl.Properties.ProtocolVersion == 5 {
		ack.ReasonCode = packets.ErrNotAuthorized.Code
		ack.Properties.ReasonString = wire.ReasonNotAuthorized + ": " + why
	}
	// 3.1.1 has no negative acknowledgement: a positive one (and the errors
	// topic) ends the exchange, as for any refused publish.
	if err := cl.WritePacket(ack); err != nil {
		h.log.Debug("acknowledging a refused publish", "device", string(cl.Properties.Username), "err", err)
	}
}

// OnPacketEncode is the last look at every packet before it is written to
// a device.
func (b *brokerHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	v5 := cl.Properties.ProtocolVersion == 5
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if !v5 {
			return connack311(pk)
		}
		if pk.ReasonCode == packets.CodeSuccess.Code {
			// The broker does not advertise these; MQTT 5 clients then know
			// up front not to try (and well-behaved libraries refuse to).
			pk.Properties.RetainAvailable, pk.Properties.RetainAvailableFlag = 0, true
			pk.Properties.WildcardSubAvailable, pk.Properties.WildcardSubAvailableFlag = 0, true
			pk.Properties.SharedSubAvailable, pk.Properties.SharedSubAvailableFlag = 0, true
			pk.Properties.MaximumPacketSize = maxPacketBytes
		}
	case packets.Disconnect:
		if !v5 {
			// 3.1.1 has no server DISCONNECT: the broker closes the
			// connection right after this, which is all a 3.1.1 client gets.
			return unwritten(pk)
		}
	case packets.Publish:
		if ok, why := mayDeliver(string(cl.Properties.Username), pk); !ok {
			b.h.metrics.deliveriesBlocked.Inc()
			b.h.log.Error("publish to a device blocked: the hub did not send it", "device", string(cl.Properties.Username),
				"topic", pk.TopicName, "origin", pk.Origin, "why", why)
			return unwritten(pk)
		}
	}
	return pk
}

// unwritten turns a packet into one the broker cannot encode, so that
// nothing of it reaches the wire (the broker's hooks cannot drop a packet
// otherwise).
func unwritten(pk packets.Packet) packets.Packet {
	pk.FixedHeader.Type = packets.Reserved
	return pk
}

// connack311 gives a CONNACK to a 3.1.1 client the return code 3.1.1 has
// for the refusal, or closes the connection without a CONNACK when 3.1.1
// has none (protocol errors: 3.1.1 says close the connection).
func connack311(pk packets.Packet) packets.Packet {
	switch pk.ReasonCode {
	case 0x00, 0x01, 0x02, 0x03, 0x04, 0x05:
	case packets.ErrUnsupportedProtocolVersion.Code:
		pk.ReasonCode = packets.Err3UnsupportedProtocolVersion.Code
	case packets.ErrClientIdentifierNotValid.Code:
		pk.ReasonCode = packets.Err3ClientIdentifierNotValid.Code
	case packets.ErrServerUnavailable.Code, packets.ErrServerBusy.Code, packets.ErrConnectionRateExceeded.Code:
		pk.ReasonCode = packets.Err3ServerUnavailable.Code
	case packets.ErrBadUsernameOrPassword.Code:
		pk.ReasonCode = packets.ErrMalformedUsernameOrPassword.Code // 3.1.1's "bad user name or password"
	case packets.ErrNotAuthorized.Code, packets.ErrBanned.Code, packets.ErrTopicNameInvalid.Code,
		packets.ErrRetainNotSupported.Code, packets.ErrQosNotSupported.Code:
		pk.ReasonCode = packets.Err3NotAuthorized.Code
	default:
		return unwritten(pk)
	}
	pk.SessionPresent = pk.SessionPresent && pk.ReasonCode == 0
	return pk
}

// mayDeliver is the rule for everything written to a device's connection:
// the hub published it (commands, errors, and inbox messages the hub
// authorized and stamped all carry the hub's origin), on one of the
// device's own topics that devices may subscribe to. A will, a $SYS
// message or anything else the broker might route is not the hub's.
func mayDeliver(device string, pk packets.Packet) (bool, string) {
	if pk.Origin != mqtt.InlineClientId {
		return false, "not published by the hub"
	}
	if reason, why := subscriptionRefusal(device, pk.TopicName); reason != "" {
		return false, why
	}
	return true, ""
}

// subscriptionRefusal says why a device may not subscribe to a filter (and
// so may not receive on a topic): reason is the metric label ("" when
// allowed), why the detail for the device's errors topic.
func subscriptionRefusal(device, filter string) (reason, why string) {
	switch {
	case !mqtt.IsValidFilter(filter, false):
		return "invalid_filter", fmt.Sprintf("%q is not a valid topic filter", filter)
	case hasPrefixFold(filter, mqtt.SharePrefix+"/"):
		return "shared", "shared subscriptions are not available: subscribe to exact device topics"
	case hasPrefixFold(filter, mqtt.SysPrefix):
		return "system_topic", "the broker's $SYS topics are not available to devices"
	case strings.ContainsAny(filter, "+#"):
		return "wildcard", "wildcard subscriptions are not available: subscribe to exact device topics"
	}
	target, kind, err := wire.ParseTopic(filter)
	switch {
	case err != nil:
		return "not_a_device_topic", err.Error()
	case target != device:
		return "other_device", "devices may only subscribe to their own topics"
	case kind == wire.KindCommands || kind == wire.KindErrors || kind == wire.KindInbox:
		return "", ""
	}
	return "not_subscribable", fmt.Sprintf("devices may not subscribe to %s (only to their commands, errors and inbox)", kind)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// reportRefusedSubscription counts and explains one refused SUBSCRIBE filter.
func (h *Hub) reportRefusedSubscription(device, filter string, code byte) {
	reason, why := subscriptionRefusal(device, filter)
	if reason == "" { // refused by the broker itself (e.g. a packet id in use)
		reason, why = "refused_by_broker", fmt.Sprintf("the broker refused the subscription (reason code 0x%02x)", code)
	} else {
		h.metrics.aclDenied.WithLabelValues("subscribe").Inc()
	}
	h.metrics.subscriptionsRefused.WithLabelValues(reason).Inc()
	h.log.Warn("subscription refused", "device", device, "filter", filter, "reason", reason, "why", why)
	h.sendError(device, wire.ErrorMessage{Reason: wire.ReasonNotAuthorized, Message: why, Topic: filter})
}

// protocolErrorReason names, for the protocol errors metric, why the broker
// ended a connection; "" when it was not the device breaking the protocol
// or the hub's packet limits.
func protocolErrorReason(err error) string {
	var code packets.Code
	if !errors.As(err, &code) {
		return ""
	}
	switch code.Code {
	case packets.ErrPacketTooLarge.Code:
		return "packet_too_large"
	case packets.ErrMalformedPacket.Code:
		return "malformed_packet"
	case packets.ErrProtocolViolation.Code:
		return "protocol_error"
	case packets.ErrTopicAliasInvalid.Code:
		return "topic_alias_invalid"
	case packets.ErrReceiveMaximum.Code:
		return "receive_maximum_exceeded"
	}
	return ""
}

// sysTopicInterval is how often, in seconds, the broker publishes its $SYS
// topics: in effect once, at start (the interval is 68 years). No device
// may subscribe to them or receive them, and each round stops the world to
// read memory statistics.
const sysTopicInterval = math.MaxInt32
