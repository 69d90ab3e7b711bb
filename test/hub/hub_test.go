package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/sim"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/test/testnet"
)

// committed reports whether the ledger accepted reading seq of device: its
// replay state has it. The ledger keeps no readings; an org's index serves
// them.
func committed(t *testing.T, c *client.Client, device string, seq uint64) bool {
	t.Helper()
	seen, err := c.Seen(t.Context(), device, []uint64{seq})
	return err == nil && seen.Seqs[0].State == api.SeqAccepted
}

// indexedSeqs counts the readings of device in an index by sequence number.
func indexedSeqs(t *testing.T, ix *testnet.Index, device string) map[uint64]int {
	t.Helper()
	n := map[uint64]int{}
	q := index.ReadingQuery{Device: device, Limit: 1000}
	for {
		page, err := ix.Readings(t.Context(), q)
		require.NoError(t, err)
		for _, r := range page {
			n[r.Seq]++
		}
		if len(page) < q.Limit {
			return n
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
}

func TestSignedReadingReachesLedgerAndItsProofVerifies(t *testing.T) {
	op := connect(t, "operator")
	h := startHub(t, "hub-proof")
	d := enroll(t, op, testnet.UniqueID(t, "proof"))
	require.NoError(t, d.dial(t, h.MQTTAddr(), "hub-proof"))
	env := d.publishReading(t, 1, 4.2)

	require.Eventually(t, func() bool { return committed(t, op, d.id, 1) }, waitFor, 200*time.Millisecond, "reading never reached the ledger")
	// The ledger holds exactly the bytes the device signed: Org1's index
	// reads them from the block that committed them.
	ix := testnet.StartIndex(t, fabric, "Org1")
	ix.Sync(t)
	stored, err := ix.Reading(t.Context(), d.id, 1)
	require.NoError(t, err)
	require.Equal(t, env.Payload, stored.Payload)
	require.Equal(t, env.Signature, stored.Signature)

	// Its proof verifies offline with the key the ledger enrolled, up to
	// the root the ledger keeps for its batch.
	proof, err := index.ReadingProof(t.Context(), ix, d.id, 1)
	require.NoError(t, err)
	dev, err := op.Device(t.Context(), d.id)
	require.NoError(t, err)
	proof.PublicKey = dev.PublicKey
	p, err := proof.Verify()
	require.NoError(t, err)
	require.Equal(t, d.id, p.Device)
	require.Equal(t, uint64(1), p.Seq)
	batch, err := op.Batch(t.Context(), proof.BatchID)
	require.NoError(t, err)
	require.Equal(t, batch.Root, proof.Root)
	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, waitFor, 100*time.Millisecond)
}

func TestRuleCommandReachesDeviceOverMQTTAndItsAckIsRecorded(t *testing.T) {
	op := connect(t, "operator")
	h := startHub(t, "hub-cmd")
	d := enroll(t, op, testnet.UniqueID(t, "reefer"))
	ruleID := testnet.UniqueID(t, "too-warm")
	_, err := op.PutRule(t.Context(), api.Rule{ID: ruleID, Selector: api.DeviceSelector{Devices: []string{d.id}},
		Condition: "reading.values.temperature > 8.0",
		Actions:   []api.RuleAction{{Type: api.ActionTypeCommand, Command: "set-setpoint", Params: json.RawMessage(`{"celsius":3}`), TTL: 600}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = op.DeleteRule(context.Background(), ruleID) })
	require.NoError(t, d.dial(t, h.MQTTAddr(), "hub-cmd"))

	d.publishReading(t, 1, 11.5) // an excursion: the rule issues a command in the telemetry transaction
	msg := d.next(t, wire.Topic(d.id, wire.KindCommands))
	var cmd api.Command
	require.NoError(t, json.Unmarshal(msg.Payload, &cmd))
	require.Equal(t, "set-setpoint", cmd.Name)
	require.Equal(t, d.id, cmd.Device)
	require.JSONEq(t, `{"celsius":3}`, string(cmd.Params))
	require.Eventually(t, func() bool {
		c, err := op.Command(t.Context(), cmd.ID)
		return err == nil && c.Status == api.CommandDelivered
	}, waitFor, 200*time.Millisecond, "command never marked delivered")

	d.publishAck(t, cmd.ID)
	require.Eventually(t, func() bool {
		c, err := op.Command(t.Context(), cmd.ID)
		return err == nil && c.Status == api.CommandAcked && c.Result == "setpoint lowered"
	}, waitFor, 200*time.Millisecond, "ack never recorded")
}

func TestRevocationDisconnectsConnectedDevice(t *testing.T) {
	op := connect(t, "operator")
	h := startHub(t, "hub-revoke")
	d := enroll(t, op, testnet.UniqueID(t, "revoke"))
	require.NoError(t, d.dial(t, h.MQTTAddr(), "hub-revoke"))
	d.publishReading(t, 1, 4)

	_, err := op.SetDeviceStatus(t.Context(), d.id, api.StatusRevoked, "stolen")
	require.NoError(t, err)
	select {
	case <-d.conn.Done():
	case <-time.After(waitFor):
		t.Fatal("revoked device still connected")
	}
	require.Error(t, d.dial(t, h.MQTTAddr(), "hub-revoke"), "a revoked device cannot reconnect")
}

// hubProcess is `iotledger hub` running as a child process.
type hubProcess struct {
	cmd  *exec.Cmd
	http string
	log  string
}

func runHubProcess(t *testing.T, hubID, mqttAddr, httpAddr, data string) *hubProcess {
	t.Helper()
	logPath := filepath.Join(data, fmt.Sprintf("hub-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(iotledgerBin, "hub", "--profile", fabric.ProfilePath("Org1"), "--identity", "hub",
		"--hub-id", hubID, "--mqtt", mqttAddr, "--http", httpAddr, "--data", data, "--log-level", "debug",
		"--insecure-plaintext") // its devices speak plain MQTT on loopback
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	_ = logFile.Close()
	p := &hubProcess{cmd: cmd, http: httpAddr, log: logPath}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("hub log %s:\n%s", logPath, tail(string(b), 60))
		}
	})
	require.Eventually(t, func() bool { return p.health(t) != nil }, waitFor, 200*time.Millisecond, "hub did not come up (log %s)", logPath)
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *hubProcess) health(t *testing.T) *hub.Health {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/healthz")
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	var h hub.Health
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return nil
	}
	return &h
}

