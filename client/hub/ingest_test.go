package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestSignedReadingIsAcceptedAndSubmitted(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	resp, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 4.2))
	require.NoError(t, err)
	require.Equal(t, byte(0), resp.ReasonCode)
	eventually(t, func() bool { return fx.ledger.Committed()["cold-1/1"] == 1 }, "reading not on the ledger")
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained")
	require.Equal(t, 1.0, testutil.ToFloat64(fx.hub.metrics.ingested))
}

func TestForgedAndReplayedReadingsAreRejectedAndCounted(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	other := fx.enroll(t, "cold-2", api.StatusActive)
	m := fx.connect(t, d)
	require.Equal(t, []byte{1}, m.subscribe(t, wire.Topic(d.id, wire.KindErrors)))
	topic := wire.Topic(d.id, wire.KindTelemetry)
	forger, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	forged := (&device{id: d.id, signer: forger}).reading(t, 1, 99)

	tests := []struct {
		name    string
		payload []byte
		reason  string
		code    byte
	}{
		{"forged signature", forged, wire.ReasonBadSignature, 0x87},
		{"not an envelope", []byte(`{"hello":1}`), wire.ReasonMalformed, 0x99},
		{"another device's reading", other.reading(t, 1, 3), wire.ReasonWrongDevice, 0x87},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := m.publish(t, topic, tc.payload)
			require.Error(t, err)
			require.Equal(t, tc.code, resp.ReasonCode)
			require.Contains(t, resp.Properties.ReasonString, tc.reason)
			require.Equal(t, 1.0, rejected(fx.hub, tc.reason))
			e := m.next(t, wire.Topic(d.id, wire.KindErrors))
			var em wire.ErrorMessage
			require.NoError(t, json.Unmarshal(e.Payload, &em))
			require.Equal(t, tc.reason, em.Reason)
		})
	}

	// Replay: seq 1 again with different content is refused; the very same
	// envelope again (a retransmission) is acknowledged and stored once.
	original := d.reading(t, 1, 4.2)
	_, err = m.publish(t, topic, original)
	require.NoError(t, err)
	_, err = m.publish(t, topic, original)
	require.NoError(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(fx.hub.metrics.duplicates))
	resp, err := m.publish(t, topic, d.reading(t, 1, 5.0))
	require.Error(t, err)
	require.Equal(t, byte(0x83), resp.ReasonCode)
	require.Equal(t, 1.0, rejected(fx.hub, wire.ReasonReplay))
	eventually(t, func() bool { return fx.ledger.Committed()["cold-1/1"] == 1 }, "reading not committed")
	require.Len(t, fx.ledger.Committed(), 1)
}

func TestMQTT311DeviceLearnsOfRefusalOnErrorsTopic(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll(t, "cold-1", api.StatusActive)
	forger, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	m := fx.connectV3(t, d)
	// The PUBACK comes (so the device does not resend forever) ...
	m.publish(t, wire.Topic(d.id, wire.KindTelemetry), (&device{id: d.id, signer: forger}).reading(t, 7, 1))
	// ... and the reason arrives on the errors topic.
	e := m.nextError(t)
	require.Equal(t, wire.ReasonBadSignature, e.Reason)
	require.Equal(t, uint64(7), e.Seq)
	require.Equal(t, 1.0, rejected(fx.hub, wire.ReasonBadSignature))
	require.Equal(t, int64(0), fx.hub.Outbox().Depth())

	m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 8, 1))
	eventually(t, func() bool { return fx.ledger.Committed()["cold-1/8"] == 1 }, "good reading not committed")
}

func TestReadingIsDurableBeforePuback(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.FlushTimeout = 50 * time.Millisecond })
	fx.ledger.Set(func(f *hubtest.Ledger) { f.BlockSubmit = true }) // the ledger never answers
	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, seq, 4))
		require.NoError(t, err)
	}
	// Stop the hub right after the PUBACKs; nothing reached the ledger.
	require.NoError(t, fx.hub.Close())
	require.Empty(t, fx.ledger.Committed())

	ob, err := OpenOutbox(fx.dir + "/outbox.db")
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	require.Equal(t, int64(5), ob.Depth())
	for seq := uint64(1); seq <= 5; seq++ {
		found, err := ob.Contains(d.id, seq)
		require.NoError(t, err)
		require.True(t, found, "seq %d lost", seq)
	}
}
