package console

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestThroughputCountsTheLastWindowsReadingsPerOrgAndSubmitter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fx := newFixture(t, func(c *Config) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	// 90 readings two minutes ago (outside a one-minute window), then 30
	// and 12 inside it, the 12 from Org2's hub.
	require.NoError(t, fx.st.Apply(ctx, readingsBlock(0, "sensor-1", 1, 90, now.Add(-2*time.Minute).UnixMilli())))
	require.NoError(t, fx.st.Apply(ctx, readingsBlock(1, "sensor-1", 91, 30, now.Add(-40*time.Second).UnixMilli())))
	org2 := readingsBlock(2, "sensor-9", 1, 12, now.Add(-10*time.Second).UnixMilli())
	org2.Transactions[0].CreatorMSP, org2.Transactions[0].Creator = "Org2MSP", "CN=hub,OU=client,O=Org2"
	require.NoError(t, fx.st.Apply(ctx, org2))

	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/fleet/throughput", "")
	require.Equal(t, http.StatusOK, status, body)
	var got Throughput
	requireStrictJSON(t, body, &got)
	require.Equal(t, now.Add(-time.Minute), got.From)
	require.Equal(t, now, got.To)
	require.Equal(t, 60.0, got.WindowSeconds)
	require.Equal(t, 42, got.Readings)
	require.Equal(t, 2, got.Batches)
	require.InDelta(t, 0.7, got.ReadingsPerSecond, 1e-9, "42 readings in 60 s")
	require.NotNil(t, got.IndexedThrough)
	require.Equal(t, now.Add(-10*time.Second), *got.IndexedThrough)
	require.Equal(t, []OrgThroughput{
		{MSPID: "Org1MSP", Rate: Rate{Batches: 1, Readings: 30, ReadingsPerSecond: 0.5}},
		{MSPID: "Org2MSP", Rate: Rate{Batches: 1, Readings: 12, ReadingsPerSecond: 0.2}},
	}, got.ByOrg)
	require.Equal(t, []SubmitterRate{
		{MSPID: "Org1MSP", Submitter: "CN=hub,OU=client", Rate: Rate{Batches: 1, Readings: 30, ReadingsPerSecond: 0.5}},
		{MSPID: "Org2MSP", Submitter: "CN=hub,OU=client,O=Org2", Rate: Rate{Batches: 1, Readings: 12, ReadingsPerSecond: 0.2}},
	}, got.BySubmitter)

	// A three-minute window takes the older batch in too.
	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/fleet/throughput?window=3m", "")
	require.Equal(t, http.StatusOK, status, body)
	requireStrictJSON(t, body, &got)
	require.Equal(t, 132, got.Readings)

	for _, bad := range []string{"window=1s", "window=2h", "window=soon"} {
		status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/fleet/throughput?"+bad, "")
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", bad, body)
		require.Contains(t, apiError(t, body).Message, "want a duration")
	}
}

func TestThroughputWithoutAnIndexSaysWhy(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Index = nil })
	status, body := fx.do(fx.as("operator"), "GET", "/api/v1/fleet/throughput", "")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, apiError(t, body).Message, "without the org's index")
}
