package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/stretchr/testify/require"
)

func TestRevocationEventDisconnectsConnectedDevice(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	fx.ledger.SetStatus(d.id, api.StatusRevoked)
	fx.ledger.Events <- api.Event{Type: api.EventDeviceStatus, Devices: []string{d.id}, Revocations: []string{d.id},
		StatusChanges: []api.StatusChange{{Device: d.id, From: api.StatusActive, To: api.StatusRevoked}}}
	select {
	case <-m.disconnected:
	case <-time.After(waitFor):
		t.Fatal("revoked device still connected")
	}
	// And it cannot come back.
	_, _, err := dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, time.Now()))
	require.Error(t, err)
	require.Equal(t, 1.0, authFailures(fx.hub, "device_inactive"))
}

func TestSuspendedDeviceIsRefusedAfterStatusEvent(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 1))
	require.NoError(t, err)
	fx.ledger.SetStatus(d.id, api.StatusSuspended)
	fx.ledger.Events <- api.Event{Type: api.EventTelemetryBatch, Devices: []string{d.id},
		StatusChanges: []api.StatusChange{{Device: d.id, From: api.StatusActive, To: api.StatusSuspended, Cause: "rule:quarantine"}}}
	select {
	case <-m.disconnected:
	case <-time.After(waitFor):
		t.Fatal("suspended device still connected")
	}
}

func TestCommandIsDeliveredAndItsAckRecorded(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindCommands)))
	cmd := api.Command{ID: "cmd-1", Device: d.id, Owner: "Org1MSP", Name: "set-setpoint",
		Params: json.RawMessage(`{"celsius":4}`), Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)}
	fx.ledger.AddCommand(cmd)
	fx.ledger.Events <- api.Event{Type: api.EventCommandIssued, Commands: []api.Command{cmd}}

	got := m.next(t, wire.Topic(d.id, wire.KindCommands))
	var c api.Command
	require.NoError(t, json.Unmarshal(got.Payload, &c))
	require.Equal(t, "cmd-1", c.ID)
	require.JSONEq(t, `{"celsius":4}`, string(c.Params))
	eventually(t, func() bool { return fx.ledger.Command("cmd-1").Status == api.CommandDelivered }, "not marked delivered")

	_, err := m.publish(t, wire.Topic(d.id, wire.KindAcks), d.ack(t, "cmd-1", api.CommandAcked))
	require.NoError(t, err)
	eventually(t, func() bool { return fx.ledger.Command("cmd-1").Status == api.CommandAcked }, "ack not recorded")
}

func TestPendingCommandsAreDeliveredWhenDeviceSubscribes(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	fx.ledger.AddCommand(api.Command{ID: "cmd-9", Device: d.id, Name: "reboot", Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)})
	m := fx.connect(t, d)
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindCommands)))
	got := m.next(t, wire.Topic(d.id, wire.KindCommands))
	require.Contains(t, string(got.Payload), `"cmd-9"`)
	eventually(t, func() bool { return fx.ledger.Command("cmd-9").Status == api.CommandDelivered }, "not marked delivered")
}

func TestAckForUnknownCommandIsReportedToDevice(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindErrors)))
	_, err := m.publish(t, wire.Topic(d.id, wire.KindAcks), d.ack(t, "nope", api.CommandAcked))
	require.NoError(t, err)
	e := m.next(t, wire.Topic(d.id, wire.KindErrors))
	var em wire.ErrorMessage
	require.NoError(t, json.Unmarshal(e.Payload, &em))
	require.Equal(t, wire.ReasonUnknownCommand, em.Reason)
	require.Equal(t, "nope", em.Command)
}

func TestKeyRotationEventSwitchesTheKeyReadingsAreCheckedWith(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.DeviceTTL = time.Hour })
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	topic := wire.Topic(d.id, wire.KindTelemetry)
	_, err := m.publish(t, topic, d.reading(t, 1, 3))
	require.NoError(t, err)

	newKey, err := reading.GenerateKey(reading.Ed25519)
	require.NoError(t, err)
	rotated := &device{id: d.id, signer: newKey}
	fx.ledger.RotateKey(d.id, newKey.Public())
	fx.ledger.Events <- api.Event{Type: api.EventDeviceKeyRotated, Devices: []string{d.id}}

	eventually(t, func() bool {
		resp, err := m.publish(t, topic, rotated.reading(t, 2, 3))
		return err == nil && resp.ReasonCode == 0
	}, "reading signed with the new key refused")
	resp, err := m.publish(t, topic, d.reading(t, 3, 3))
	require.Error(t, err, "the old key no longer verifies")
	require.Equal(t, byte(0x87), resp.ReasonCode)
}

func TestPolicyChangeEventRevokesCachedInboxPermission(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.AccessTTL = time.Hour })
	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma := fx.connect(t, a)
	_, err := ma.publish(t, wire.Topic(b.id, wire.KindInbox), []byte(`{"hello":1}`))
	require.NoError(t, err)

	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = false })
	fx.ledger.Events <- api.Event{Type: api.EventPolicyChanged, PolicyID: "p1"}
	eventually(t, func() bool {
		resp, err := ma.publish(t, wire.Topic(b.id, wire.KindInbox), []byte(`{"hello":2}`))
		return err != nil && resp != nil && resp.ReasonCode == 0x87
	}, "inbox still allowed after the policy change")
}
