package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

// lostTransport submits every transaction and never learns its commit
// status: each lookup waits until its context ends, as the peer's
// CommitStatus does for a transaction the orderer lost, or until
// perLookup, as gatewayTransport bounds a lookup.
type lostTransport struct {
	scriptedTransport
	perLookup time.Duration
	lookupsMu sync.Mutex
	waits     int
}

func (l *lostTransport) submit(_ context.Context, _, _ string, _ []string, _ submitOptions) (*pending, error) {
	l.mu.Lock()
	n := l.submits
	l.submits++
	l.mu.Unlock()
	return &pending{txID: fmt.Sprintf("tx%d", n), status: func(ctx context.Context) (commitStatus, error) {
		l.lookupsMu.Lock()
		l.waits++
		l.lookupsMu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, l.perLookup)
		defer cancel()
		<-ctx.Done()
		return commitStatus{}, ctx.Err()
	}}, nil
}

func TestCommitStatusIsWaitedForWithinOneBoundForAllLookups(t *testing.T) {
	bound := 200 * time.Millisecond
	tr := &lostTransport{perLookup: bound}
	c := newClientWithTransport(tr, "Org1MSP", WithRetry(5, time.Millisecond), WithTimeouts(Timeouts{CommitStatus: bound}))
	done := make(chan error, 1)
	go func() {
		_, err := c.UpdateDevice(t.Context(), api.DeviceUpdate{ID: "d1"})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // generous: the bound is 200 ms
		t.Fatal("the submit did not return: the commit status wait is not bounded")
	}
	tr.lookupsMu.Lock()
	waits := tr.waits
	tr.lookupsMu.Unlock()
	require.Equal(t, 1, waits, "the lookup that waits takes the whole bound; no lookup starts after it")
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, StageCommitStatus, te.Stage)
	require.Equal(t, "tx0", te.TxID)
	require.Contains(t, te.Error(), "may still commit")
	require.Contains(t, te.Error(), "no commit status within 200ms")
	require.Equal(t, 1, tr.submits, "an unknown outcome is never resubmitted by the client")
}

func TestDefaultCommitStatusBoundIsSecondsNotMinutes(t *testing.T) {
	// The hub resubmits a batch whose outcome is unknown only after this
	// bound (and a replay-state lookup): it is its longest stall.
	require.LessOrEqual(t, DefaultTimeouts.CommitStatus, 30*time.Second)
	require.GreaterOrEqual(t, DefaultTimeouts.CommitStatus, 5*time.Second, "many blocks, so that a slow commit is not taken for a lost one")
}
