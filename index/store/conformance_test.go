package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/receipt"
)

// TestConformance runs every store through the same cases.
func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, be backend)
	}{
		{"empty checkpoint", testEmptyCheckpoint},
		{"apply in order", testApplyInOrder},
		{"out of order and repeated blocks", testOutOfOrder},
		{"concurrent appliers", testConcurrentApply},
		{"reopen between blocks", testReopen},
		{"failing block rolls back", testRollback},
		{"readings queries", testReadingsQueries},
		{"batch readings", testBatchReadings},
		{"audit trail", testAudit},
		{"events", testEvents},
		{"invalid transactions", testInvalid},
		{"not found", testNotFound},
		{"chain state", testChainState},
		{"throughput", testThroughput},
	}
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, be) })
			}
		})
	}
}

func testEmptyCheckpoint(t *testing.T, be backend) {
	s, _ := openFresh(t, be)
	next, hash, err := s.Checkpoint(context.Background())
	require.NoError(t, err)
	require.Zero(t, next)
	require.Nil(t, hash)
}

func testApplyInOrder(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	for n := uint64(0); n < 3; n++ {
		apply(t, s, block(n, batchTx(fmt.Sprintf("tx%d", n), devReadings("dev1", n*10+1, 10)...)))
		next, hash, err := s.Checkpoint(ctx)
		require.NoError(t, err)
		require.Equal(t, n+1, next)
		require.Equal(t, blockHash(n), hash)
	}
	// An empty block (e.g. of config transactions only) moves the
	// checkpoint too.
	apply(t, s, block(3))
	next, hash, err := s.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), next)
	require.Equal(t, blockHash(3), hash)

	got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
	require.NoError(t, err)
	require.Equal(t, seqRange(1, 30), seqs(got))
	want := devReadings("dev1", 11, 10)[3]
	want.BatchTx, want.Index, want.Block = "tx1", 3, 1
	r, err := s.Reading(ctx, "dev1", 14)
	require.NoError(t, err)
	require.Equal(t, want, *r)
	require.Equal(t, want, got[13])

	bt, err := s.Batch(ctx, "tx2")
	require.NoError(t, err)
	wantBatch := *block(2, batchTx("tx2", devReadings("dev1", 21, 10)...)).Transactions[0].Batch
	require.Equal(t, wantBatch, *bt)
}

func testOutOfOrder(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	apply(t, s, block(0, batchTx("tx0", devReadings("dev1", 1, 5)...)), block(1, batchTx("tx1", devReadings("dev1", 6, 5)...)))

	for _, c := range []struct {
		name   string
		number uint64
	}{
		{"gap", 3},
		{"far ahead", 1 << 40},
		{"repeated last", 1},
		{"repeated first", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := block(c.number, batchTx("tx-bad", reading("dev2", 1, 1)), eventTx("tx-ev", "rule:Fire",
				&api.Event{Type: "rule.fired", Alerts: []api.Alert{{Rule: "r", Device: "dev2", Seq: 1}}}, "dev2"))
			err := s.Apply(ctx, b)
			require.ErrorIs(t, err, index.ErrOutOfOrder)
			require.ErrorContains(t, err, fmt.Sprintf("expected block 2, got %d", c.number))

			next, hash, err := s.Checkpoint(ctx)
			require.NoError(t, err)
			require.Equal(t, uint64(2), next)
			require.Equal(t, blockHash(1), hash)
			requireNothingOf(t, s, "dev2", "tx-bad")
		})
	}
	got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
	require.NoError(t, err)
	require.Equal(t, seqRange(1, 10), seqs(got))
}

// requireNothingOf checks that nothing of a device and batch is stored.
func requireNothingOf(t *testing.T, s index.Store, device, batchTx string) {
	t.Helper()
	ctx := context.Background()
	rs, err := s.Readings(ctx, index.ReadingQuery{Device: device})
	require.NoError(t, err)
	require.Empty(t, rs)
	rs, err = s.BatchReadings(ctx, batchTx)
	require.NoError(t, err)
	require.Empty(t, rs)
	_, err = s.Batch(ctx, batchTx)
	require.ErrorIs(t, err, index.ErrNotFound)
	audit, err := s.Audit(ctx, device, 0)
	require.NoError(t, err)
	require.Empty(t, audit)
	alerts, err := s.Alerts(ctx, device, 0)
	require.NoError(t, err)
	require.Empty(t, alerts)
	cmds, err := s.Commands(ctx, device, 0)
	require.NoError(t, err)
	require.Empty(t, cmds)
	changes, err := s.StatusChanges(ctx, device, 0)
	require.NoError(t, err)
	require.Empty(t, changes)
}

