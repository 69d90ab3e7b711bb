package hub

// A hostile device on the wire, with raw MQTT 3.1.1 and 5 packets, while
// legitimate devices are connected: every way of making the broker publish
// is closed or authorized, and what a client sees is what docs/protocol.md
// says, in both protocol versions.

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/hubtest/rawmqtt"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// quiet is how long a test watches for something that must not arrive.
const quiet = 500 * time.Millisecond

var mqttVersions = []struct {
	name    string
	version byte
}{{"MQTT 3.1.1", rawmqtt.V311}, {"MQTT 5", rawmqtt.V5}}

// dialRaw opens a raw MQTT connection to the fixture's hub.
func (fx *fixture) dialRaw(t *testing.T, version byte) *rawmqtt.Conn {
	t.Helper()
	c, err := rawmqtt.Dial(fx.hub.MQTTAddr(), version)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connectRaw connects a device over raw MQTT with a fresh token; edit may
// change the CONNECT first. It returns the connection and the CONNACK.
func (fx *fixture) connectRaw(t *testing.T, d *device, version byte, edit func(*packets.ConnectParams, *packets.Properties)) (*rawmqtt.Conn, packets.Packet) {
	t.Helper()
	c := fx.dialRaw(t, version)
	p := packets.ConnectParams{ClientIdentifier: d.id, Username: []byte(d.id), Password: []byte(d.token(t, testHubID, time.Now())), Clean: true}
	var props packets.Properties
	if edit != nil {
		edit(&p, &props)
	}
	ack, err := c.Connect(p, props, waitFor)
	require.NoError(t, err, "no CONNACK")
	return c, ack
}

// nextErrorMessage reads the next message on a raw connection's errors topic.
func nextErrorMessage(t *testing.T, c *rawmqtt.Conn, device string) wire.ErrorMessage {
	t.Helper()
	pk, err := c.NextPublish(wire.Topic(device, wire.KindErrors), waitFor)
	require.NoError(t, err, "no message on the errors topic")
	var e wire.ErrorMessage
	require.NoError(t, json.Unmarshal(pk.Payload, &e))
	return e
}

// victim is a legitimate device, connected over MQTT 5 and subscribed to
// everything it may receive; nothing() asserts it received nothing.
type victim struct {
	*device
	m *v5
}

func (fx *fixture) victim(t *testing.T, id string) *victim {
	t.Helper()
	d := fx.enroll(t, id, api.StatusActive)
	v := &victim{device: d}
	v.reconnect(t, fx)
	return v
}

func (v *victim) reconnect(t *testing.T, fx *fixture) {
	t.Helper()
	v.m = fx.connect(t, v.device)
	require.Equal(t, []byte{1, 1, 1}, v.m.subscribe(t, wire.Topic(v.id, wire.KindErrors), wire.Topic(v.id, wire.KindCommands), wire.Topic(v.id, wire.KindInbox)))
}

func (v *victim) nothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case p := <-v.m.msgs:
		t.Fatalf("the victim received %q on %s", p.Payload, p.Topic)
	case <-time.After(d):
	}
}

// noRetainedDeviceMessages asserts the broker keeps no retained message on
// any device topic.
func noRetainedDeviceMessages(t *testing.T, h *Hub) {
	t.Helper()
	require.Empty(t, h.broker.Topics.Messages(wire.TopicPrefix+"#"), "retained messages on device topics")
}

