package hub_test

// A hostile device on the wire of a real hub on a real network, with raw
// MQTT 3.1.1 and 5 packets, while legitimate devices are connected: wills,
// retained messages and $SYS never reach a device, refusals get the codes
// docs/protocol.md gives, and a command nobody acked is sent again.

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest/rawmqtt"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
	"github.com/iotledger/iotledger/test/testnet"
)

// watch is how long a test waits for something that must not arrive.
const watch = 3 * time.Second

var edgeVersions = []struct {
	name    string
	version byte
}{{"MQTT 3.1.1", rawmqtt.V311}, {"MQTT 5", rawmqtt.V5}}

// startEdgeHub runs a hub in this process as Org1's hub identity, with its
// metrics on HTTP.
func startEdgeHub(t *testing.T, hubID string) *hub.Hub {
	t.Helper()
	c := connect(t, "hub")
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: c,
		Events: client.EventFeed{Client: c}, BatchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// scrape reads one series (name and labels, as /metrics prints them) of a
// hub's metrics; 0 if absent.
func scrape(t *testing.T, h *hub.Hub, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + h.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// connectRawMQTT connects the device over raw MQTT with a fresh token; edit
// may change the CONNECT first.
func (d *device) connectRawMQTT(t *testing.T, addr, hubID string, version byte, edit func(*packets.ConnectParams, *packets.Properties)) (*rawmqtt.Conn, packets.Packet) {
	t.Helper()
	c, err := rawmqtt.Dial(addr, version)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	tok := wiretest.Token(t, d.signer, hubID, d.id)
	p := packets.ConnectParams{ClientIdentifier: d.id, Username: []byte(d.id), Password: []byte(tok), Clean: true}
	var props packets.Properties
	if edit != nil {
		edit(&p, &props)
	}
	ack, err := c.Connect(p, props, 30*time.Second)
	require.NoError(t, err, "no CONNACK")
	return c, ack
}

// silent asserts the device's MQTT 5 connection received nothing on its
// commands, inbox or errors topic for a while.
func (d *device) silent(t *testing.T, d2 time.Duration) {
	t.Helper()
	select {
	case p := <-d.msgs:
		t.Fatalf("device %s received %q on %s", d.id, p.Payload, p.Topic)
	case <-time.After(d2):
	}
}

func TestWillOnAnotherDevicesCommandsTopicNeverReachesIt(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-will"
	h := startEdgeHub(t, hubID)
	victim := enroll(t, op, testnet.UniqueID(t, "victim"))
	require.NoError(t, victim.dial(t, h.MQTTAddr(), hubID))
	attacker := enroll(t, op, testnet.UniqueID(t, "attacker"))
	forged, err := json.Marshal(api.Command{ID: "forged-unlock", Device: victim.id, Owner: "Org1MSP", Name: "unlock",
		Status: api.CommandPending, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)

	for _, v := range edgeVersions {
		c, ack := attacker.connectRawMQTT(t, h.MQTTAddr(), hubID, v.version, func(p *packets.ConnectParams, _ *packets.Properties) {
			p.WillFlag, p.WillTopic, p.WillPayload, p.WillQos, p.WillRetain = true, wire.Topic(victim.id, wire.KindCommands), forged, 1, true
		})
		if v.version == rawmqtt.V5 {
			require.Equal(t, packets.ErrTopicNameInvalid.Code, ack.ReasonCode, v.name)
			require.Contains(t, ack.Properties.ReasonString, "will")
		} else {
			require.Equal(t, packets.Err3NotAuthorized.Code, ack.ReasonCode, v.name)
		}
		_, err := c.UntilClosed(30 * time.Second)
		require.NoError(t, err, "%s: the refused connection is closed", v.name)
	}
	require.Equal(t, 2.0, scrape(t, h, `iotledger_hub_auth_failures_total{reason="will_refused"}`))

	// Connected without a will and then revoked: closed (3.1.1: with no
	// DISCONNECT), and nothing is published on its behalf.
	c, ack := attacker.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V311, nil)
	require.Equal(t, byte(0), ack.ReasonCode)
	_, err = op.SetDeviceStatus(t.Context(), attacker.id, api.StatusRevoked, "forged a will")
	require.NoError(t, err)
	got, err := c.UntilClosed(waitFor)
	require.NoError(t, err, "revoked device still connected")
	for _, pk := range got {
		require.NotEqual(t, packets.Disconnect, pk.FixedHeader.Type, "a DISCONNECT sent to a 3.1.1 client")
	}
	_, ack = attacker.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V311, nil)
	require.Equal(t, packets.Err3NotAuthorized.Code, ack.ReasonCode, "3.1.1: a revoked device is not authorized (0x05)")
	_, ack = attacker.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V5, nil)
	require.Equal(t, packets.ErrNotAuthorized.Code, ack.ReasonCode, "MQTT 5: 0x87")

	victim.silent(t, watch)
	// Reconnecting, the victim is handed nothing retained.
	require.NoError(t, victim.conn.Disconnect(&paho.Disconnect{}))
	require.NoError(t, victim.dial(t, h.MQTTAddr(), hubID))
	victim.silent(t, watch)
	page, err := op.ListCommands(t.Context(), api.CommandQuery{Device: victim.id})
	require.NoError(t, err)
	require.Empty(t, page.Commands)
}