// testConcurrentApply has two appliers race with the same blocks: each
// block is applied once, the loser told it is out of order.
func testConcurrentApply(t *testing.T, be backend) {
	ctx := context.Background()
	s, reopen := openFresh(t, be)
	other := reopen()
	const blocks = 10
	var (
		wg      sync.WaitGroup
		applied [2]int
		errs    [2]error
	)
	for w, st := range []index.Store{s, other} {
		wg.Go(func() {
			for n := uint64(0); n < blocks; n++ {
				err := st.Apply(ctx, bulkBlock(n, "dev1", n*10+1, 1, 10))
				switch {
				case err == nil:
					applied[w]++
				case errors.Is(err, index.ErrOutOfOrder):
				default:
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, blocks, applied[0]+applied[1])
	got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
	require.NoError(t, err)
	require.Equal(t, seqRange(1, blocks*10), seqs(got))
}

// testReopen closes the index between blocks (as a crash would, once the
// last transaction committed) and goes on where it stopped.
func testReopen(t *testing.T, be backend) {
	ctx := context.Background()
	s, reopen := openFresh(t, be)
	apply(t, s, bulkBlock(0, "dev1", 1, 2, 5), bulkBlock(1, "dev1", 11, 2, 5))

	// A block whose Apply is cancelled leaves nothing behind.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, s.Apply(cancelled, bulkBlock(2, "dev1", 21, 2, 5)))
	require.NoError(t, s.Close())

	s = reopen()
	next, hash, err := s.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), next)
	require.Equal(t, blockHash(1), hash)
	// The follower resumes from the checkpoint: a replay of what was
	// applied is refused, the next block goes in.
	require.ErrorIs(t, s.Apply(ctx, bulkBlock(1, "dev1", 11, 2, 5)), index.ErrOutOfOrder)
	apply(t, s, bulkBlock(2, "dev1", 21, 2, 5))
	require.NoError(t, s.Close())

	s = reopen()
	next, _, err = s.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), next)
	got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1", Limit: 1000})
	require.NoError(t, err)
	require.Equal(t, seqRange(1, 30), seqs(got))
	audit, err := s.Audit(ctx, "dev1", 0)
	require.NoError(t, err)
	require.Len(t, audit, 6)
}