func TestWillOnAnotherDevicesTopicIsRefusedAtConnectAndNeverPublished(t *testing.T) {
	fx := newFixture(t)
	v := fx.victim(t, "victim-1")
	forged, err := json.Marshal(api.Command{ID: "forged-1", Device: v.id, Name: "unlock", Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	for _, ver := range mqttVersions {
		for _, target := range []wire.Kind{wire.KindCommands, wire.KindInbox, wire.KindErrors} {
			for _, retain := range []bool{false, true} {
				name := ver.name + "/" + string(target)
				if retain {
					name += "/retained"
				}
				t.Run(name, func(t *testing.T) {
					attacker := fx.enroll(t, uniqueName("attacker"), api.StatusActive)
					before := authFailures(fx.hub, "will_refused")
					c, ack := fx.connectRaw(t, attacker, ver.version, func(p *packets.ConnectParams, _ *packets.Properties) {
						p.WillFlag, p.WillTopic, p.WillPayload, p.WillQos, p.WillRetain = true, wire.Topic(v.id, target), forged, 1, retain
					})
					if ver.version == rawmqtt.V5 {
						require.Equal(t, packets.ErrTopicNameInvalid.Code, ack.ReasonCode, "MQTT 5: 0x90, the will topic is not accepted")
						require.Contains(t, ack.Properties.ReasonString, "will")
					} else {
						require.Equal(t, packets.Err3NotAuthorized.Code, ack.ReasonCode, "MQTT 3.1.1: 0x05 not authorized")
					}
					require.False(t, ack.SessionPresent)
					_, err := c.UntilClosed(waitFor)
					require.NoError(t, err, "the refused connection is closed")
					require.Equal(t, before+1, authFailures(fx.hub, "will_refused"))
					v.nothing(t, quiet)
					noRetainedDeviceMessages(t, fx.hub)
				})
			}
		}
	}
	// A will on the device's own topic is refused too: no device has a will.
	d := fx.enroll(t, "own-will-1", api.StatusActive)
	_, ack := fx.connectRaw(t, d, rawmqtt.V5, func(p *packets.ConnectParams, _ *packets.Properties) {
		p.WillFlag, p.WillTopic, p.WillPayload = true, wire.Topic(d.id, wire.KindTelemetry), []byte("bye")
	})
	require.Equal(t, packets.ErrTopicNameInvalid.Code, ack.ReasonCode)
	// The victim, reconnecting, is not handed anything retained either.
	v.reconnect(t, fx)
	v.nothing(t, quiet)
}

func TestRevokedOrDisconnectedAttackerHasNoWillToFire(t *testing.T) {
	fx := newFixture(t)
	v := fx.victim(t, "victim-1")
	attacker := fx.enroll(t, "attacker-1", api.StatusActive)
	// A CONNECT with a will never becomes a session; a CONNECT without one
	// cannot add a will later (a second CONNECT is a protocol error), nor can
	// an MQTT 5 DISCONNECT "with will message".
	_, ack := fx.connectRaw(t, attacker, rawmqtt.V5, func(p *packets.ConnectParams, _ *packets.Properties) {
		p.WillFlag, p.WillTopic, p.WillPayload = true, wire.Topic(v.id, wire.KindCommands), []byte(`{"id":"x"}`)
	})
	require.NotEqual(t, byte(0), ack.ReasonCode)
	c, ack := fx.connectRaw(t, attacker, rawmqtt.V5, nil)
	require.Equal(t, byte(0), ack.ReasonCode)
	require.NoError(t, c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ClientIdentifier: attacker.id, Username: []byte(attacker.id), UsernameFlag: true, Password: []byte("x"), PasswordFlag: true,
			WillFlag: true, WillTopic: wire.Topic(v.id, wire.KindCommands), WillPayload: []byte(`{"id":"y"}`), Keepalive: 30}}))
	_, err := c.UntilClosed(waitFor)
	require.NoError(t, err)
	v.nothing(t, quiet)

	c, _ = fx.connectRaw(t, attacker, rawmqtt.V5, nil)
	fx.ledger.SetStatus(attacker.id, api.StatusRevoked)
	fx.ledger.Events <- api.Event{Type: api.EventDeviceStatus, Devices: []string{attacker.id}, Revocations: []string{attacker.id},
		StatusChanges: []api.StatusChange{{Device: attacker.id, From: api.StatusActive, To: api.StatusRevoked}}}
	_, err = c.UntilClosed(waitFor)
	require.NoError(t, err)
	v.nothing(t, quiet)
}