// ingested reads iotledger_hub_readings_ingested_total from /metrics.
func (p *hubProcess) ingested(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "iotledger_hub_readings_ingested_total "); ok {
			var f float64
			_, _ = fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

func TestHubKilledMidStreamLosesNothingAndSubmitsNothingTwice(t *testing.T) {
	op := connect(t, "operator")
	data := t.TempDir()
	mqttAddr, httpAddr := freeAddr(t), freeAddr(t)
	const hubID = "hub-crash"
	first := runHubProcess(t, hubID, mqttAddr, httpAddr, data)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		rep sim.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := sim.Run(ctx, sim.Config{Hub: mqttAddr, HubID: hubID, Devices: 4, Rate: 25, Scenario: "cold-chain",
			KeysDir: t.TempDir(), Prefix: testnet.UniqueID(t, "crash"), Enroller: op, RecordAccepted: true, FirstSeq: 1, InsecurePlaintext: true})
		done <- result{rep, err}
	}()
	require.Eventually(t, func() bool { return first.ingested(t) >= 150 }, waitFor, 50*time.Millisecond, "devices never got going")

	// SIGKILL: no flush, no clean close of the outbox or the broker.
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	_ = first.cmd.Wait()

	second := runHubProcess(t, hubID, mqttAddr, httpAddr, data)
	// Every device must be back (a reconnected device first resends the
	// reading whose PUBACK the killed hub never sent) before the run ends.
	require.Eventually(t, func() bool {
		h := second.health(t)
		return h != nil && h.Devices == 4
	}, waitFor, 50*time.Millisecond, "devices did not come back")
	base := second.ingested(t)
	require.Eventually(t, func() bool { return second.ingested(t) >= base+100 }, waitFor, 50*time.Millisecond, "devices stalled after the restart")
	cancel()
	res := <-done
	require.NoError(t, res.err)
	rep := res.rep
	require.Empty(t, rep.Refused)
	require.Positive(t, rep.Reconnects, "devices reconnected to the restarted hub")

	require.Eventually(t, func() bool {
		h := second.health(t)
		return h != nil && h.OutboxDepth == 0
	}, waitFor, 200*time.Millisecond, "outbox never drained")

	// Every reading the hub acknowledged is on the ledger exactly once, and
	// nothing else is but, per device, the one reading it may have had in
	// flight when the run ended: stored by a hub before its PUBACK, which the
	// device never saw (a device publishes one reading at a time, so that is
	// the next seq). The replay state accepted each and none above that, and
	// Org1's index, which holds every reading the blocks committed, holds
	// each once and no other.
	ix := testnet.StartIndex(t, fabric, "Org1")
	ix.Sync(t)
	total := 0
	for dev, seqs := range rep.AcceptedSeqs {
		for chunk := range slices.Chunk(seqs, 500) {
			seen, err := op.Seen(t.Context(), dev, chunk)
			require.NoError(t, err)
			for _, s := range seen.Seqs {
				require.Equal(t, api.SeqAccepted, s.State, "device %s seq %d", dev, s.Seq)
			}
			inFlight := slices.Max(seqs) + 1
			require.Contains(t, []uint64{inFlight - 1, inFlight}, seen.HighWater, "device %s: the ledger holds a reading the device never sent", dev)
		}
		onLedger := indexedSeqs(t, ix, dev)
		for _, s := range seqs {
			require.Equal(t, 1, onLedger[s], "device %s seq %d", dev, s)
		}
		require.LessOrEqual(t, onLedger[slices.Max(seqs)+1], 1, "device %s: the reading in flight at the end is on the ledger twice", dev)
		delete(onLedger, slices.Max(seqs)+1) // the reading in flight at the end, if a hub stored it
		require.Len(t, onLedger, len(seqs), "device %s: the ledger holds readings the hub never acknowledged", dev)
		total += len(seqs)
	}
	require.Equal(t, int64(total), rep.Accepted)
	t.Logf("%d readings acknowledged across a SIGKILL, each on the ledger once", total)
	if b, err := os.ReadFile(second.log); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "recover") {
				t.Log("restarted hub:", line)
			}
		}
	}

	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, second.cmd.Wait(), "graceful shutdown")
}

func TestTwoHubsSideBySideEachServeTheirDevices(t *testing.T) {
	op := connect(t, "operator")
	a, b := startHub(t, "hub-east"), startHub(t, "hub-west")
	da, db := enroll(t, op, testnet.UniqueID(t, "east")), enroll(t, op, testnet.UniqueID(t, "west"))
	require.NoError(t, da.dial(t, a.MQTTAddr(), "hub-east"))
	require.NoError(t, db.dial(t, b.MQTTAddr(), "hub-west"))
	// A token is bound to the hub it was made for.
	stray := enroll(t, op, testnet.UniqueID(t, "stray"))
	require.Error(t, stray.dial(t, b.MQTTAddr(), "hub-east"))

	for seq := uint64(1); seq <= 3; seq++ {
		da.publishReading(t, seq, 4)
		db.publishReading(t, seq, 5)
	}
	for _, d := range []*device{da, db} {
		require.Eventually(t, func() bool {
			seen, err := op.Seen(t.Context(), d.id, []uint64{1, 2, 3})
			return err == nil && !slices.ContainsFunc(seen.Seqs, func(s api.SeqSeen) bool { return s.State != api.SeqAccepted })
		}, waitFor, 200*time.Millisecond, "readings of %s missing", d.id)
	}
}