// testRollback applies blocks one of whose inserts fails: nothing of the
// block is stored, the checkpoint does not move, and the block can be
// applied once corrected.
func testRollback(t *testing.T, be backend) {
	ctx := context.Background()
	good := func() *index.Block {
		return withChainState(block(1,
			eventTx("tx-cmd", "command:Send", &api.Event{Type: "command.sent",
				Commands: []api.Command{{ID: "c1", Device: "dev2", Name: "reboot", Status: api.CommandPending}}}, "dev2"),
			batchTx("tx-new", devReadings("dev2", 1, 3)...),
			eventTx("tx-alert", "rule:Fire", &api.Event{Type: "rule.fired",
				Alerts:        []api.Alert{{Rule: "hot", Device: "dev2", Seq: 2}},
				StatusChanges: []api.StatusChange{{Device: "dev2", From: api.StatusActive, To: api.StatusSuspended}}}, "dev2"),
		), []byte("config 1"), map[string][]byte{"k0": nil, "k1": []byte("policy 1")})
	}
	for _, c := range []struct {
		name  string
		spoil func(b *index.Block)
	}{
		{"duplicate reading in the block", func(b *index.Block) {
			tx := &b.Transactions[1]
			tx.Readings = append(tx.Readings, tx.Readings[0])
		}},
		{"reading already stored", func(b *index.Block) {
			tx := &b.Transactions[1]
			dup := reading("dev1", 3, 3)
			dup.BatchTx, dup.Block = "tx-new", 1
			tx.Readings = append(tx.Readings, dup)
		}},
		{"duplicate batch", func(b *index.Block) {
			b.Transactions[1].Batch.TxID = "tx0"
		}},
		{"duplicate transaction position", func(b *index.Block) {
			b.Transactions[2].Index = 1
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openFresh(t, be)
			apply(t, s, withChainState(block(0, batchTx("tx0", devReadings("dev1", 1, 5)...)),
				[]byte("config 0"), map[string][]byte{"k0": []byte("policy 0")}))
			b := good()
			c.spoil(b)
			err := s.Apply(ctx, b)
			require.Error(t, err)
			require.NotErrorIs(t, err, index.ErrOutOfOrder)

			next, hash, err := s.Checkpoint(ctx)
			require.NoError(t, err)
			require.Equal(t, uint64(1), next)
			require.Equal(t, blockHash(0), hash)
			requireNothingOf(t, s, "dev2", "tx-new")
			requireChainState(t, s, receipt.ChainState{Next: 1, LastHash: blockHash(0), Config: []byte("config 0"),
				Policies: map[string][]byte{"k0": []byte("policy 0")}})
			got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
			require.NoError(t, err)
			require.Equal(t, seqRange(1, 5), seqs(got))

			apply(t, s, good())
			got, err = s.Readings(ctx, index.ReadingQuery{Device: "dev2"})
			require.NoError(t, err)
			require.Equal(t, seqRange(1, 3), seqs(got))
			audit, err := s.Audit(ctx, "dev2", 0)
			require.NoError(t, err)
			require.Len(t, audit, 3)
			requireChainState(t, s, receipt.ChainState{Next: 2, LastHash: blockHash(1), Config: []byte("config 1"),
				Policies: map[string][]byte{"k1": []byte("policy 1")}})
		})
	}
}

func withChainState(b *index.Block, config []byte, policies map[string][]byte) *index.Block {
	b.Config, b.Policies = config, policies
	return b
}

func requireChainState(t *testing.T, s index.Store, want receipt.ChainState) {
	t.Helper()
	got, err := s.ChainState(context.Background())
	require.NoError(t, err)
	require.Equal(t, want, *got)
}

// testChainState: the verifier's state is saved with each block: the
// config block in force and the key-level policies.
func testChainState(t *testing.T, be backend) {
	s, reopen := openFresh(t, be)
	requireChainState(t, s, receipt.ChainState{Policies: map[string][]byte{}})

	composite := "\x00device\x00dev1\x00"
	apply(t, s, withChainState(block(0), []byte("genesis config"), map[string][]byte{
		composite: []byte("owner policy"),
		"plain":   []byte("plain policy"),
	}))
	requireChainState(t, s, receipt.ChainState{Next: 1, LastHash: blockHash(0), Config: []byte("genesis config"),
		Policies: map[string][]byte{composite: []byte("owner policy"), "plain": []byte("plain policy")}})

	// Changed, removed and added policies; no new config.
	apply(t, s, withChainState(block(1, batchTx("tx1", reading("dev1", 1, 1))), nil, map[string][]byte{
		composite: []byte("new owner policy"),
		"plain":   nil,
		"gone":    nil, // never set
		"new":     []byte("new policy"),
	}))
	want := receipt.ChainState{Next: 2, LastHash: blockHash(1), Config: []byte("genesis config"),
		Policies: map[string][]byte{composite: []byte("new owner policy"), "new": []byte("new policy")}}
	requireChainState(t, s, want)

	// Kept across a restart; a config block replaces the config.
	require.NoError(t, s.Close())
	s = reopen()
	requireChainState(t, s, want)
	apply(t, s, withChainState(block(2), []byte("config update"), nil))
	want.Next, want.LastHash, want.Config = 3, blockHash(2), []byte("config update")
	requireChainState(t, s, want)

	// Many policies in one block.
	many := map[string][]byte{}
	for i := range 1200 {
		many[fmt.Sprintf("key %04d", i)] = fmt.Appendf(nil, "policy %d", i)
	}
	apply(t, s, withChainState(block(3), nil, many))
	removeAll := map[string][]byte{}
	for k := range many {
		removeAll[k] = nil
	}
	apply(t, s, withChainState(block(4), nil, removeAll))
	want.Next, want.LastHash = 5, blockHash(4)
	requireChainState(t, s, want)
}

