// Package index_test runs each org's index on a real network: Org1's on
// SQLite, Org2's on a real PostgreSQL server the test starts. Both follow
// the channel from their own peer, verify every block, resume after a
// stop without gaps or duplicates, and refuse a tampered block.
package index_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/pgtest"
	"github.com/iotledger/iotledger/index/store"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
	"github.com/iotledger/iotledger/test/testnet"
)

var fabric *network.Network

func TestMain(m *testing.M) { os.Exit(testnet.Run(m, &fabric)) }

func connect(t *testing.T, org, identity string) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(context.Background(), p, identity)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func anchor(t *testing.T, c *client.Client) receipt.Anchor {
	a, _, err := c.TrustAnchor(t.Context())
	require.NoError(t, err)
	return a
}

// follow runs a follower until the test ends or stop is called; the
// returned channel has its error.
func follow(t *testing.T, st index.Store, src index.BlockSource, a receipt.Anchor) (stop func(), done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- index.NewFollower(st, src, a, "iotledger", nil).Run(ctx) }()
	t.Cleanup(cancel)
	return cancel, errc
}

// caughtUp waits until the index has applied block n.
func caughtUp(t *testing.T, st index.Store, n uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		next, _, err := st.Checkpoint(t.Context())
		require.NoError(t, err)
		if next > n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the index reached block %d, not %d", next, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type world struct {
	op, hub *client.Client
	device  string
	signer  *reading.Signer
	batches []string // transaction IDs
	last    uint64   // block of the last transaction
}

func (w *world) block(t *testing.T, txID string) uint64 {
	b, err := w.op.BlockByTxID(t.Context(), txID)
	require.NoError(t, err)
	return b.GetHeader().GetNumber()
}

func (w *world) submit(t *testing.T, seqs ...uint64) {
	t.Helper()
	var envs []reading.Envelope
	for _, s := range seqs {
		v := float64(s)
		env, err := w.signer.SignReading(reading.Payload{Device: w.device, Seq: s, Timestamp: int64(1_800_000_000_000 + s),
			Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}})
		require.NoError(t, err)
		envs = append(envs, env)
	}
	rc, err := w.hub.SubmitBatch(t.Context(), api.BatchRequest{Readings: envs})
	require.NoError(t, err)
	w.batches = append(w.batches, rc.BatchID)
	w.last = max(w.last, w.block(t, rc.BatchID))
}

func newWorld(t *testing.T) *world {
	w := &world{op: connect(t, "Org1", "operator"), hub: connect(t, "Org1", "hub"), device: testnet.UniqueID(t, "idx")}
	var err error
	w.signer, err = reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	d, err := w.op.EnrollDevice(t.Context(), api.EnrollRequest{ID: w.device, Type: "fridge", PublicKey: w.signer.Public().PEM(), Activate: true})
	require.NoError(t, err)
	w.last = w.block(t, d.UpdatedByTx)
	testnet.Settle(t.Context(), t, fabric)
	return w
}

func stores(t *testing.T) map[string]func(t *testing.T) index.Store {
	return map[string]func(t *testing.T) index.Store{
		"sqlite": func(t *testing.T) index.Store {
			st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "index.db"))
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
		"postgres": func(t *testing.T) index.Store {
			st, err := store.OpenPostgres(t.Context(), pgtest.Start(t))
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
	}
}