func TestRetainedAndSysMessagesNeverReachADevice(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-retain"
	h := startEdgeHub(t, hubID)
	a := enroll(t, op, testnet.UniqueID(t, "sender"))
	b := enroll(t, op, testnet.UniqueID(t, "later"))

	// Devices of one org may message each other: a retained inbox message
	// is relayed like any other, and kept by nobody.
	ca, ack := a.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V5, nil)
	require.Equal(t, byte(0), ack.ReasonCode)
	require.True(t, ack.Properties.RetainAvailableFlag)
	require.Zero(t, ack.Properties.RetainAvailable, "MQTT 5 clients are told: no retain")
	puback, err := ca.Publish(1, wire.Topic(b.id, wire.KindInbox), []byte(`{"door":"open"}`), 1, true, 30*time.Second)
	require.NoError(t, err)
	require.Zero(t, puback.ReasonCode)
	// The broker acknowledges a publish before it hands it to subscribers,
	// one client's packets in order: a later publish's PUBACK (to a's own
	// telemetry, refused as malformed) says the inbox message has gone to
	// whoever was subscribed then (nobody).
	_, _ = ca.Publish(2, wire.Topic(a.id, wire.KindTelemetry), []byte(`{"barrier":1}`), 1, false, 30*time.Second)
	cb, _ := b.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V5, nil)
	codes, err := cb.Subscribe(1, 30*time.Second, wire.Topic(b.id, wire.KindInbox))
	require.NoError(t, err)
	require.Equal(t, []byte{1}, codes)
	require.Empty(t, cb.Received(watch), "a later subscriber gets nothing")

	for _, v := range edgeVersions {
		c, _ := a.connectRawMQTT(t, h.MQTTAddr(), hubID, v.version, nil)
		codes, err := c.Subscribe(1, 30*time.Second, wire.Topic(a.id, wire.KindErrors), "$SYS/#")
		require.NoError(t, err)
		refused := byte(0x87)
		if v.version == rawmqtt.V311 {
			refused = 0x80
		}
		require.Equal(t, []byte{1, refused}, codes, v.name)
		e := nextError(t, c, a.id)
		require.Equal(t, "$SYS/#", e.Topic)
		require.Equal(t, wire.ReasonNotAuthorized, e.Reason)

		ack, err := c.Publish(2, "$SYS/broker/clients/connected", []byte("0"), 1, false, 30*time.Second)
		require.NoError(t, err, "%s: a QoS 1 publish to $SYS is answered", v.name)
		if v.version == rawmqtt.V5 {
			require.Equal(t, packets.ErrNotAuthorized.Code, ack.ReasonCode)
		} else {
			require.Zero(t, ack.ReasonCode)
		}
		e = nextError(t, c, a.id)
		require.Equal(t, "$SYS/broker/clients/connected", e.Topic)
		for _, pk := range c.Received(watch) {
			require.False(t, strings.HasPrefix(pk.TopicName, "$SYS"), "%s: a $SYS message reached a device", v.name)
		}
		require.False(t, c.Closed())
		_ = c.Close()
	}
	require.Equal(t, 2.0, scrape(t, h, `iotledger_hub_subscriptions_refused_total{reason="system_topic"}`))
}

func nextError(t *testing.T, c *rawmqtt.Conn, device string) wire.ErrorMessage {
	t.Helper()
	pk, err := c.NextPublish(wire.Topic(device, wire.KindErrors), 30*time.Second)
	require.NoError(t, err, "no message on the errors topic")
	var e wire.ErrorMessage
	require.NoError(t, json.Unmarshal(pk.Payload, &e))
	return e
}

