package hub_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	devicelib "github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// pauseNodes stops nodes of a kind with SIGSTOP, as a host that hangs (or
// a peer stuck in a long GC or disk stall) would: their sockets stay open
// and nothing answers. The returned func resumes them; so does cleanup.
func pauseNodes(t *testing.T, kind network.NodeKind) func() {
	t.Helper()
	var pids []int
	for _, nd := range fabric.Nodes() {
		if nd.Kind == kind && !nd.Stopped {
			pids = append(pids, nd.PID)
		}
	}
	require.NotEmpty(t, pids)
	var once sync.Once
	resume := func() {
		once.Do(func() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
	t.Cleanup(resume)
	for _, pid := range pids {
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	}
	return resume
}

// testLogger logs to a file that is printed if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = f.Close()
		if t.Failed() {
			if b, err := os.ReadFile(path); err == nil {
				t.Logf("hub log:\n%s", b)
			}
		}
	})
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// edgeDevice is an enrolled device on the project's device library.
type edgeDevice struct {
	id     string
	signer *reading.Signer
	dev    *devicelib.Device
	lost   chan error

	mu    sync.Mutex
	acked []uint64 // sequence numbers the hub acknowledged
}

func newEdgeDevice(t *testing.T, op *client.Client, prefix string) *edgeDevice {
	t.Helper()
	id := testnet.UniqueID(t, prefix)
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	_, err = op.EnrollDevice(t.Context(), api.EnrollRequest{ID: id, Type: "reefer-sensor", PublicKey: s.Public().PEM(), Activate: true})
	require.NoError(t, err)
	return &edgeDevice{id: id, signer: s}
}