func TestAnIndexFollowsTheChannelAndResumesWithoutGapsOrDuplicates(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			org := map[string]string{"sqlite": "Org1", "postgres": "Org2"}[name]
			reader := connect(t, org, "auditor")
			st := open(t)
			a := anchor(t, reader)
			stop, done := follow(t, st, reader, a)

			w.submit(t, 1, 2, 3)
			caughtUp(t, st, w.last)
			stop()
			require.ErrorIs(t, <-done, context.Canceled)

			// Stopped: the ledger goes on.
			w.submit(t, 4, 5)
			_, err := w.op.SetDeviceStatus(t.Context(), w.device, api.StatusRevoked, "stolen")
			require.NoError(t, err)
			testnet.Settle(t.Context(), t, fabric)
			d, err := w.op.Device(t.Context(), w.device)
			require.NoError(t, err)
			w.last = max(w.last, w.block(t, d.UpdatedByTx))

			_, done = follow(t, st, reader, a)
			caughtUp(t, st, w.last)

			rs, err := st.Readings(t.Context(), index.ReadingQuery{Device: w.device, Limit: 100})
			require.NoError(t, err)
			require.Len(t, rs, 5, "every reading once, across the restart")
			for i, r := range rs {
				require.Equal(t, uint64(i+1), r.Seq)
				require.NotEmpty(t, r.Payload)
				require.NoError(t, w.signer.Public().Verify(reading.Message(reading.DomainReading, r.Payload), r.Signature), "the device's own bytes")
			}
			r, err := st.Reading(t.Context(), w.device, 2)
			require.NoError(t, err)
			require.Equal(t, w.batches[0], r.BatchTx)
			require.Equal(t, 1, r.Index)
			b, err := st.Batch(t.Context(), w.batches[1])
			require.NoError(t, err)
			require.Equal(t, 2, b.Size)
			require.Equal(t, "Org1MSP", b.MSPID)

			// The org's own index and its own peer give an auditor a
			// receipt (Org2's index holds Org1's public readings too).
			p, err := index.ReadingProof(t.Context(), st, w.device, 2)
			require.NoError(t, err)
			rc, err := reader.ReadingReceipt(t.Context(), p)
			require.NoError(t, err)
			data, err := rc.Marshal()
			require.NoError(t, err)
			res, err := receipt.Verify(data, a)
			require.NoError(t, err)
			require.Equal(t, uint64(2), res.Reading.Seq)
			require.Equal(t, api.StatusActive, res.Status, "the record in force when the batch committed, before the revocation")

			audit, err := st.Audit(t.Context(), w.device, 100)
			require.NoError(t, err)
			var fns []string
			for _, e := range audit {
				fns = append(fns, e.Function)
				require.Equal(t, "VALID", e.ValidationCode)
				require.Equal(t, "Org1MSP", e.CreatorMSP)
				require.NotEmpty(t, e.Endorsers)
			}
			require.Equal(t, []string{"device:Enroll", "telemetry:SubmitBatch", "telemetry:SubmitBatch", "device:Revoke"}, fns)
			require.Equal(t, []string{"Org1MSP"}, audit[3].Endorsers, "the owner revokes with its own endorsement (the record's key-level policy)")
			changes, err := st.StatusChanges(t.Context(), w.device, 10)
			require.NoError(t, err)
			require.NotEmpty(t, changes)
			require.Equal(t, api.StatusRevoked, changes[len(changes)-1].To)
			select {
			case err := <-done:
				t.Fatalf("the follower stopped: %v", err)
			default:
			}
		})
	}
}

// tampering serves the peer's blocks with one transaction's bytes changed
// in block n (its data hash recomputed, as a lying peer would).
type tampering struct {
	src index.BlockSource
	n   uint64
}

func (s tampering) Blocks(ctx context.Context, from uint64) (<-chan *common.Block, error) {
	in, err := s.src.Blocks(ctx, from)
	if err != nil {
		return nil, err
	}
	out := make(chan *common.Block)
	go func() {
		defer close(out)
		for b := range in {
			if b.GetHeader().GetNumber() == s.n {
				b = proto.Clone(b).(*common.Block)
				d := b.Data.Data[0]
				d[len(d)-10] ^= 0x01
				var joined []byte
				for _, e := range b.Data.Data {
					joined = append(joined, e...)
				}
				sum := sha256Sum(joined)
				b.Header.DataHash = sum[:]
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func TestAnIndexRefusesATamperedBlockAndStaysAtTheLastGoodOne(t *testing.T) {
	w := newWorld(t)
	reader := connect(t, "Org1", "auditor")
	w.submit(t, 1)
	st := stores(t)["sqlite"](t)
	_, done := follow(t, st, tampering{src: reader, n: w.last}, anchor(t, reader))
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the follower took a tampered block")
	}
	require.ErrorContains(t, err, "refusing block")
	next, _, err := st.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, w.last, next, "everything before the tampered block is indexed, nothing after")
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func TestTheOwnersIndexResolvesItsPrivateReadingsAndOthersSeeOnlyTheBatch(t *testing.T) {
	op, hub := connect(t, "Org1", "operator"), connect(t, "Org1", "hub")
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	id := testnet.UniqueID(t, "idx-priv")
	_, err = op.EnrollDevice(t.Context(), api.EnrollRequest{ID: id, Type: "monitor", PublicKey: s.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)
	v := 72.0
	env, err := s.SignReading(reading.Payload{Device: id, Seq: 1, Timestamp: 1_800_000_000_000, Values: []reading.Value{{Name: "heart_rate", Number: &v}}})
	require.NoError(t, err)
	rc, err := hub.SubmitPrivateBatch(t.Context(), api.BatchRequest{Readings: []reading.Envelope{env}})
	require.NoError(t, err)
	testnet.Settle(t.Context(), t, fabric)

	own := testnet.StartIndex(t, fabric, "Org1")
	other := testnet.StartIndex(t, fabric, "Org2")
	own.Sync(t)
	other.Sync(t)

	r, err := own.Reading(t.Context(), id, 1)
	require.NoError(t, err, "the owner's index resolves its private readings")
	require.True(t, r.Private)
	require.Equal(t, env.Payload, r.Payload, "the device's bytes, checked against the hash in the block")
	b, err := own.Batch(t.Context(), rc.BatchID)
	require.NoError(t, err)
	require.True(t, b.Private)
	require.Equal(t, 1, b.Size)

	_, err = other.Reading(t.Context(), id, 1)
	require.ErrorIs(t, err, index.ErrNotFound, "another org's index never holds a private reading")
	b, err = other.Batch(t.Context(), rc.BatchID)
	require.NoError(t, err, "but it knows the batch was committed")
	require.True(t, b.Private)
	require.Zero(t, b.Size)
}