func testReadingsQueries(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	// dev1: seq 1..1200, ts t0 + seq s, in 3 blocks; dev0 and dev2 around.
	for n := uint64(0); n < 3; n++ {
		rs := devReadings("dev1", n*400+1, 400)
		apply(t, s, block(n,
			batchTx(fmt.Sprintf("a%d", n), devReadings("dev0", n*2+1, 2)...),
			batchTx(fmt.Sprintf("b%d", n), rs[:200]...),
			batchTx(fmt.Sprintf("c%d", n), append(rs[200:], devReadings("dev2", n*2+1, 2)...)...)))
	}
	at := func(seq int64) time.Time { return time.UnixMilli(t0.UnixMilli() + seq*1000) }
	for _, c := range []struct {
		name string
		q    index.ReadingQuery
		want []uint64
	}{
		{"default limit", index.ReadingQuery{}, seqRange(1, 100)},
		{"limit", index.ReadingQuery{Limit: 5}, seqRange(1, 5)},
		{"limit capped", index.ReadingQuery{Limit: 5000}, seqRange(1, 1000)},
		{"negative limit", index.ReadingQuery{Limit: -1}, seqRange(1, 100)},
		{"range inclusive", index.ReadingQuery{From: at(10), To: at(20)}, seqRange(10, 20)},
		{"range inside a second", index.ReadingQuery{From: at(10).Add(time.Millisecond), To: at(20).Add(-time.Millisecond)}, seqRange(11, 19)},
		{"one instant", index.ReadingQuery{From: at(7), To: at(7)}, []uint64{7}},
		{"from only", index.ReadingQuery{From: at(1190)}, seqRange(1190, 1200)},
		{"to only", index.ReadingQuery{To: at(3)}, seqRange(1, 3)},
		{"empty range", index.ReadingQuery{From: at(20), To: at(10)}, nil},
		{"range before all", index.ReadingQuery{To: at(0)}, nil},
		{"after seq", index.ReadingQuery{AfterSeq: 1195}, seqRange(1196, 1200)},
		{"after seq pages", index.ReadingQuery{AfterSeq: 100, Limit: 3}, seqRange(101, 103)},
		{"after last", index.ReadingQuery{AfterSeq: 1200}, nil},
		{"after seq in range", index.ReadingQuery{From: at(10), To: at(20), AfterSeq: 15}, seqRange(16, 20)},
		{"newest", index.ReadingQuery{Newest: true, Limit: 3}, seqRange(1200, 1198)},
		{"newest default limit", index.ReadingQuery{Newest: true}, seqRange(1200, 1101)},
		{"newest capped", index.ReadingQuery{Newest: true, Limit: 1001}, seqRange(1200, 201)},
		{"newest in range", index.ReadingQuery{Newest: true, From: at(10), To: at(20), Limit: 4}, seqRange(20, 17)},
		{"newest after seq", index.ReadingQuery{Newest: true, AfterSeq: 1197}, seqRange(1200, 1198)},
		{"huge after seq", index.ReadingQuery{AfterSeq: 1<<64 - 1}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			q.Device = "dev1"
			got, err := s.Readings(ctx, q)
			require.NoError(t, err)
			require.Equal(t, c.want, seqs(got))
			for _, r := range got {
				require.Equal(t, "dev1", r.Device)
			}
		})
	}
	got, err := s.Readings(ctx, index.ReadingQuery{Device: "dev0", Limit: 1000})
	require.NoError(t, err)
	require.Equal(t, seqRange(1, 6), seqs(got))
	got, err = s.Readings(ctx, index.ReadingQuery{Device: "nobody"})
	require.NoError(t, err)
	require.Empty(t, got)
}