func TestRetainedPublishIsNotStoredAndMQTT5ClientsAreToldSo(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })

	c, ack := fx.connectRaw(t, a, rawmqtt.V5, nil)
	require.Equal(t, byte(0), ack.ReasonCode)
	require.True(t, ack.Properties.RetainAvailableFlag, "CONNACK says whether retain is available")
	require.Equal(t, byte(0), ack.Properties.RetainAvailable)
	require.True(t, ack.Properties.WildcardSubAvailableFlag)
	require.Equal(t, byte(0), ack.Properties.WildcardSubAvailable)
	require.True(t, ack.Properties.SharedSubAvailableFlag)
	require.Equal(t, byte(0), ack.Properties.SharedSubAvailable)
	require.Equal(t, uint32(maxPacketBytes), ack.Properties.MaximumPacketSize)
	require.Zero(t, ack.Properties.TopicAliasMaximum, "no topic aliases")

	// A retained message is relayed like any other and kept by nobody.
	puback, err := c.Publish(1, wire.Topic(b.id, wire.KindInbox), []byte(`{"door":"open"}`), 1, true, waitFor)
	require.NoError(t, err)
	require.Equal(t, byte(0), puback.ReasonCode)
	c3, _ := fx.connectRaw(t, fx.enroll(t, "dev-c", api.StatusActive), rawmqtt.V311, nil)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{"dev-c", b.id}] = true })
	_, err = c3.Publish(1, wire.Topic(b.id, wire.KindInbox), []byte(`{"door":"shut"}`), 1, true, waitFor)
	require.NoError(t, err)
	// The broker acknowledges a publish before it hands it to subscribers,
	// and handles one client's packets in order: the PUBACK of a later
	// publish (to the sender's own telemetry, refused as malformed and
	// delivered to nobody) says the inbox messages have gone to whoever was
	// subscribed then (nobody).
	_, _ = c.Publish(2, wire.Topic(a.id, wire.KindTelemetry), []byte(`{"barrier":1}`), 1, false, waitFor)
	_, _ = c3.Publish(2, wire.Topic("dev-c", wire.KindTelemetry), []byte(`{"barrier":2}`), 1, false, waitFor)
	noRetainedDeviceMessages(t, fx.hub)

	// b subscribes later: it gets nothing.
	cb, _ := fx.connectRaw(t, b, rawmqtt.V5, nil)
	codes, err := cb.Subscribe(1, waitFor, wire.Topic(b.id, wire.KindInbox))
	require.NoError(t, err)
	require.Equal(t, []byte{1}, codes)
	require.Empty(t, cb.Received(quiet), "a later subscriber gets nothing")
}

func TestSysTopicsCanNeitherBeSubscribedToNorPublishedTo(t *testing.T) {
	fx := newFixture(t)
	for _, ver := range mqttVersions {
		t.Run(ver.name, func(t *testing.T) {
			d := fx.enroll(t, uniqueName("sys"), api.StatusActive)
			c, _ := fx.connectRaw(t, d, ver.version, nil)
			codes, err := c.Subscribe(1, waitFor, wire.Topic(d.id, wire.KindErrors))
			require.NoError(t, err)
			require.Equal(t, []byte{1}, codes)

			codes, err = c.Subscribe(2, waitFor, "$SYS/#", "$SYS/broker/version")
			require.NoError(t, err)
			refused := byte(0x87)
			if ver.version == rawmqtt.V311 {
				refused = 0x80 // 3.1.1's only SUBACK failure code
			}
			require.Equal(t, []byte{refused, refused}, codes)
			for _, filter := range []string{"$SYS/#", "$SYS/broker/version"} {
				e := nextErrorMessage(t, c, d.id)
				require.Equal(t, wire.ReasonNotAuthorized, e.Reason)
				require.Equal(t, filter, e.Topic)
				require.Contains(t, e.Message, "$SYS")
			}

			// A QoS 1 publish to $SYS is answered, not left to be resent forever.
			ack, err := c.Publish(3, "$SYS/broker/version", []byte("9.9.9"), 1, false, waitFor)
			require.NoError(t, err, "a QoS 1 PUBLISH to $SYS gets a PUBACK")
			if ver.version == rawmqtt.V5 {
				require.Equal(t, packets.ErrNotAuthorized.Code, ack.ReasonCode)
				require.Contains(t, ack.Properties.ReasonString, wire.ReasonNotAuthorized)
			} else {
				require.Equal(t, byte(0), ack.ReasonCode, "3.1.1 has no negative PUBACK")
			}
			e := nextErrorMessage(t, c, d.id)
			require.Equal(t, wire.ReasonNotAuthorized, e.Reason)
			require.Equal(t, "$SYS/broker/version", e.Topic)
			for _, pk := range c.Received(quiet) {
				require.NotEqual(t, packets.Disconnect, pk.FixedHeader.Type)
				require.False(t, strings.HasPrefix(pk.TopicName, "$SYS"), "a $SYS message reached a device")
			}
			require.False(t, c.Closed(), "the device stays connected")
		})
	}
	require.Equal(t, 4.0, metric(t, fx.hub, "iotledger_hub_subscriptions_refused_total", "reason", "system_topic"))
}

