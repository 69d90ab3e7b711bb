package hub

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
)

func TestPrivateDevicesReadingsGoInPrivateBatchesOfTheirOwn(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.BatchSize = 4 })
	vitals := fx.enroll(t, "vitals-1", api.StatusActive)
	fx.ledger.SetPrivate(vitals.id)
	cold := fx.enroll(t, "cold-1", api.StatusActive)
	mv, mc := fx.connect(t, vitals), fx.connect(t, cold)

	// Public readings alone go through SubmitBatch.
	var want []string
	for seq := uint64(1); seq <= 4; seq++ {
		_, err := mc.publish(t, wire.Topic(cold.id, wire.KindTelemetry), cold.reading(t, seq, 3))
		require.NoError(t, err)
		want = append(want, hubtest.Key(cold.id, seq))
	}
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())
	require.Zero(t, fx.ledger.PrivateSubmits())

	// A private device's readings go in batches of their own through
	// SubmitPrivateBatchFor (the public SubmitBatch would refuse them, and a
	// private batch holds nothing else).
	for seq := uint64(1); seq <= 6; seq++ {
		_, err := mv.publish(t, wire.Topic(vitals.id, wire.KindTelemetry), vitals.reading(t, seq, 72))
		require.NoError(t, err)
		_, err = mc.publish(t, wire.Topic(cold.id, wire.KindTelemetry), cold.reading(t, seq+4, 3))
		require.NoError(t, err)
		want = append(want, hubtest.Key(vitals.id, seq), hubtest.Key(cold.id, seq+4))
	}
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())
	requireExactlyOnce(t, fx.ledger, want)
	require.Positive(t, fx.ledger.PrivateSubmits())
	require.Zero(t, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("invalid_argument")))
}

// publicOnly hides the fake ledger's SubmitPrivateBatch.
type publicOnly struct{ Ledger }

func TestHubWithoutPrivateSubmitsCountsPrivateReadingsAsRejected(t *testing.T) {
	ledger := hubtest.NewLedger()
	fx := &fixture{ledger: ledger, dir: t.TempDir()}
	fx.start(t, func(c *Config) { c.Ledger = publicOnly{ledger} })
	vitals := fx.enroll(t, "vitals-1", api.StatusActive)
	ledger.SetPrivate(vitals.id)
	m := fx.connect(t, vitals)
	_, err := m.publish(t, wire.Topic(vitals.id, wire.KindTelemetry), vitals.reading(t, 1, 72))
	require.NoError(t, err)
	eventually(t, func() bool { return fx.hub.Outbox().Depth() == 0 }, "outbox not drained (depth %d)", fx.hub.Outbox().Depth())
	require.Empty(t, ledger.Committed())
	require.Zero(t, ledger.PrivateSubmits())
	require.Equal(t, 1.0, testutil.ToFloat64(fx.hub.metrics.ledgerRejected.WithLabelValues("invalid_argument")))
}
