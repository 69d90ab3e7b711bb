package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

var testEpoch = wiretest.Epoch

func testCommand(device string) []byte {
	b, _ := json.Marshal(api.Command{ID: "tx1-0", Device: device, Owner: "Org1MSP", Name: "open", Status: api.CommandPending,
		IssuedBy: "rule:r", IssuedAt: testEpoch, ExpiresAt: testEpoch.Add(time.Hour)})
	return b
}

func TestHubSignedCommandVerifiesWithTheOrgCAOnly(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	certPEM, keyPEM := ca.Issue(t, "hub1", wire.HubRole, testEpoch.Add(24*time.Hour))
	signer, err := wire.NewHubSigner(certPEM, keyPEM)
	require.NoError(t, err)
	msg, err := signer.Sign(wire.DomainCommand, testCommand("d1"))
	require.NoError(t, err)

	v, err := wire.NewHubVerifier(ca.PEM, func() time.Time { return testEpoch })
	require.NoError(t, err)
	cmd, hub, err := v.VerifyCommand("d1", msg)
	require.NoError(t, err)
	require.Equal(t, "tx1-0", cmd.ID)
	require.Equal(t, "hub1", hub.Subject.CommonName)

	otherCA := wiretest.NewCA(t, "ca.org2")
	operatorPEM, operatorKey := ca.Issue(t, "op", "operator", testEpoch.Add(24*time.Hour))
	operator, err := wire.NewHubSigner(operatorPEM, operatorKey)
	require.NoError(t, err)
	otherCert, otherKey := otherCA.Issue(t, "hub2", wire.HubRole, testEpoch.Add(24*time.Hour))
	foreign, err := wire.NewHubSigner(otherCert, otherKey)
	require.NoError(t, err)
	expiredPEM, expiredKey := ca.Issue(t, "old-hub", wire.HubRole, testEpoch.Add(-time.Minute))
	expired, err := wire.NewHubSigner(expiredPEM, expiredKey)
	require.NoError(t, err)

	sign := func(s *wire.HubSigner, domain string, payload []byte) []byte {
		b, err := s.Sign(domain, payload)
		require.NoError(t, err)
		return b
	}
	tampered := func() []byte {
		var m wire.SignedMessage
		require.NoError(t, json.Unmarshal(msg, &m))
		m.Payload = testCommand("d1")
		m.Payload[len(m.Payload)-2] ^= 1
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	cases := []struct {
		name string
		msg  []byte
		says string
	}{
		{"another org's CA", sign(foreign, wire.DomainCommand, testCommand("d1")), "not issued by a trusted CA"},
		{"an operator, not a hub", sign(operator, wire.DomainCommand, testCommand("d1")), `iotledger.role="operator", not "hub"`},
		{"an expired hub certificate", sign(expired, wire.DomainCommand, testCommand("d1")), "not issued by a trusted CA"},
		{"an inbox signature replayed as a command", sign(signer, wire.DomainInbox, testCommand("d1")), "signature does not verify"},
		{"another device's command", sign(signer, wire.DomainCommand, testCommand("d2")), `for device "d2", not "d1"`},
		{"a tampered payload", tampered(), "signature does not verify"},
		{"an unsigned command", testCommand("d1"), "not {"},
		{"a duplicate key", []byte(`{"p":"e30=","p":"e30=","s":"AA==","x5c":["AA=="]}`), `duplicate key "p"`},
		{"no chain", []byte(`{"p":"e30=","s":"AA==","x5c":[]}`), "are all required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.VerifyCommand("d1", tc.msg)
			var se *wire.SignedMessageError
			require.ErrorAs(t, err, &se)
			require.ErrorContains(t, err, tc.says)
		})
	}
}

func TestHubSignedInboxMessageNamesItsRecipient(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	certPEM, keyPEM := ca.Issue(t, "hub1", wire.HubRole, testEpoch.Add(24*time.Hour))
	signer, err := wire.NewHubSigner(certPEM, keyPEM)
	require.NoError(t, err)
	v, err := wire.NewHubVerifier(ca.PEM, func() time.Time { return testEpoch })
	require.NoError(t, err)
	payload, err := json.Marshal(wire.InboxMessage{From: "a", To: "b", Hub: "hub1", Ts: 1, Payload: json.RawMessage(`{"door":"open"}`)})
	require.NoError(t, err)
	msg, err := signer.Sign(wire.DomainInbox, payload)
	require.NoError(t, err)
	m, _, err := v.VerifyInbox("b", msg)
	require.NoError(t, err)
	require.Equal(t, "a", m.From)
	_, _, err = v.VerifyInbox("c", msg)
	require.ErrorContains(t, err, `for device "b", not "c"`)
	_, _, err = v.VerifyCommand("b", msg)
	require.ErrorContains(t, err, "signature does not verify")
}

func TestHubSignerRefusesAKeyThatIsNotTheCertificates(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	certPEM, _ := ca.Issue(t, "hub1", wire.HubRole, testEpoch.Add(time.Hour))
	_, otherKey := ca.Issue(t, "hub2", wire.HubRole, testEpoch.Add(time.Hour))
	_, err := wire.NewHubSigner(certPEM, otherKey)
	require.ErrorContains(t, err, "the key is not the certificate's")
	_, err = wire.NewHubSigner([]byte("nothing"), otherKey)
	require.ErrorContains(t, err, "no CERTIFICATE block")
	_, err = wire.NewHubVerifier([]byte("nothing"), nil)
	require.ErrorContains(t, err, "no CA certificate")
}

func FuzzVerifySignedMessage(f *testing.F) {
	f.Add([]byte(`{"p":"e30=","s":"AA==","x5c":["AA=="]}`))
	f.Add([]byte(`{"p":"e30=","s":"AA==","x5c":["AA==","AA==","AA==","AA==","AA=="]}`))
	f.Add([]byte(`[]`))
	v, err := wire.NewHubVerifier(wiretest.NewCA(f, "ca").PEM, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Arbitrary bytes never verify, and never panic.
		_, _, err := v.Verify(wire.DomainCommand, b)
		require.Error(t, err)
	})
}
