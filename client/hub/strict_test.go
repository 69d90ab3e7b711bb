package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/stretchr/testify/require"
)

// signed is an envelope of payload bytes exactly as given, signed by d.
func (d *device) signed(t *testing.T, domain, payload string) []byte {
	t.Helper()
	sig, err := d.signer.Sign(domain, []byte(payload))
	require.NoError(t, err)
	return reading.Envelope{Payload: []byte(payload), Signature: sig}.Encode()
}

func TestSignedBytesWithTwoMeaningsAreRefusedAsMalformed(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	for _, tc := range []struct {
		name, payload string
		kind          wire.Kind
		domain        string
		detail        string
	}{
		{"reading with a case variant", `{"device":"cold-1","seq":1,"ts":1,"values":[{"n":"temp","v":4.2}],"VALUES":[{"n":"temp","v":-40}]}`,
			wire.KindTelemetry, reading.DomainReading, `unknown field "VALUES" (keys are case-sensitive: the field is "values")`},
		{"reading with a duplicate seq", `{"device":"cold-1","seq":2,"seq":3,"ts":1,"values":[{"n":"temp","v":4.2}]}`,
			wire.KindTelemetry, reading.DomainReading, `duplicate key "seq"`},
		{"reading with invalid UTF-8", "{\"device\":\"cold-1\",\"seq\":4,\"ts\":1,\"values\":[{\"n\":\"t\",\"vs\":\"\xff\"}]}",
			wire.KindTelemetry, reading.DomainReading, `invalid UTF-8 in a string at "/values/0/vs"`},
		{"ack with a duplicate status", `{"device":"cold-1","command":"cmd-1","status":"failed","status":"acked","ts":1}`,
			wire.KindAcks, reading.DomainAck, `duplicate key "status"`},
		{"ack with a case variant", `{"device":"cold-1","command":"cmd-1","status":"acked","Status":"failed","ts":1}`,
			wire.KindAcks, reading.DomainAck, `unknown field "Status" (keys are case-sensitive: the field is "status")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := m.publish(t, wire.Topic(d.id, tc.kind), d.signed(t, tc.domain, tc.payload))
			require.Error(t, err)
			require.Equal(t, byte(0x99), resp.ReasonCode)
			require.Contains(t, resp.Properties.ReasonString, wire.ReasonMalformed)
			require.Contains(t, resp.Properties.ReasonString, tc.detail)
		})
	}
	require.Empty(t, fx.ledger.Committed())
}

func TestHubTakesAnAckResultUpToTheLedgersLimit(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	fx.ledger.AddCommand(api.Command{ID: "cmd-1", Device: d.id, Name: "reboot", Status: api.CommandDelivered, ExpiresAt: time.Now().Add(time.Hour)})
	m := fx.connect(t, d)
	topic := wire.Topic(d.id, wire.KindAcks)

	long := strings.Repeat("x", reading.MaxAckResultBytes+1)
	resp, err := m.publish(t, topic, d.signed(t, reading.DomainAck, `{"device":"cold-1","command":"cmd-1","status":"failed","result":"`+long+`","ts":1}`))
	require.Error(t, err)
	require.Equal(t, byte(0x99), resp.ReasonCode)
	require.Contains(t, resp.Properties.ReasonString, "ack result: must be UTF-8 of at most 1024 bytes")

	// Longer than the hub's old 256-byte limit, within the ledger's.
	result := strings.Repeat("y", reading.MaxAckResultBytes)
	_, err = m.publish(t, topic, d.signed(t, reading.DomainAck, `{"device":"cold-1","command":"cmd-1","status":"failed","result":"`+result+`","ts":1}`))
	require.NoError(t, err)
	eventually(t, func() bool { return fx.ledger.Command("cmd-1").Status == api.CommandFailed }, "ack not recorded")
	require.Equal(t, result, fx.ledger.Command("cmd-1").Result)
}
