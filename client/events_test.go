package client

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

// fakeChain is a chain of chaincode events served by streams that break
// after a set number of events, like a peer that restarts.
type fakeChain struct {
	mu        sync.Mutex
	events    []*gw.ChaincodeEvent
	breakEach int // a stream ends after this many events (0: never)
	opens     []position
	failOpen  int // the first failOpen opens fail
}

func (f *fakeChain) open(ctx context.Context, from position) (<-chan *gw.ChaincodeEvent, error) {
	f.mu.Lock()
	f.opens = append(f.opens, from)
	if f.failOpen > 0 {
		f.failOpen--
		f.mu.Unlock()
		return nil, errors.New("peer unavailable")
	}
	f.mu.Unlock()

	// Seek like the gateway: from the block, skipping up to and including txID.
	var todo []*gw.ChaincodeEvent
	skipping := from.txID != ""
	for _, e := range f.events {
		if from.set && e.BlockNumber < from.block {
			continue
		}
		if skipping && e.BlockNumber == from.block {
			if e.TransactionID == from.txID {
				skipping = false
			}
			continue
		}
		todo = append(todo, e)
	}
	ch := make(chan *gw.ChaincodeEvent)
	go func() {
		defer close(ch)
		for i, e := range todo {
			if f.breakEach > 0 && i == f.breakEach {
				return
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
		<-ctx.Done()
	}()
	return ch, nil
}

func chainEvent(t *testing.T, block uint64, txID, typ string) *gw.ChaincodeEvent {
	payload, err := json.Marshal(api.Event{Type: typ, TxID: txID})
	require.NoError(t, err)
	return &gw.ChaincodeEvent{BlockNumber: block, TransactionID: txID, EventName: api.EventName, Payload: payload}
}

func collect(t *testing.T, ch <-chan ChaincodeEvent, n int, checkpoint bool) []string {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "stream closed early after %v", got)
			got = append(got, ev.TxID)
			if checkpoint {
				require.NoError(t, ev.Checkpoint())
			}
		case <-timeout:
			t.Fatalf("only %d of %d events arrived: %v", len(got), n, got)
		}
	}
	return got
}

func TestEventStreamReconnectsWithoutMissingOrRepeatingEvents(t *testing.T) {
	chain := &fakeChain{breakEach: 2, failOpen: 0, events: []*gw.ChaincodeEvent{
		chainEvent(t, 5, "a", api.EventDeviceEnrolled),
		chainEvent(t, 5, "b", api.EventDeviceEnrolled),
		chainEvent(t, 5, "c", api.EventDeviceUpdated),
		chainEvent(t, 6, "d", api.EventTelemetryBatch),
		chainEvent(t, 7, "e", api.EventCommandIssued),
	}}
	c := newClientWithTransport(nil, "Org1MSP")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := c.streamEvents(ctx, chain.open, position{block: 5, set: true}, EventOptions{ReconnectBackoff: time.Millisecond})

	require.Equal(t, []string{"a", "b", "c", "d", "e"}, collect(t, ch, 5, false))
	chain.mu.Lock()
	defer chain.mu.Unlock()
	require.Equal(t, position{block: 5, set: true}, chain.opens[0])
	require.Equal(t, position{block: 5, txID: "b", set: true}, chain.opens[1], "resumes after the last delivered event")
	require.Equal(t, position{block: 6, txID: "d", set: true}, chain.opens[2])
}

func TestEventStreamKeepsTryingWhileThePeerIsDown(t *testing.T) {
	chain := &fakeChain{failOpen: 3, events: []*gw.ChaincodeEvent{chainEvent(t, 1, "a", api.EventDeviceEnrolled)}}
	c := newClientWithTransport(nil, "Org1MSP")
	ch := c.streamEvents(t.Context(), chain.open, position{block: 1, set: true}, EventOptions{ReconnectBackoff: time.Millisecond})
	require.Equal(t, []string{"a"}, collect(t, ch, 1, false))
	chain.mu.Lock()
	defer chain.mu.Unlock()
	require.Len(t, chain.opens, 4)
}

func TestUndecodableAndForeignEventsAreSkipped(t *testing.T) {
	bad := &gw.ChaincodeEvent{BlockNumber: 2, TransactionID: "bad", EventName: api.EventName, Payload: []byte("{not json")}
	other := &gw.ChaincodeEvent{BlockNumber: 2, TransactionID: "other", EventName: "something-else", Payload: []byte("{}")}
	chain := &fakeChain{events: []*gw.ChaincodeEvent{bad, other, chainEvent(t, 3, "good", api.EventPolicyChanged)}}
	c := newClientWithTransport(nil, "Org1MSP")
	ch := c.streamEvents(t.Context(), chain.open, position{block: 1, set: true}, EventOptions{})
	require.Equal(t, []string{"good"}, collect(t, ch, 1, false))
}

func TestCheckpointedStreamResumesAfterTheLastHandledEventInANewProcess(t *testing.T) {
	chain := &fakeChain{events: []*gw.ChaincodeEvent{
		chainEvent(t, 3, "a", api.EventDeviceEnrolled),
		chainEvent(t, 3, "b", api.EventDeviceEnrolled),
		chainEvent(t, 4, "c", api.EventDeviceEnrolled),
	}}
	cp, err := NewFileCheckpointer(t.TempDir() + "/cp.json")
	require.NoError(t, err)
	c := newClientWithTransport(nil, "Org1MSP")

	ctx, cancel := context.WithCancel(t.Context())
	ch := c.streamEvents(ctx, chain.open, position{block: 3, set: true}, EventOptions{Checkpoint: cp})
	require.Equal(t, []string{"a", "b"}, collect(t, ch, 2, true))
	cancel()
	for range ch { //nolint:revive // wait for the stream to close
	}

	reopened, err := NewFileCheckpointer(cp.Path())
	require.NoError(t, err)
	start, err := c.startPosition(t.Context(), EventOptions{Checkpoint: reopened})
	require.NoError(t, err)
	require.Equal(t, position{block: 3, txID: "b", set: true}, start)
	ch = c.streamEvents(t.Context(), chain.open, start, EventOptions{Checkpoint: reopened})
	require.Equal(t, []string{"c"}, collect(t, ch, 1, true))
}

func TestEventStreamClosesWhenTheContextEnds(t *testing.T) {
	chain := &fakeChain{}
	c := newClientWithTransport(nil, "Org1MSP")
	ctx, cancel := context.WithCancel(t.Context())
	ch := c.streamEvents(ctx, chain.open, position{}, EventOptions{})
	cancel()
	select {
	case _, ok := <-ch:
		require.False(t, ok)
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not close")
	}
}
