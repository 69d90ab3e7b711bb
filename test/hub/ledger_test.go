package hub_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/receipt"
	"github.com/iotledger/iotledger/test/testnet"
)

// outboxWith writes an outbox in dir holding one signed reading of d,
// recorded as belonging to the ledger named by anchor.
func outboxWith(t *testing.T, dir string, d *device, seq uint64, anchor receipt.Anchor) {
	t.Helper()
	temp := 4.5
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &temp}}})
	require.NoError(t, err)
	r, err := env.Decode()
	require.NoError(t, err)
	ob, err := hub.OpenOutbox(filepath.Join(dir, "outbox.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, ob.Close()) }()
	res, err := ob.Append(hub.Record{Device: d.id, Seq: seq, Envelope: env, Leaf: reading.Hash(r.LeafHash()), ReceivedMS: time.Now().UnixMilli()})
	require.NoError(t, err)
	require.Equal(t, hub.Appended, res)
	_, err = ob.PinLedger(anchor, time.Now())
	require.NoError(t, err)
}

func TestHubRefusesToDrainAnOutboxOfAnotherNetwork(t *testing.T) {
	op := connect(t, "operator")
	c := connect(t, "hub")
	anchor, _, err := c.TrustAnchor(t.Context())
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("the network this outbox was filled on, since recreated"))
	other := receipt.Anchor{Channel: anchor.Channel, Genesis: hex.EncodeToString(sum[:])}

	d := enroll(t, op, testnet.UniqueID(t, "ledger-dev"))
	data := t.TempDir()
	outboxWith(t, data, d, 1, other)

	h, err := hub.New(hub.Config{HubID: "hub-other-ledger", MQTTAddr: "127.0.0.1:0", DataDir: data, Ledger: c})
	require.NoError(t, err)
	err = h.Start(t.Context())
	require.NoError(t, h.Close())
	var mismatch *hub.LedgerMismatchError
	require.ErrorAs(t, err, &mismatch)
	require.Equal(t, anchor, mismatch.Ledger, "the ledger's anchor, from its genesis block")
	require.Equal(t, other, mismatch.Recorded.Anchor)
	require.Contains(t, err.Error(), "another --data")

	ob, err := hub.OpenOutbox(filepath.Join(data, "outbox.db"))
	require.NoError(t, err)
	require.Equal(t, int64(1), ob.Depth(), "the outbox lost its reading")
	rec, err := ob.Ledger()
	require.NoError(t, err)
	require.Equal(t, other, rec.Anchor, "the record was overwritten")
	require.NoError(t, ob.Close())
	require.False(t, committed(t, op, d.id, 1), "the reading went to the other ledger")
}

func TestHubParksAReadingTheLedgerDoesNotKnowTheDeviceOfAndSubmitsItOnceEnrolled(t *testing.T) {
	op := connect(t, "operator")
	c := connect(t, "hub")
	anchor, _, err := c.TrustAnchor(t.Context())
	require.NoError(t, err)
	// A device this ledger has not enrolled (yet): its key exists, its
	// record does not.
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	d := &device{id: testnet.UniqueID(t, "ledger-gone"), signer: s}
	data := t.TempDir()
	outboxWith(t, data, d, 1, anchor)

	h, err := hub.New(hub.Config{HubID: "hub-parks", MQTTAddr: "127.0.0.1:0", DataDir: data, Ledger: c,
		BatchWait: 100 * time.Millisecond, ParkedRecheck: 500 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	require.Eventually(t, func() bool { return h.Outbox().Parked() == 1 }, waitFor, 100*time.Millisecond, "the reading was not parked")
	require.Zero(t, h.Outbox().Depth())
	hl := h.Health(t.Context())
	require.False(t, hl.OK)
	require.Equal(t, int64(1), hl.Parked)
	require.Equal(t, hub.IdentityVerified, hl.LedgerIdentity)

	_, err = op.EnrollDevice(t.Context(), api.EnrollRequest{ID: d.id, Type: "reefer-sensor", PublicKey: s.Public().PEM(), Activate: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.Outbox().Parked() == 0 && h.Outbox().Depth() == 0 }, waitFor, 200*time.Millisecond,
		"the parked reading was not submitted once the device was enrolled")
	require.True(t, committed(t, op, d.id, 1))
}

func TestHubCLIKeepsItsOutboxOutsideTheNetworkStateDirByDefault(t *testing.T) {
	state := t.TempDir()
	cmd := exec.Command(iotledgerBin, "hub", "--state-dir", fabric.StateDir(), "--org", "Org1", "--hub-id", "hub-default-data",
		"--mqtt", freeAddr(t), "--http", "", "--insecure-plaintext", "--no-events", "--log-level", "error")
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	var started string
	select {
	case started = <-line:
	case <-time.After(waitFor):
		t.Fatal("the hub did not start")
	}
	want := filepath.Join(state, "iotledger", "hubs", "org1-hub-default-data")
	require.True(t, strings.HasSuffix(started, "data "+want), started)
	require.FileExists(t, filepath.Join(want, "outbox.db"))
	require.NotContains(t, started, fabric.StateDir())
}