func TestUnackedCommandIsSentAgainOnReconnectAndAfterAHubRestart(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-again"
	h := startHub(t, hubID)
	d := enroll(t, op, testnet.UniqueID(t, "again"))
	require.NoError(t, d.dial(t, h.MQTTAddr(), hubID))
	cmds, err := op.SendCommand(t.Context(), api.CommandRequest{Device: d.id, Name: "set-setpoint", Params: json.RawMessage(`{"celsius":3}`), TTLSeconds: 600})
	require.NoError(t, err)
	require.Len(t, cmds, 1)
	id := cmds[0].ID

	receive := func(t *testing.T) {
		t.Helper()
		var c api.Command
		require.NoError(t, json.Unmarshal(d.next(t, wire.Topic(d.id, wire.KindCommands)).Payload, &c))
		require.Equal(t, id, c.ID)
	}
	status := func() api.CommandStatus {
		c, err := op.Command(t.Context(), id)
		require.NoError(t, err)
		return c.Status
	}
	receive(t)
	require.Eventually(t, func() bool { return status() == api.CommandDelivered }, waitFor, 200*time.Millisecond, "never marked delivered")

	// Not acked, and the connection is gone: the next one gets it again.
	require.NoError(t, d.conn.Disconnect(&paho.Disconnect{}))
	require.NoError(t, d.dial(t, h.MQTTAddr(), hubID))
	receive(t)
	require.Equal(t, api.CommandDelivered, status(), "sending it again changes nothing on the ledger")

	// A new hub process (another outbox, no memory of the first) too.
	require.NoError(t, d.conn.Disconnect(&paho.Disconnect{}))
	require.NoError(t, h.Close())
	h = startHub(t, hubID)
	require.NoError(t, d.dial(t, h.MQTTAddr(), hubID))
	receive(t)

	d.publishAck(t, id)
	require.Eventually(t, func() bool { return status() == api.CommandAcked }, waitFor, 200*time.Millisecond, "ack never recorded")
	require.NoError(t, d.conn.Disconnect(&paho.Disconnect{}))
	require.NoError(t, d.dial(t, h.MQTTAddr(), hubID))
	d.silent(t, watch)
}

func TestRealHubAnswersEachProtocolVersionWithItsOwnCodes(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-codes"
	h := startEdgeHub(t, hubID)
	d := enroll(t, op, testnet.UniqueID(t, "codes"))
	impostor, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	forged := &device{id: d.id, signer: impostor}
	for _, v := range edgeVersions {
		t.Run(v.name, func(t *testing.T) {
			want := func(v311, v5 byte) byte {
				if v.version == rawmqtt.V311 {
					return v311
				}
				return v5
			}
			_, ack := forged.connectRawMQTT(t, h.MQTTAddr(), hubID, v.version, nil)
			require.Equal(t, want(0x04, 0x86), ack.ReasonCode, "a token that does not verify")
			_, ack = d.connectRawMQTT(t, h.MQTTAddr(), hubID, v.version, func(p *packets.ConnectParams, _ *packets.Properties) {
				p.Password, p.PasswordFlag = nil, true
			})
			require.Equal(t, want(0x04, 0x86), ack.ReasonCode, "an empty password")

			persistent := func(p *packets.ConnectParams, props *packets.Properties) {
				p.Clean = false
				props.SessionExpiryInterval, props.SessionExpiryIntervalFlag = 3600, true
			}
			c, ack := d.connectRawMQTT(t, h.MQTTAddr(), hubID, v.version, persistent)
			require.Equal(t, byte(0), ack.ReasonCode)
			_, err := c.Subscribe(1, 30*time.Second, wire.Topic(d.id, wire.KindCommands))
			require.NoError(t, err)
			require.NoError(t, c.Close())
			require.Eventually(t, func() bool { return h.Health(t.Context()).Devices == 0 }, waitFor, 50*time.Millisecond)
			_, ack = d.connectRawMQTT(t, h.MQTTAddr(), hubID, v.version, persistent)
			require.Equal(t, byte(0), ack.ReasonCode)
			require.False(t, ack.SessionPresent, "no session is kept")
		})
	}
	_, err = op.SetDeviceStatus(t.Context(), d.id, api.StatusSuspended, "maintenance")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, ack := d.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V311, nil)
		return ack.ReasonCode == packets.Err3NotAuthorized.Code
	}, waitFor, 500*time.Millisecond, "3.1.1: a suspended device is not authorized (0x05)")
	_, ack := d.connectRawMQTT(t, h.MQTTAddr(), hubID, rawmqtt.V5, nil)
	require.Equal(t, packets.ErrNotAuthorized.Code, ack.ReasonCode)
}