func TestConnectReturnCodesFollowEachProtocolVersion(t *testing.T) {
	fx := newFixture(t)
	impostor, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	cases := []struct {
		name     string
		setup    func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties))
		v311, v5 byte
	}{
		{"valid token", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, uniqueName("ok"), api.StatusActive), nil
		}, 0x00, 0x00},
		{"token signed by another key", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			d := fx.enroll(t, uniqueName("forged"), api.StatusActive)
			forged := &device{id: d.id, signer: impostor}
			return d, func(p *packets.ConnectParams, _ *packets.Properties) {
				p.Password = []byte(forged.token(t, testHubID, time.Now()))
			}
		}, 0x04, 0x86},
		{"garbage password", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, uniqueName("garbage"), api.StatusActive), func(p *packets.ConnectParams, _ *packets.Properties) { p.Password = []byte("hunter2") }
		}, 0x04, 0x86},
		{"empty password", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, uniqueName("empty"), api.StatusActive), func(p *packets.ConnectParams, _ *packets.Properties) {
				p.Password, p.PasswordFlag = nil, true
			}
		}, 0x04, 0x86},
		{"no password", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, uniqueName("nopw"), api.StatusActive), func(p *packets.ConnectParams, _ *packets.Properties) { p.Password, p.PasswordFlag = nil, false }
		}, 0x04, 0x86},
		{"unknown device", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return &device{id: uniqueName("ghost"), signer: impostor}, nil
		}, 0x04, 0x86},
		{"reserved device id", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, "inline", api.StatusActive), nil
		}, 0x04, 0x86},
		{"suspended device with a valid token", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, uniqueName("susp"), api.StatusSuspended), nil
		}, 0x05, 0x87},
		{"hub may not write its telemetry", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			d := fx.enroll(t, uniqueName("foreign"), api.StatusActive)
			fx.ledger.Set(func(f *hubtest.Ledger) { f.DenyWrite[d.id] = true })
			return d, nil
		}, 0x05, 0x87},
		{"client id is not the device id", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			return fx.enroll(t, uniqueName("cid"), api.StatusActive), func(p *packets.ConnectParams, _ *packets.Properties) { p.ClientIdentifier = "someone-else" }
		}, 0x02, 0x85},
		{"a will", func(t *testing.T) (*device, func(*packets.ConnectParams, *packets.Properties)) {
			d := fx.enroll(t, uniqueName("will"), api.StatusActive)
			return d, func(p *packets.ConnectParams, _ *packets.Properties) {
				p.WillFlag, p.WillTopic, p.WillPayload = true, wire.Topic(d.id, wire.KindTelemetry), []byte("bye")
			}
		}, 0x05, 0x90},
	}
	for _, ver := range mqttVersions {
		for _, tc := range cases {
			t.Run(ver.name+"/"+tc.name, func(t *testing.T) {
				d, edit := tc.setup(t)
				c, ack := fx.connectRaw(t, d, ver.version, edit)
				want := tc.v5
				if ver.version == rawmqtt.V311 {
					want = tc.v311
				}
				require.Equal(t, want, ack.ReasonCode, "CONNACK code")
				require.False(t, ack.SessionPresent)
				if want != 0 {
					_, err := c.UntilClosed(waitFor)
					require.NoError(t, err, "a refused connection is closed")
				}
			})
		}
	}
	// The ledger not answering is the hub's trouble, said as such.
	d := fx.enroll(t, "never-looked-up", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Unreachable = true })
	for _, ver := range mqttVersions {
		_, ack := fx.connectRaw(t, d, ver.version, nil)
		if ver.version == rawmqtt.V311 {
			require.Equal(t, packets.Err3ServerUnavailable.Code, ack.ReasonCode, "3.1.1: server unavailable")
		} else {
			require.Equal(t, packets.ErrServerUnavailable.Code, ack.ReasonCode, "MQTT 5: server unavailable")
		}
	}
}