// connect opens a new connection of the device, numbering its readings
// from first.
func (e *edgeDevice) connect(t *testing.T, h *hub.Hub, hubID string, first uint64) error {
	t.Helper()
	d, err := devicelib.New(devicelib.Config{ID: e.id, Signer: e.signer, Hub: h.MQTTAddr(), HubID: hubID, InsecurePlaintext: true,
		FirstSeq: first, Reconnect: &devicelib.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	e.lost = make(chan error, 1)
	d.OnConnectionLost(func(err error) {
		select {
		case e.lost <- err:
		default:
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := d.Connect(ctx); err != nil {
		return err
	}
	e.dev = d
	return nil
}

func (e *edgeDevice) publish(t *testing.T) error {
	t.Helper()
	celsius := 4.0
	// Bounded, so that a hub that never answers fails the test rather than
	// hang it (with the peers paused until its cleanup).
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	seq, err := e.dev.Publish(ctx, reading.Payload{Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &celsius}}})
	if err == nil {
		e.mu.Lock()
		e.acked = append(e.acked, seq)
		e.mu.Unlock()
	}
	return err
}

func (e *edgeDevice) ackedSeqs() []uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.acked)
}

// requireCommittedOnce checks that every reading the devices had
// acknowledged is on the ledger exactly once and that no other reading of
// theirs is: the replay state accepted each, and Org1's index, which holds
// every reading the blocks committed, holds each once and no other.
func requireCommittedOnce(t *testing.T, op *client.Client, devs []*edgeDevice) {
	t.Helper()
	ix := testnet.StartIndex(t, fabric, "Org1")
	ix.Sync(t)
	for _, d := range devs {
		seqs := d.ackedSeqs()
		for chunk := range slices.Chunk(seqs, 500) {
			seen, err := op.Seen(t.Context(), d.id, chunk)
			require.NoError(t, err)
			for _, s := range seen.Seqs {
				require.Equal(t, api.SeqAccepted, s.State, "device %s seq %d", d.id, s.Seq)
			}
		}
		onLedger := indexedSeqs(t, ix, d.id)
		for _, s := range seqs {
			require.Equal(t, 1, onLedger[s], "device %s seq %d", d.id, s)
		}
		require.Len(t, onLedger, len(seqs), "device %s: the ledger holds readings the hub never acknowledged", d.id)
	}
}

// startDrillHub runs a hub in this process as Org1's hub identity, with
// the SDK's default timeouts and a log printed if the test fails.
func startDrillHub(t *testing.T, hubID string, deviceTTL time.Duration) *hub.Hub {
	t.Helper()
	hc := connect(t, "hub")
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: hc, Events: client.EventFeed{Client: hc},
		BatchWait: 100 * time.Millisecond, DeviceTTL: deviceTTL, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestHubAcceptsKnownDevicesWhileBothPeersArePaused is the long-outage
// drill: both peers stop answering for many device-cache lifetimes. Every
// reading the devices publish meanwhile is acknowledged (from the hub's
// stale cache), a device reconnects and is let in, and once the peers are
// back every acknowledged reading is committed exactly once and a
// revocation disconnects its device at once.
func TestHubAcceptsKnownDevicesWhileBothPeersArePaused(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-outage"
	h := startDrillHub(t, hubID, time.Second)

	devs := make([]*edgeDevice, 3)
	for i := range devs {
		devs[i] = newEdgeDevice(t, op, "outage")
		require.NoError(t, devs[i].connect(t, h, hubID, 1))
		require.NoError(t, devs[i].publish(t))
	}
	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, waitFor, 100*time.Millisecond, "the first readings were not committed")

	const pause = 25 * time.Second // 25 device-cache lifetimes
	resume := pauseNodes(t, network.KindPeer)
	paused := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(devs))
	for i, d := range devs {
		wg.Go(func() {
			reconnect := i == 0
			for time.Since(paused) < pause {
				if reconnect && time.Since(paused) > pause/2 {
					reconnect = false
					// Reconnect as a device that lost power does: a new
					// connection, a new token, the hub asked again.
					_ = d.dev.Close()
					next := slices.Max(d.ackedSeqs()) + 1
					if err := d.connect(t, h, hubID, next); err != nil {
						errs <- err
						return
					}
				}
				if err := d.publish(t); err != nil {
					errs <- err
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	wg.Wait()
	resume()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "during the outage")
	}
	during := 0
	for _, d := range devs {
		n := len(d.ackedSeqs()) - 1 // the first was before the pause
		require.GreaterOrEqual(t, n, 2, "device %s: readings acknowledged during the outage", d.id)
		during += n
	}
	t.Logf("%d readings acknowledged while both peers were paused for %s", during, pause)

	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, waitFor, 200*time.Millisecond, "outbox never drained after the peers came back")
	requireCommittedOnce(t, op, devs)

	// Right after the outage a revocation acts at once.
	revoked := devs[1]
	_, err := op.SetDeviceStatus(t.Context(), revoked.id, api.StatusRevoked, "outage drill")
	require.NoError(t, err)
	select {
	case <-revoked.lost:
	case <-time.After(waitFor):
		t.Fatal("revoked device still connected after the outage")
	}
	_ = revoked.dev.Close()
	require.Error(t, revoked.connect(t, h, hubID, slices.Max(revoked.ackedSeqs())+1), "a revoked device cannot reconnect")
}

// raftLeader is the orderer that leads the channel's Raft cluster.
func raftLeader(t *testing.T) string {
	t.Helper()
	var leader string
	require.Eventually(t, func() bool {
		st, err := fabric.Status(t.Context())
		if err != nil {
			return false
		}
		for _, n := range st.Nodes {
			if n.Raft != nil && n.Raft.Leader {
				leader = n.Name
				return true
			}
		}
		return false
	}, waitFor, 250*time.Millisecond, "no Raft leader")
	return leader
}

// TestHubCommitsEveryReadingOnceWhenTheRaftLeaderStops: transactions the
// stopped leader had not ordered never commit, and the hub learns so
// within the SDK's commit-status bound (client.DefaultTimeouts), asks the
// replay state and submits again what is not on the ledger. Every
// acknowledged reading ends on the ledger exactly once, and nothing stays
// in the outbox.
func TestHubCommitsEveryReadingOnceWhenTheRaftLeaderStops(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-leader"
	h := startDrillHub(t, hubID, 0)
	devs := make([]*edgeDevice, 3)
	for i := range devs {
		devs[i] = newEdgeDevice(t, op, "leader")
		require.NoError(t, devs[i].connect(t, h, hubID, 1))
	}
	leader := raftLeader(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(devs))
	for _, d := range devs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if err := d.publish(t); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(2 * time.Second) // batches in flight
	ctx := context.WithoutCancel(t.Context())
	require.NoError(t, fabric.StopNode(ctx, leader))
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = fabric.StartNode(ctx, leader)
		}
	})
	time.Sleep(10 * time.Second) // a new leader is elected meanwhile
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, waitFor, 200*time.Millisecond,
		"batches still unresolved after the leader stopped (depth %d)", h.Outbox().Depth())
	requireCommittedOnce(t, op, devs)
	total := 0
	for _, d := range devs {
		total += len(d.ackedSeqs())
	}
	t.Logf("%d readings acknowledged across the stop of Raft leader %s, each on the ledger once", total, leader)

	// Leave the network as it was: the orderer back and caught up.
	require.NoError(t, fabric.StartNode(ctx, leader))
	restarted = true
	require.Eventually(t, func() bool {
		st, err := fabric.Status(ctx)
		return err == nil && st.Healthy
	}, 2*time.Minute, 500*time.Millisecond, "the network is not healthy again after %s restarted", leader)
}
