package hub

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client/hub/wire"
)

// The last check before the wire, whatever path inside the broker a packet
// took: the broker cannot be made to write a will, a $SYS message or a
// packet that does not exist in the client's protocol version.
func TestOnlyWhatTheHubSentReachesADeviceConnection(t *testing.T) {
	fx := newFixture(t)
	hook := &brokerHook{h: fx.hub}
	device := func(version byte) *mqtt.Client {
		return &mqtt.Client{Properties: mqtt.ClientProperties{Username: []byte("dev-b"), ProtocolVersion: version}}
	}
	publish := func(origin, topic string) packets.Packet {
		return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1, Origin: origin, TopicName: topic, Payload: []byte("x")}
	}
	written := func(cl *mqtt.Client, pk packets.Packet) (packets.Packet, bool) {
		out := hook.OnPacketEncode(cl, pk)
		return out, out.FixedHeader.Type != packets.Reserved
	}
	for _, v := range []byte{4, 5} {
		for _, tc := range []struct {
			name string
			pk   packets.Packet
			ok   bool
		}{
			{"the hub's command", publish(mqtt.InlineClientId, wire.Topic("dev-b", wire.KindCommands)), true},
			{"the hub's error message", publish(mqtt.InlineClientId, wire.Topic("dev-b", wire.KindErrors)), true},
			{"an inbox message the hub relayed", publish(mqtt.InlineClientId, wire.Topic("dev-b", wire.KindInbox)), true},
			{"another device's will on the commands topic", publish("dev-a", wire.Topic("dev-b", wire.KindCommands)), false},
			{"another device's will on the inbox", publish("dev-a", wire.Topic("dev-b", wire.KindInbox)), false},
			{"a $SYS message", publish("", "$SYS/broker/version"), false},
			{"the hub's message for another device", publish(mqtt.InlineClientId, wire.Topic("dev-c", wire.KindCommands)), false},
			{"on a topic devices may not receive", publish(mqtt.InlineClientId, wire.Topic("dev-b", wire.KindTelemetry)), false},
		} {
			before := metric(t, fx.hub, "iotledger_hub_deliveries_blocked_total")
			_, ok := written(device(v), tc.pk)
			require.Equal(t, tc.ok, ok, "MQTT %d: %s", v, tc.name)
			if !tc.ok {
				require.Equal(t, before+1, metric(t, fx.hub, "iotledger_hub_deliveries_blocked_total"), tc.name)
			}
		}
	}

	disconnect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: packets.ErrNotAuthorized.Code}
	_, ok := written(device(4), disconnect)
	require.False(t, ok, "3.1.1 has no server DISCONNECT")
	_, ok = written(device(5), disconnect)
	require.True(t, ok)

	for code, want := range map[byte]byte{
		0x00: 0x00, 0x86: 0x04, 0x87: 0x05, 0x90: 0x05, 0x85: 0x02, 0x88: 0x03, 0x89: 0x03, 0x9F: 0x03, 0x84: 0x01, 0x9A: 0x05,
	} {
		out, ok := written(device(4), packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code})
		require.True(t, ok, "%#x", code)
		require.Equal(t, want, out.ReasonCode, "CONNACK %#x to a 3.1.1 client", code)
	}
	for _, code := range []byte{0x80, 0x81, 0x82, 0x83} {
		_, ok := written(device(4), packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code})
		require.False(t, ok, "3.1.1 has no return code for %#x: the connection is closed without a CONNACK", code)
	}
}

func TestSubscriptionRefusalsAreClassified(t *testing.T) {
	for filter, want := range map[string]string{
		wire.Topic("me", wire.KindCommands):      "",
		wire.Topic("me", wire.KindErrors):        "",
		wire.Topic("me", wire.KindInbox):         "",
		wire.Topic("me", wire.KindTelemetry):     "not_subscribable",
		wire.Topic("me", wire.KindAcks):          "not_subscribable",
		wire.Topic("other", wire.KindCommands):   "other_device",
		"iotledger/v1/devices/+/commands":        "wildcard",
		"#":                                      "wildcard",
		"$SYS/#":                                 "system_topic",
		"$sys/broker/version":                    "system_topic",
		"$share/g/iotledger/v1/devices/me/inbox": "shared",
		"a/#/b":                                  "invalid_filter",
		"some/other/topic":                       "not_a_device_topic",
	} {
		reason, why := subscriptionRefusal("me", filter)
		require.Equal(t, want, reason, filter)
		require.Equal(t, want == "", why == "", filter)
	}
}