func TestMQTT311ClientsNeverGetADisconnectPacket(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)

	// A refused publish is acknowledged and explained; the connection stays.
	c, _ := fx.connectRaw(t, a, rawmqtt.V311, nil)
	_, err := c.Subscribe(1, waitFor, wire.Topic(a.id, wire.KindErrors))
	require.NoError(t, err)
	ack, err := c.Publish(2, wire.Topic(b.id, wire.KindTelemetry), b.reading(t, 1, 3), 1, false, waitFor)
	require.NoError(t, err, "3.1.1: a refused publish gets a PUBACK")
	require.Equal(t, byte(0), ack.ReasonCode)
	e := nextErrorMessage(t, c, a.id)
	require.Equal(t, wire.ReasonNotAuthorized, e.Reason)
	require.Equal(t, wire.Topic(b.id, wire.KindTelemetry), e.Topic)
	require.NoError(t, c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}))
	_, err = c.Next(packets.Pingresp, waitFor)
	require.NoError(t, err, "still connected")
	require.Zero(t, fx.hub.Outbox().Depth())

	// Revocation closes the connection, with no DISCONNECT (3.1.1 has none
	// from a server); MQTT 5 gets DISCONNECT 0x87.
	c5, _ := fx.connectRaw(t, b, rawmqtt.V5, nil)
	for _, d := range []*device{a, b} {
		fx.ledger.SetStatus(d.id, api.StatusRevoked)
		fx.ledger.Events <- api.Event{Type: api.EventDeviceStatus, Devices: []string{d.id}, Revocations: []string{d.id},
			StatusChanges: []api.StatusChange{{Device: d.id, From: api.StatusActive, To: api.StatusRevoked}}}
	}
	got, err := c.UntilClosed(waitFor)
	require.NoError(t, err)
	for _, pk := range got {
		require.NotEqual(t, packets.Disconnect, pk.FixedHeader.Type, "a DISCONNECT sent to a 3.1.1 client")
	}
	got, err = c5.UntilClosed(waitFor)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	last := got[len(got)-1]
	require.Equal(t, packets.Disconnect, last.FixedHeader.Type)
	require.Equal(t, packets.ErrNotAuthorized.Code, last.ReasonCode)

	// Taken over by a new connection of the same device: closed, no DISCONNECT.
	d := fx.enroll(t, "dev-d", api.StatusActive)
	first, _ := fx.connectRaw(t, d, rawmqtt.V311, nil)
	_, ack2 := fx.connectRaw(t, d, rawmqtt.V311, nil)
	require.Equal(t, byte(0), ack2.ReasonCode)
	got, err = first.UntilClosed(waitFor)
	require.NoError(t, err)
	for _, pk := range got {
		require.NotEqual(t, packets.Disconnect, pk.FixedHeader.Type, "a DISCONNECT sent to a 3.1.1 client")
	}
}