func testBatchReadings(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	tx := batchTx("tx0", reading("dev2", 9, 9), reading("dev1", 3, 3), reading("dev1", 1, 1))
	// Stored in another order than the batch's.
	tx.Readings[0], tx.Readings[2] = tx.Readings[2], tx.Readings[0]
	priv := batchTx("tx1", reading("dev3", 1, 1))
	priv.Batch.Private = true
	priv.Readings[0].Private = true
	priv.Readings[0].Payload = nil // another org's view: the hash only
	priv.Readings[0].Values = nil
	apply(t, s, block(0, tx, priv))

	got, err := s.BatchReadings(ctx, "tx0")
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, r := range got {
		require.Equal(t, i, r.Index)
		require.Equal(t, "tx0", r.BatchTx)
	}
	require.Equal(t, []string{"dev2", "dev1", "dev1"}, []string{got[0].Device, got[1].Device, got[2].Device})

	got, err = s.BatchReadings(ctx, "tx1")
	require.NoError(t, err)
	require.Equal(t, []index.Reading{priv.Readings[0]}, got)
	require.Nil(t, got[0].Payload)
	require.Nil(t, got[0].Values)
	bt, err := s.Batch(ctx, "tx1")
	require.NoError(t, err)
	require.True(t, bt.Private)

	got, err = s.BatchReadings(ctx, "no-such-batch")
	require.NoError(t, err)
	require.Empty(t, got)
}

func testAudit(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	enroll := eventTx("tx-enroll", "device:Enroll", &api.Event{Type: api.EventDeviceEnrolled}, "dev1")
	enroll.Time = t0.Add(-time.Hour)
	other := eventTx("tx-other", "device:Enroll", &api.Event{Type: api.EventDeviceEnrolled}, "dev2")
	conflict := eventTx("tx-conflict", "device:Update", &api.Event{Type: api.EventDeviceUpdated}, "dev1")
	conflict.ValidationCode = "MVCC_READ_CONFLICT"
	both := eventTx("tx-both", "device:Transfer", &api.Event{Type: api.EventDeviceTransfer}, "dev1", "dev2", "dev2")
	config := index.Transaction{TxID: "tx-config", ValidationCode: "VALID", Devices: []string{"dev1"}}
	apply(t, s,
		block(0, enroll, other),
		block(1, conflict, batchTx("tx-batch", devReadings("dev1", 1, 3)...), both),
		block(2, config))

	audit, err := s.Audit(ctx, "dev1", 0)
	require.NoError(t, err)
	require.Equal(t, []index.AuditEntry{
		{Block: 0, Index: 0, TxID: "tx-enroll", Time: t0.Add(-time.Hour), Function: "device:Enroll",
			CreatorMSP: "Org1MSP", Creator: "CN=admin,OU=admin,O=Org1", Endorsers: []string{"Org1MSP"},
			ValidationCode: "VALID", EventType: api.EventDeviceEnrolled},
		{Block: 1, Index: 0, TxID: "tx-conflict", Time: t0, Function: "device:Update",
			CreatorMSP: "Org1MSP", Creator: "CN=admin,OU=admin,O=Org1", Endorsers: []string{"Org1MSP"},
			ValidationCode: "MVCC_READ_CONFLICT"},
		{Block: 1, Index: 1, TxID: "tx-batch", Time: t0.Add(123456789), Function: "telemetry:SubmitBatch",
			CreatorMSP: "Org1MSP", Creator: "CN=hub1,OU=client,O=Org1", Endorsers: []string{"Org1MSP", "Org2MSP"},
			ValidationCode: "VALID", EventType: "telemetry.batch"},
		{Block: 1, Index: 2, TxID: "tx-both", Time: t0, Function: "device:Transfer",
			CreatorMSP: "Org1MSP", Creator: "CN=admin,OU=admin,O=Org1", Endorsers: []string{"Org1MSP"},
			ValidationCode: "VALID", EventType: api.EventDeviceTransfer},
		{Block: 2, Index: 0, TxID: "tx-config", Endorsers: []string{}, ValidationCode: "VALID"},
	}, audit)

	audit, err = s.Audit(ctx, "dev2", 0)
	require.NoError(t, err)
	require.Equal(t, []string{"tx-other", "tx-both"}, auditTxs(audit))

	audit, err = s.Audit(ctx, "dev1", 2)
	require.NoError(t, err)
	require.Equal(t, []string{"tx-enroll", "tx-conflict"}, auditTxs(audit))

	audit, err = s.Audit(ctx, "dev9", 0)
	require.NoError(t, err)
	require.Empty(t, audit)
}

func auditTxs(es []index.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.TxID
	}
	return out
}

