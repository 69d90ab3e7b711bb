package client_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/test/testnet"
)

// enrolledIDs reads events until want enrollments of devices with prefix
// arrived, checkpointing each one if checkpoint is set. It returns the
// devices and the last event.
func enrolledIDs(ctx context.Context, t *testing.T, events <-chan client.ChaincodeEvent, prefix string, want int, checkpoint bool) ([]string, client.ChaincodeEvent) {
	t.Helper()
	var (
		got  []string
		last client.ChaincodeEvent
	)
	for len(got) < want {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "event stream closed after %v", got)
			if ev.Event.Type == api.EventDeviceEnrolled && len(ev.Event.Devices) == 1 && strings.HasPrefix(ev.Event.Devices[0], prefix) {
				got = append(got, ev.Event.Devices[0])
				last = ev
			}
			if checkpoint {
				require.NoError(t, ev.Checkpoint())
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %d enrollments, got %v: %v", want, got, ctx.Err())
		}
	}
	return got, last
}

// idsOf keeps the devices of enrolledIDs' result.
func idsOf(got []string, _ client.ChaincodeEvent) []string { return got }

func TestEventStreamResumesFromItsFileCheckpointAcrossAPeerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var logsA syncBuffer
	op := connect(t, "Org1", "operator", client.WithLogger(slog.New(slog.NewTextHandler(&logsA, nil))))
	prefix := testnet.UniqueID(t, "ev")
	cpPath := filepath.Join(t.TempDir(), "events.checkpoint")
	cp, err := client.NewFileCheckpointer(cpPath)
	require.NoError(t, err)

	// First consumer: handles e1 and e2, receives e3 but "crashes" before
	// handling it.
	streamA, stopA := context.WithCancel(ctx)
	eventsA, err := op.Events(streamA, client.EventOptions{Checkpoint: cp})
	require.NoError(t, err)
	devices := []string{prefix + "-1", prefix + "-2", prefix + "-3", prefix + "-4", prefix + "-5"}
	for _, id := range devices[:3] {
		enroll(t, op, id)
	}
	require.Equal(t, devices[:2], idsOf(enrolledIDs(ctx, t, eventsA, prefix, 2, true)))
	require.Equal(t, devices[2:3], idsOf(enrolledIDs(ctx, t, eventsA, prefix, 1, false)))
	stopA()
	require.NotContains(t, logsA.String(), "cannot read the chain height", "a fresh stream starts at the chain height read from the peer")

	// Second consumer, in a "new process": same checkpoint file.
	reopened, err := client.NewFileCheckpointer(cpPath)
	require.NoError(t, err)
	var logs syncBuffer
	opB := connect(t, "Org1", "operator", client.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	eventsB, err := opB.Events(ctx, client.EventOptions{Checkpoint: reopened, ReconnectBackoff: 200 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, devices[2:3], idsOf(enrolledIDs(ctx, t, eventsB, prefix, 1, true)), "resumes with the unhandled event, not before")

	// The gateway peer goes away under the open stream and comes back.
	require.NoError(t, fabric.StopNode(ctx, "peer0.org1"))
	t.Cleanup(func() { _ = fabric.StartNode(context.WithoutCancel(ctx), "peer0.org1") }) // if the test stops early
	require.NoError(t, fabric.StartNode(ctx, "peer0.org1"))
	for _, id := range devices[3:] {
		eventually(ctx, t, "enroll after the peer restart", func() error {
			_, err := op.Device(ctx, id)
			if err == nil {
				return nil // an earlier attempt committed after all
			}
			s, err := reading.GenerateKey(reading.Ed25519)
			require.NoError(t, err)
			_, err = op.EnrollDevice(ctx, api.EnrollRequest{ID: id, Type: "fridge", PublicKey: s.Public().PEM(), Activate: true})
			return err
		})
	}
	rest, last := enrolledIDs(ctx, t, eventsB, prefix, 2, true)
	require.Equal(t, devices[3:], rest, "the reconnected stream delivers each later event once, in order")
	require.Contains(t, logs.String(), "event stream ended; reconnecting", "the stream did break and reconnect")

	// The checkpoint file now points right after the last event handled.
	final, err := client.NewFileCheckpointer(cpPath)
	require.NoError(t, err)
	require.Equal(t, last.BlockNumber, final.BlockNumber())
	require.Equal(t, last.TxID, final.TransactionID())
}