func TestSessionsAreNeverPersistent(t *testing.T) {
	fx := newFixture(t)
	for _, ver := range mqttVersions {
		t.Run(ver.name, func(t *testing.T) {
			d := fx.enroll(t, uniqueName("sess"), api.StatusActive)
			persistent := func(p *packets.ConnectParams, props *packets.Properties) {
				p.Clean = false
				props.SessionExpiryInterval, props.SessionExpiryIntervalFlag = 3600, true
			}
			c, ack := fx.connectRaw(t, d, ver.version, persistent)
			require.Equal(t, byte(0), ack.ReasonCode)
			require.False(t, ack.SessionPresent)
			if ver.version == rawmqtt.V5 {
				require.True(t, ack.Properties.SessionExpiryIntervalFlag, "MQTT 5: the CONNACK sets the session expiry")
				require.Zero(t, ack.Properties.SessionExpiryInterval)
			}
			codes, err := c.Subscribe(1, waitFor, wire.Topic(d.id, wire.KindCommands))
			require.NoError(t, err)
			require.Equal(t, []byte{1}, codes)

			// Taken over while connected, and again after a disconnect:
			// nothing is inherited either way.
			c2, ack := fx.connectRaw(t, d, ver.version, persistent)
			require.Equal(t, byte(0), ack.ReasonCode)
			require.False(t, ack.SessionPresent, "session present after a take-over")
			_, err = c.UntilClosed(waitFor)
			require.NoError(t, err)
			require.NoError(t, c2.Close())
			eventually(t, func() bool { return fx.hub.Health(t.Context()).Devices == 0 }, "still connected")

			// A command issued while away arrives once the device subscribes
			// again, which a session-present 0 tells it to do.
			cmd := api.Command{ID: uniqueName("cmd"), Device: d.id, Name: "reboot", Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)}
			fx.ledger.AddCommand(cmd)
			c3, ack := fx.connectRaw(t, d, ver.version, persistent)
			require.False(t, ack.SessionPresent)
			require.Empty(t, c3.Received(quiet), "no subscription was kept")
			_, err = c3.Subscribe(2, waitFor, wire.Topic(d.id, wire.KindCommands))
			require.NoError(t, err)
			pk, err := c3.NextPublish(wire.Topic(d.id, wire.KindCommands), waitFor)
			require.NoError(t, err)
			require.Contains(t, string(pk.Payload), cmd.ID)
		})
	}
}

func TestCommandNotAckedIsSentAgainOnEveryNewConnection(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	cmd := api.Command{ID: "cmd-1", Device: d.id, Owner: "Org1MSP", Name: "set-setpoint", Params: json.RawMessage(`{"celsius":4}`),
		Status: api.CommandPending, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	fx.ledger.AddCommand(cmd)
	expired := api.Command{ID: "cmd-old", Device: d.id, Name: "reboot", Status: api.CommandDelivered,
		IssuedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}
	fx.ledger.AddCommand(expired)

	receive := func(t *testing.T, m *v5) {
		t.Helper()
		got := m.next(t, wire.Topic(d.id, wire.KindCommands))
		var c api.Command
		require.NoError(t, json.Unmarshal(got.Payload, &c))
		require.Equal(t, cmd.ID, c.ID)
	}
	silent := func(t *testing.T, m *v5) {
		t.Helper()
		select {
		case p := <-m.msgs:
			t.Fatalf("unexpected %q on %s", p.Payload, p.Topic)
		case <-time.After(quiet):
		}
	}
	subscribeAgain := func(t *testing.T) *v5 {
		t.Helper()
		m := fx.connect(t, d)
		require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindCommands)))
		return m
	}

	m := subscribeAgain(t)
	receive(t, m)
	eventually(t, func() bool { return fx.ledger.Command(cmd.ID).Status == api.CommandDelivered }, "not marked delivered")
	// Subscribing again on the same connection sends nothing twice.
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindCommands)))
	silent(t, m)
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))

	// A new connection: delivered, never acked, so sent again; the ledger
	// keeps it delivered (only a pending command can be marked delivered).
	m = subscribeAgain(t)
	receive(t, m)
	silent(t, m)
	require.Equal(t, api.CommandDelivered, fx.ledger.Command(cmd.ID).Status)
	require.Equal(t, 1.0, metric(t, fx.hub, "iotledger_hub_commands_redelivered_total"))
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))

	// A restarted hub sends it again too.
	require.NoError(t, fx.hub.Close())
	fx.start(t)
	m = subscribeAgain(t)
	receive(t, m)

	// Acked: never sent again.
	_, err := m.publish(t, wire.Topic(d.id, wire.KindAcks), d.ack(t, cmd.ID, api.CommandAcked))
	require.NoError(t, err)
	eventually(t, func() bool { return fx.ledger.Command(cmd.ID).Status == api.CommandAcked }, "ack not recorded")
	require.NoError(t, m.c.Disconnect(&paho.Disconnect{}))
	m = subscribeAgain(t)
	silent(t, m)
}

