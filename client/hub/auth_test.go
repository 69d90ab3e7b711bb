package hub

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/stretchr/testify/require"
)

func TestDeviceWithValidTokenConnects(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m, ca, err := dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, time.Now()))
	require.NoError(t, err)
	require.Equal(t, byte(0), ca.ReasonCode)
	require.NotNil(t, m)
	eventually(t, func() bool { return fx.hub.Health(t.Context()).Devices == 1 }, "device not counted as connected")
}

func TestDeviceAuthRefusals(t *testing.T) {
	fx := newFixture(t)
	good := fx.enroll(t, "good-1", api.StatusActive)
	suspended := fx.enroll(t, "susp-1", api.StatusSuspended)
	impostor, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	unknown := &device{id: "ghost-1", signer: impostor}
	reused := good.token(t, testHubID, time.Now())
	// The reused token is consumed by a first, successful connection.
	first, _, err := dialV5(t, fx.hub.MQTTAddr(), good.id, good.id, reused)
	require.NoError(t, err)
	require.NoError(t, first.c.Disconnect(&paho.Disconnect{}))

	tests := []struct {
		name     string
		clientID string
		username string
		password string
		reason   string
		code     byte // MQTT 5 CONNACK reason code
	}{
		{"bad signature", good.id, good.id, (&device{id: good.id, signer: impostor}).token(t, testHubID, time.Now()), "bad_signature", 0x86},
		{"token for another hub", good.id, good.id, good.token(t, "other-hub", time.Now()), "bad_signature", 0x86},
		{"unknown device", unknown.id, unknown.id, unknown.token(t, testHubID, time.Now()), "unknown_device", 0x86},
		{"suspended device", suspended.id, suspended.id, suspended.token(t, testHubID, time.Now()), "device_inactive", 0x87},
		{"stale timestamp", good.id, good.id, good.token(t, testHubID, time.Now().Add(-6*time.Minute)), "stale_token", 0x86},
		{"future timestamp", good.id, good.id, good.token(t, testHubID, time.Now().Add(6*time.Minute)), "stale_token", 0x86},
		{"reused nonce", good.id, good.id, reused, "nonce_reused", 0x86},
		{"garbage password", good.id, good.id, "hunter2", "malformed", 0x86},
		{"client id differs from device id", "someone-else", good.id, good.token(t, testHubID, time.Now()), "client_id_mismatch", 0x85},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := authFailures(fx.hub, tc.reason)
			_, ca, err := dialV5(t, fx.hub.MQTTAddr(), tc.clientID, tc.username, tc.password)
			require.Error(t, err)
			require.NotNil(t, ca)
			require.Equal(t, tc.code, ca.ReasonCode, "0x86 bad user name or password, 0x87 not authorized, 0x85 client identifier not valid")
			require.Equal(t, before+1, authFailures(fx.hub, tc.reason))
		})
	}
}

func TestHubNotAllowedToWriteDeviceTelemetryRefusesDevice(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "foreign-1", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.DenyWrite[d.id] = true })
	_, _, err := dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, time.Now()))
	require.Error(t, err)
	require.Equal(t, 1.0, authFailures(fx.hub, "hub_not_authorized"))
}

func TestTopicACLRefusesOtherDevicesTopics(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	ma := fx.connect(t, a)

	// Wildcard filters are refused by the client library itself (the CONNACK
	// says the hub has none); conformance_test.go sends them raw.
	reasons := ma.subscribe(t,
		wire.Topic(a.id, wire.KindCommands),
		wire.Topic(b.id, wire.KindCommands),
		wire.Topic(a.id, wire.KindTelemetry),
		"$SYS/broker/version",
	)
	require.Equal(t, []byte{1, 0x87, 0x87, 0x87}, reasons)

	// Publishing another device's telemetry, even signed by that device, is refused.
	resp, err := ma.publish(t, wire.Topic(b.id, wire.KindTelemetry), b.reading(t, 1, 3))
	require.Error(t, err)
	require.Equal(t, byte(0x87), resp.ReasonCode)
	resp, err = ma.publish(t, wire.Topic(a.id, wire.KindCommands), []byte(`{}`))
	require.Error(t, err)
	require.Equal(t, byte(0x87), resp.ReasonCode)
	resp, err = ma.publish(t, "some/other/topic", []byte(`{}`))
	require.Error(t, err)
	require.Equal(t, byte(0x87), resp.ReasonCode)
	require.Equal(t, int64(0), fx.hub.Outbox().Depth())
}

func TestInboxNeedsLedgerPermissionAndIsStampedWithSender(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	c := fx.enroll(t, "dev-c", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma := fx.connect(t, a)
	mb := fx.connect(t, b)
	mc := fx.connect(t, c)
	require.Equal(t, []byte{1}, mb.subscribe(t, wire.Topic(b.id, wire.KindInbox)))

	_, err := ma.publish(t, wire.Topic(b.id, wire.KindInbox), []byte(`{"open":true}`))
	require.NoError(t, err)
	got := mb.next(t, wire.Topic(b.id, wire.KindInbox))
	var msg wire.InboxMessage
	require.NoError(t, jsonUnmarshal(got.Payload, &msg))
	require.Equal(t, a.id, msg.From)
	require.Equal(t, testHubID, msg.Hub)
	require.JSONEq(t, `{"open":true}`, string(msg.Payload))

	resp, err := mc.publish(t, wire.Topic(b.id, wire.KindInbox), []byte(`{"open":true}`))
	require.Error(t, err)
	require.Equal(t, byte(0x87), resp.ReasonCode)
}

func TestUnknownDeviceLookupsAreCachedUntilEnrollment(t *testing.T) {
	fx := newFixture(t)
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	d := &device{id: "late-1", signer: s}
	_, _, err = dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, time.Now()))
	require.Error(t, err)
	// "Unknown" is cached briefly; the enrollment event clears it.
	fx.ledger.Enroll(d.id, s.Public(), api.StatusActive)
	fx.ledger.Events <- api.Event{Type: api.EventDeviceEnrolled, Devices: []string{d.id}}
	eventually(t, func() bool {
		m, _, err := dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, time.Now()))
		if err == nil {
			_ = m.c.Disconnect(&paho.Disconnect{})
		}
		return err == nil
	}, "enrolled device still refused")
}
