package hub_test

import (
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	devicepkg "github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/test/testnet"
)

// orgHub runs a hub of org in this process as the org's hub identity,
// signing what it delivers, over plaintext on loopback; it returns the hub
// and the org CA pool its devices check the hub's signatures with.
func orgHub(t *testing.T, org, hubID string) (*hub.Hub, *x509.CertPool) {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(t.Context(), p, "hub")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	id, err := p.Identity("hub")
	require.NoError(t, err)
	signer, err := wire.LoadHubSigner(id.Cert, id.Key)
	require.NoError(t, err)
	require.NotNil(t, p.HubTLS, "network up records the org CA")
	caPEM, err := os.ReadFile(p.HubTLS.CACert)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: c,
		Events: client.EventFeed{Client: c}, Signer: signer, BatchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h, pool
}

func orgOperator(t *testing.T, org string) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(t.Context(), p, "operator")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A device of Org1 seals a message to a device of Org2 that is offline; the
// Org1 hub has the ledger keep it; when the Org2 device connects to its own
// org's hub it gets the message, checks the sender's signature and opens it.
func TestASealedMessageCrossesOrgsThroughTheLedgerToAnOfflineRecipient(t *testing.T) {
	op1, op2 := orgOperator(t, "Org1"), orgOperator(t, "Org2")
	id1, id2 := testnet.UniqueID(t, "msg-hub1"), testnet.UniqueID(t, "msg-hub2")
	hub1, ca1 := orgHub(t, "Org1", id1)
	hub2, ca2 := orgHub(t, "Org2", id2)

	sender, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	recipient, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	sealKey, err := reading.GenerateEncryptionKey()
	require.NoError(t, err)
	a, b := testnet.UniqueID(t, "msg-a"), testnet.UniqueID(t, "msg-b")
	_, err = op1.EnrollDevice(t.Context(), api.EnrollRequest{ID: a, Type: "door", PublicKey: sender.Public().PEM(), Activate: true})
	require.NoError(t, err)
	enrolled, err := op2.EnrollDevice(t.Context(), api.EnrollRequest{ID: b, Type: "alarm", PublicKey: recipient.Public().PEM(), Activate: true,
		EncryptionKey: sealKey.PublicKey().Bytes()})
	require.NoError(t, err)
	_, err = op2.PutPolicy(t.Context(), api.Policy{ID: "msg-" + b, Statements: []api.Statement{{
		Effect: api.Allow, Principals: []string{"msp:Org1MSP"}, Actions: []string{api.ActionDeviceMessage}, Resources: []string{b}}}})
	require.NoError(t, err)

	devA, err := devicepkg.New(devicepkg.Config{ID: a, Signer: sender, Hub: hub1.MQTTAddr(), HubID: id1, InsecurePlaintext: true, HubCAs: ca1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = devA.Close() })
	require.NoError(t, devA.Connect(t.Context()))
	sealTo, err := reading.ParseEncryptionKey(enrolled.EncryptionKey)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		// The Org2 grant reaches the Org1 peer's state a block later.
		return devA.SendMessage(t.Context(), b, "m1", []byte(`{"alarm":"door forced"}`), sealTo, 600) == nil
	}, waitFor, time.Second, "the Org1 hub never relayed the message")

	devB, err := devicepkg.New(devicepkg.Config{ID: b, Signer: recipient, Hub: hub2.MQTTAddr(), HubID: id2, InsecurePlaintext: true, HubCAs: ca2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = devB.Close() })
	got := make(chan wire.InboxMessage, 1)
	devB.OnInbox(func(m wire.InboxMessage) { got <- m })
	require.NoError(t, devB.Connect(t.Context()))
	var in wire.InboxMessage
	select {
	case in = <-got:
	case <-time.After(waitFor):
		t.Fatal("the Org2 device never got the message the ledger kept for it")
	}
	m, body, err := devicepkg.OpenMessage(in, b, sender.Public(), sealKey)
	require.NoError(t, err)
	require.Equal(t, a, m.From)
	require.JSONEq(t, `{"alarm":"door forced"}`, string(body))
	hub2Client, err := client.Connect(t.Context(), mustProfile(t, "Org2"), "hub")
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub2Client.Close() })
	require.Eventually(t, func() bool {
		waiting, err := hub2Client.ListMessages(t.Context(), api.MessageQuery{To: b})
		return err == nil && len(waiting.Messages) == 0
	}, waitFor, time.Second, "the delivered message is still kept on the ledger")
}

func mustProfile(t *testing.T, org string) *client.Profile {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	return p
}