func TestRefusedSubscriptionIsExplainedOnTheErrorsTopic(t *testing.T) {
	fx := newFixture(t)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	for _, ver := range mqttVersions {
		t.Run(ver.name, func(t *testing.T) {
			a := fx.enroll(t, uniqueName("dev-a"), api.StatusActive)
			c, _ := fx.connectRaw(t, a, ver.version, nil)
			codes, err := c.Subscribe(1, waitFor, wire.Topic(a.id, wire.KindErrors))
			require.NoError(t, err)
			require.Equal(t, []byte{1}, codes)
			refused := map[string]string{
				wire.Topic(b.id, wire.KindCommands):               "their own topics",
				wire.Topic(a.id, wire.KindTelemetry):              "may not subscribe to telemetry",
				"iotledger/v1/devices/+/commands":                 "wildcard",
				"$share/g/" + wire.Topic(a.id, wire.KindCommands): "shared",
				"some/other/topic":                                "not under",
			}
			var filters []string
			for f := range refused {
				filters = append(filters, f)
			}
			codes, err = c.Subscribe(2, waitFor, filters...)
			require.NoError(t, err)
			for i, code := range codes {
				require.GreaterOrEqual(t, code, byte(0x80), filters[i])
			}
			for range filters {
				e := nextErrorMessage(t, c, a.id)
				require.Equal(t, wire.ReasonNotAuthorized, e.Reason)
				want, ok := refused[e.Topic]
				require.True(t, ok, "error message for %q", e.Topic)
				require.Contains(t, e.Message, want)
			}
		})
	}
	for reason, n := range map[string]float64{"other_device": 2, "not_subscribable": 2, "wildcard": 2, "shared": 2, "not_a_device_topic": 2} {
		require.Equal(t, n, metric(t, fx.hub, "iotledger_hub_subscriptions_refused_total", "reason", reason), reason)
	}
}

func TestOversizeMessagesAreRefusedWithTheirOwnReason(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "big-1", api.StatusActive)
	m := fx.connect(t, d)
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindErrors)))
	refusedWith := func(t *testing.T, topic string, payload []byte, reason string, code byte) {
		t.Helper()
		resp, err := m.publish(t, topic, payload)
		require.Error(t, err)
		require.Equal(t, code, resp.ReasonCode)
		var e wire.ErrorMessage
		require.NoError(t, json.Unmarshal(m.next(t, wire.Topic(d.id, wire.KindErrors)).Payload, &e))
		require.Equal(t, reason, e.Reason, e.Message)
	}

	// A signed payload of 8193 bytes, in an envelope within its limit.
	p := []byte(`{"device":"` + d.id + `","seq":1,"ts":1,"values":[{"n":"x","vs":"` + strings.Repeat("a", 100) + `"}],"pad":"`)
	p = append(p, strings.Repeat("b", reading.MaxPayloadBytes+1-len(p)-2)...)
	p = append(p, `"}`...)
	require.Len(t, p, reading.MaxPayloadBytes+1)
	sig, err := d.signer.Sign(reading.DomainReading, p)
	require.NoError(t, err)
	env := reading.Envelope{Payload: p, Signature: sig}.Encode()
	require.Less(t, len(env), maxEnvelopeBytes)
	refusedWith(t, wire.Topic(d.id, wire.KindTelemetry), env, "payload_too_large", 0x83)

	ackSig, err := d.signer.Sign(reading.DomainAck, p)
	require.NoError(t, err)
	refusedWith(t, wire.Topic(d.id, wire.KindAcks), reading.Envelope{Payload: p, Signature: ackSig}.Encode(), "payload_too_large", 0x83)

	// An envelope one byte over its limit.
	big := []byte(`{"p":"` + strings.Repeat("A", maxEnvelopeBytes+1-len(`{"p":"","s":"AA=="}`)) + `","s":"AA=="}`)
	require.Len(t, big, maxEnvelopeBytes+1)
	refusedWith(t, wire.Topic(d.id, wire.KindTelemetry), big, "envelope_too_large", 0x83)
	require.Equal(t, 2.0, rejected(fx.hub, "payload_too_large"))
	require.Equal(t, 1.0, rejected(fx.hub, "envelope_too_large"))
	require.Zero(t, rejected(fx.hub, "malformed"))

	// A packet over the maximum packet size ends the connection, and is counted.
	c, _ := fx.connectRaw(t, fx.enroll(t, "big-2", api.StatusActive), rawmqtt.V5, nil)
	_, err = c.Publish(1, wire.Topic("big-2", wire.KindTelemetry), make([]byte, maxPacketBytes), 1, false, waitFor)
	require.Error(t, err, "no PUBACK: the connection is closed")
	require.NotErrorIs(t, err, rawmqtt.ErrTimeout)
	eventually(t, func() bool {
		return metric(t, fx.hub, "iotledger_hub_protocol_errors_total", "reason", "packet_too_large") == 1
	}, "oversize packet not counted")
}