func testEvents(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	issued := t0.Add(time.Minute)
	delivered := issued.Add(time.Second)
	cmd := func(id, device string, status api.CommandStatus) api.Command {
		c := api.Command{ID: id, Device: device, Owner: "Org1MSP", Name: "reboot", Params: json.RawMessage(`{"delay":5}`),
			Status: status, IssuedBy: "rule:hot", IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
		if status != api.CommandPending {
			c.DeliveredBy, c.DeliveredAt = "hub1", &delivered
		}
		return c
	}
	fire := eventTx("tx-fire", "telemetry:SubmitBatch", &api.Event{Type: "telemetry.batch",
		Alerts: []api.Alert{
			{Rule: "hot", Device: "dev1", Seq: 7, Severity: "critical", Message: "too hot"},
			{Rule: "hot", Device: "dev2", Seq: 3, Severity: "warning", Message: "warm"},
		},
		Commands: []api.Command{cmd("c1", "dev1", api.CommandPending), cmd("c2", "dev2", api.CommandPending)},
		StatusChanges: []api.StatusChange{
			{Device: "dev1", Owner: "Org1MSP", From: api.StatusActive, To: api.StatusSuspended, Reason: "too hot", Cause: "rule:hot"},
		},
	}, "dev1", "dev2")
	deliver := eventTx("tx-deliver", "command:Deliver", &api.Event{Type: "command.delivered",
		Commands: []api.Command{cmd("c1", "dev1", api.CommandDelivered)}}, "dev1")
	apply(t, s, block(0, fire, deliver))

	acked := cmd("c1", "dev1", "acked")
	acked.Result, acked.CompletedAt, acked.CompletedByTx = "ok", &delivered, "tx-ack"
	apply(t, s, block(1,
		eventTx("tx-ack", "command:Ack", &api.Event{Type: "command.acked", Commands: []api.Command{acked}}, "dev1"),
		eventTx("tx-third", "command:Send", &api.Event{Type: "command.sent",
			Commands: []api.Command{cmd("c3", "dev1", api.CommandPending)}}, "dev1"),
		eventTx("tx-status", "device:SetStatus", &api.Event{Type: api.EventDeviceStatus,
			Alerts: []api.Alert{{Rule: "offline", Device: "dev1", Seq: 9, Severity: "info", Message: "back"}},
			StatusChanges: []api.StatusChange{
				{Device: "dev1", Owner: "Org1MSP", From: api.StatusSuspended, To: api.StatusActive, Cause: "admin"},
				{Device: "dev2", Owner: "Org1MSP", From: api.StatusActive, To: api.StatusRevoked, Reason: "stolen", Cause: "admin"},
			}}, "dev1", "dev2"),
	))

	t.Run("alerts newest first", func(t *testing.T) {
		alerts, err := s.Alerts(ctx, "", 0)
		require.NoError(t, err)
		require.Equal(t, []api.Alert{
			{Rule: "offline", Device: "dev1", Seq: 9, Severity: "info", Message: "back"},
			{Rule: "hot", Device: "dev2", Seq: 3, Severity: "warning", Message: "warm"},
			{Rule: "hot", Device: "dev1", Seq: 7, Severity: "critical", Message: "too hot"},
		}, alerts)
		alerts, err = s.Alerts(ctx, "dev2", 0)
		require.NoError(t, err)
		require.Len(t, alerts, 1)
		require.Equal(t, uint64(3), alerts[0].Seq)
		alerts, err = s.Alerts(ctx, "dev1", 1)
		require.NoError(t, err)
		require.Len(t, alerts, 1)
		require.Equal(t, "offline", alerts[0].Rule)
	})
	t.Run("commands latest state newest first", func(t *testing.T) {
		cmds, err := s.Commands(ctx, "", 0)
		require.NoError(t, err)
		require.Equal(t, []api.Command{cmd("c3", "dev1", api.CommandPending), cmd("c2", "dev2", api.CommandPending), acked}, cmds)
		cmds, err = s.Commands(ctx, "dev1", 0)
		require.NoError(t, err)
		require.Equal(t, []api.Command{cmd("c3", "dev1", api.CommandPending), acked}, cmds)
		cmds, err = s.Commands(ctx, "dev1", 1)
		require.NoError(t, err)
		require.Len(t, cmds, 1)
		require.Equal(t, "c3", cmds[0].ID)
	})
	t.Run("status changes oldest first", func(t *testing.T) {
		changes, err := s.StatusChanges(ctx, "", 0)
		require.NoError(t, err)
		require.Equal(t, []api.StatusChange{
			{Device: "dev1", Owner: "Org1MSP", From: api.StatusActive, To: api.StatusSuspended, Reason: "too hot", Cause: "rule:hot"},
			{Device: "dev1", Owner: "Org1MSP", From: api.StatusSuspended, To: api.StatusActive, Cause: "admin"},
			{Device: "dev2", Owner: "Org1MSP", From: api.StatusActive, To: api.StatusRevoked, Reason: "stolen", Cause: "admin"},
		}, changes)
		changes, err = s.StatusChanges(ctx, "dev2", 0)
		require.NoError(t, err)
		require.Len(t, changes, 1)
		require.Equal(t, api.StatusRevoked, changes[0].To)
		changes, err = s.StatusChanges(ctx, "dev1", 1)
		require.NoError(t, err)
		require.Len(t, changes, 1)
		require.Equal(t, api.StatusSuspended, changes[0].To)
	})
}

// testInvalid: an invalid transaction is in the audit trail, and adds
// nothing else.
func testInvalid(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	bad := batchTx("tx-bad", devReadings("dev1", 1, 3)...)
	bad.ValidationCode = "ENDORSEMENT_POLICY_FAILURE"
	bad.Event.Alerts = []api.Alert{{Rule: "hot", Device: "dev1", Seq: 1}}
	bad.Event.Commands = []api.Command{{ID: "c1", Device: "dev1", Status: api.CommandPending}}
	bad.Event.StatusChanges = []api.StatusChange{{Device: "dev1", From: api.StatusActive, To: api.StatusSuspended}}
	dup := batchTx("tx-ok", devReadings("dev1", 1, 3)...)
	dup.ValidationCode = "DUPLICATE_TXID"
	apply(t, s, block(0, bad, dup))

	audit, err := s.Audit(ctx, "dev1", 0)
	require.NoError(t, err)
	require.Len(t, audit, 2)
	require.Equal(t, "ENDORSEMENT_POLICY_FAILURE", audit[0].ValidationCode)
	require.Equal(t, "tx-bad", audit[0].TxID)
	require.Empty(t, audit[0].EventType)
	require.Equal(t, "DUPLICATE_TXID", audit[1].ValidationCode)

	rs, err := s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
	require.NoError(t, err)
	require.Empty(t, rs)
	_, err = s.Batch(ctx, "tx-bad")
	require.ErrorIs(t, err, index.ErrNotFound)
	alerts, err := s.Alerts(ctx, "", 0)
	require.NoError(t, err)
	require.Empty(t, alerts)
	cmds, err := s.Commands(ctx, "", 0)
	require.NoError(t, err)
	require.Empty(t, cmds)
	changes, err := s.StatusChanges(ctx, "", 0)
	require.NoError(t, err)
	require.Empty(t, changes)

	// The same readings, validly committed later, go in.
	apply(t, s, block(1, batchTx("tx-ok2", devReadings("dev1", 1, 3)...)))
	rs, err = s.Readings(ctx, index.ReadingQuery{Device: "dev1"})
	require.NoError(t, err)
	require.Equal(t, seqRange(1, 3), seqs(rs))
}

func testNotFound(t *testing.T, be backend) {
	ctx := context.Background()
	s, _ := openFresh(t, be)
	apply(t, s, block(0, batchTx("tx0", devReadings("dev1", 1, 3)...)))
	for _, c := range []struct {
		name string
		get  func() error
	}{
		{"reading of another seq", func() error { _, err := s.Reading(ctx, "dev1", 4); return err }},
		{"reading of another device", func() error { _, err := s.Reading(ctx, "dev2", 1); return err }},
		{"reading of a huge seq", func() error { _, err := s.Reading(ctx, "dev1", 1<<63); return err }},
		{"batch", func() error { _, err := s.Batch(ctx, "tx1"); return err }},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.get()
			require.ErrorIs(t, err, index.ErrNotFound)
		})
	}
	_, err := s.Reading(ctx, "dev1", 3)
	require.NoError(t, err)
}
