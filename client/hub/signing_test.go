package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

func TestCommandsAndInboxMessagesReachDevicesSignedByTheHub(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	fx := newFixture(t, func(c *Config) { c.Signer = ca.HubSigner(t, testHubID) })
	verify, err := wire.NewHubVerifier(ca.PEM, func() time.Time { return wiretest.Epoch.Add(time.Hour) })
	require.NoError(t, err)

	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindCommands)))
	cmd := api.Command{ID: "cmd-1", Device: d.id, Owner: "Org1MSP", Name: "set-setpoint",
		Params: json.RawMessage(`{"celsius":4}`), Status: api.CommandPending, ExpiresAt: time.Now().Add(time.Hour)}
	fx.ledger.AddCommand(cmd)
	fx.ledger.Events <- api.Event{Type: api.EventCommandIssued, Commands: []api.Command{cmd}}
	got := m.next(t, wire.Topic(d.id, wire.KindCommands))
	c, hub, err := verify.VerifyCommand(d.id, got.Payload)
	require.NoError(t, err)
	require.Equal(t, "cmd-1", c.ID)
	require.Equal(t, testHubID, hub.Subject.CommonName)
	_, _, err = verify.VerifyCommand("another-device", got.Payload)
	require.Error(t, err, "a command signed for one device is not valid for another")

	a := fx.enroll(t, "dev-a", api.StatusActive)
	b := fx.enroll(t, "dev-b", api.StatusActive)
	fx.ledger.Set(func(f *hubtest.Ledger) { f.Messaging[[2]string{a.id, b.id}] = true })
	ma, mb := fx.connect(t, a), fx.connect(t, b)
	require.Equal(t, []byte{1}, mb.subscribe(t, wire.Topic(b.id, wire.KindInbox)))
	_, err = ma.publish(t, wire.Topic(b.id, wire.KindInbox), []byte(`{"open":true}`))
	require.NoError(t, err)
	msg, _, err := verify.VerifyInbox(b.id, mb.next(t, wire.Topic(b.id, wire.KindInbox)).Payload)
	require.NoError(t, err)
	require.Equal(t, a.id, msg.From)
	require.Equal(t, b.id, msg.To)
	require.JSONEq(t, `{"open":true}`, string(msg.Payload))
}