func TestMetricsHaveUnitsGoAndProcessCollectorsAndBuildInfo(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0" })
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 3))
	require.NoError(t, err)
	eventually(t, func() bool { return metric(t, fx.hub, "iotledger_hub_batches_committed_total") == 1 }, "not committed")
	_, body := get(t, "http://"+fx.hub.HTTPAddr()+"/metrics")
	for _, want := range []string{
		"iotledger_hub_submit_duration_seconds_count 1",
		"go_goroutines ",
		"process_start_time_seconds ",
		`iotledger_build_info{goversion="go`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "iotledger_hub_submit_seconds", "the old name is gone")
}

var names atomic.Int64

// uniqueName is a device or command id not used before in this process.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, names.Add(1))
}

func TestPublishBreakingTheProtocolEndsTheConnection(t *testing.T) {
	fx := newFixture(t)
	for _, ver := range mqttVersions {
		t.Run(ver.name, func(t *testing.T) {
			d := fx.enroll(t, uniqueName("proto"), api.StatusActive)
			c, _ := fx.connectRaw(t, d, ver.version, nil)
			require.NoError(t, c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1,
				TopicName: "iotledger/v1/devices/+/telemetry", Payload: []byte("x")}))
			got, err := c.UntilClosed(waitFor)
			require.NoError(t, err, "a wildcard in a topic name ends the connection")
			if ver.version == rawmqtt.V5 {
				require.Len(t, got, 1)
				require.Equal(t, packets.Disconnect, got[0].FixedHeader.Type)
				require.Equal(t, packets.ErrProtocolViolation.Code, got[0].ReasonCode)
			} else {
				require.Empty(t, got, "3.1.1: closed, nothing sent")
			}
		})
	}
	// MQTT 5 topic aliases: the hub allows none (its CONNACK says 0).
	d := fx.enroll(t, "alias-1", api.StatusActive)
	c, _ := fx.connectRaw(t, d, rawmqtt.V5, nil)
	require.NoError(t, c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1,
		TopicName: wire.Topic(d.id, wire.KindTelemetry), Payload: d.reading(t, 1, 3),
		Properties: packets.Properties{TopicAlias: 1, TopicAliasFlag: true}}))
	got, err := c.UntilClosed(waitFor)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	require.Equal(t, packets.Disconnect, got[len(got)-1].FixedHeader.Type)
	require.Equal(t, packets.ErrTopicAliasInvalid.Code, got[len(got)-1].ReasonCode)
	eventually(t, func() bool {
		return metric(t, fx.hub, "iotledger_hub_protocol_errors_total", "reason", "protocol_error") == 2 &&
			metric(t, fx.hub, "iotledger_hub_protocol_errors_total", "reason", "topic_alias_invalid") == 1
	}, "protocol errors not counted")
}
