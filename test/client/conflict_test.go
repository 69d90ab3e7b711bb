package client_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/test/testnet"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConcurrentUpdatesOfOneDeviceAllCommitThroughConflictRetries(t *testing.T) {
	const writers = 6
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Each round at least one writer wins, so writers+2 attempts are enough
	// for everyone; the backoff spreads the losers out.
	op := connect(t, "Org1", "operator", client.WithRetry(writers+2, 50*time.Millisecond), client.WithLogger(logger))
	d := enroll(t, op, testnet.UniqueID(t, "hot"))

	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			fw := fmt.Sprintf("fw-%d", i)
			_, errs[i] = op.UpdateDevice(t.Context(), api.DeviceUpdate{ID: d.ID, Firmware: &fw})
		})
	}
	wg.Wait()

	for i, err := range errs {
		require.NoError(t, err, "writer %d", i)
	}
	require.Contains(t, logs.String(), "read conflict; submitting again",
		"concurrent writers of one key conflict, and the SDK resubmitted")

	history, err := op.DeviceHistory(t.Context(), d.ID)
	require.NoError(t, err)
	require.Len(t, history, writers+1, "enroll plus exactly one committed version per writer")
	seen := map[string]bool{}
	for _, h := range history[1:] {
		seen[h.Device.Firmware] = true
	}
	require.Len(t, seen, writers)
	final, err := op.Device(t.Context(), d.ID)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(final.Firmware, "fw-"))
}

func TestConflictRetriesEndWithAClearError(t *testing.T) {
	const writers = 4
	// One attempt each: all but the winners of each block fail, and say why.
	op := connect(t, "Org1", "operator", client.WithRetry(1, time.Millisecond))
	d := enroll(t, op, testnet.UniqueID(t, "hot1"))
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			fw := fmt.Sprintf("fw-%d", i)
			_, errs[i] = op.UpdateDevice(t.Context(), api.DeviceUpdate{ID: d.ID, Firmware: &fw})
		})
	}
	wg.Wait()
	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
			continue
		}
		require.True(t, client.IsConflict(err), "only read conflicts fail here: %v", err)
		require.Contains(t, err.Error(), "MVCC_READ_CONFLICT")
	}
	require.GreaterOrEqual(t, succeeded, 1)
	history, err := op.DeviceHistory(t.Context(), d.ID)
	require.NoError(t, err)
	require.Len(t, history, 1+succeeded, "failed writers left nothing")
}
