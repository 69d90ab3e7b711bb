package hub_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// syncBuffer is a log sink the hub's goroutines write to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHubAs runs a hub in this process as the Org1 identity name, with its
// outbox in data, logging into log.
func startHubAs(t *testing.T, name, hubID, data string, log *syncBuffer) *hub.Hub {
	t.Helper()
	c := connect(t, name)
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: data, Ledger: c, Events: client.EventFeed{Client: c},
		BatchWait: 100 * time.Millisecond, FlushTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(log, nil))})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestHubWithARevokedCertificateSaysSoAndKeepsItsReadings(t *testing.T) {
	ctx := t.Context()
	stolen, replacement := testnet.UniqueID(t, "stolen-hub"), testnet.UniqueID(t, "new-hub")
	for _, name := range []string{stolen, replacement} {
		_, err := fabric.EnrollIdentity(ctx, "Org1", name, map[string]string{network.RoleAttribute: "hub"})
		require.NoError(t, err)
	}
	op := connect(t, "operator")
	data := t.TempDir()
	var log syncBuffer
	h := startHubAs(t, stolen, "hub-revoked", data, &log)
	d := enroll(t, op, testnet.UniqueID(t, "revoked-hub-dev"))
	require.NoError(t, d.dial(t, h.MQTTAddr(), "hub-revoked"))
	d.publishReading(t, 1, 3.5)
	require.Eventually(t, func() bool { return committed(t, op, d.id, 1) }, waitFor, 200*time.Millisecond, "reading 1 never reached the ledger")
	require.True(t, h.Health(ctx).OK, "%+v", h.Health(ctx))

	_, err := fabric.RevokeIdentity(ctx, "Org1", stolen, "keycompromise")
	require.NoError(t, err)

	// The device is still connected: its reading is accepted into the
	// outbox, and the hub says plainly why it does not reach the ledger.
	d.publishReading(t, 2, 3.6)
	var health hub.Health
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		health = h.Health(ctx)
		assert.True(c, strings.HasPrefix(health.Ledger, hub.LedgerIdentityRefused), "health never said the identity is refused: %+v", health)
	}, waitFor, 200*time.Millisecond)
	require.False(t, health.OK)
	require.Contains(t, health.Ledger, "enroll a new identity for the hub")
	require.Eventually(t, func() bool {
		return strings.Contains(log.String(), "level=ERROR msg=\"submit refused: the peers refuse this hub's Fabric identity")
	}, waitFor, 200*time.Millisecond, "no error logged for the refused submit:\n%s", log.String())
	require.Equal(t, int64(1), h.Outbox().Depth(), "reading 2 waits in the outbox")
	require.False(t, committed(t, op, d.id, 2))

	// The runbook's recovery: the hub restarts with a new identity and the
	// same outbox, and what it accepted reaches the ledger.
	require.NoError(t, h.Close())
	var log2 syncBuffer
	h2 := startHubAs(t, replacement, "hub-revoked", data, &log2)
	require.Eventually(t, func() bool { return committed(t, op, d.id, 2) }, waitFor, 200*time.Millisecond, "reading 2 never reached the ledger")
	require.Eventually(t, func() bool { return h2.Health(ctx).OK }, waitFor, 200*time.Millisecond, "%+v", h2.Health(ctx))
}
