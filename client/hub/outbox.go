package hub

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/iotledger/iotledger/chaincode/reading"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Buckets of the outbox database.
var (
	bucketPending = []byte("pending") // id → Record: accepted, not yet in a batch
	bucketBatches = []byte("batches") // batch id → Batch: assigned, maybe submitted
	bucketSeen    = []byte("seen")    // device 0x00 seq(8) → leaf hash ‖ accepted ms(8): accepted readings
	bucketAcks    = []byte("acks")    // id → AckRecord: command acks waiting for the ledger
)

// Record is one accepted reading waiting for the ledger.
type Record struct {
	ID         uint64           `json:"id"`
	Device     string           `json:"device"`
	Seq        uint64           `json:"seq"`
	Envelope   reading.Envelope `json:"env"`
	Leaf       reading.Hash     `json:"leaf"`
	ReceivedMS int64            `json:"receivedMs"`
}

// Batch is a group of readings assigned to one SubmitBatch. It is recorded
// before it is submitted so that a restarted hub knows what may already be
// on the ledger and re-checks it instead of submitting it twice.
type Batch struct {
	ID        uint64   `json:"id"`
	Readings  []Record `json:"readings"`
	CreatedMS int64    `json:"createdMs"`
}

// AckRecord is a signed command acknowledgement waiting for the ledger.
type AckRecord struct {
	ID       uint64           `json:"id"`
	Device   string           `json:"device"`
	Command  string           `json:"command"`
	Envelope reading.Envelope `json:"env"`
}

// AppendResult says what the outbox did with a reading.
type AppendResult int

// Append results.
const (
	Appended  AppendResult = iota // stored, new
	Duplicate                     // the same reading (same leaf) was accepted before: nothing stored
	Replay                        // another reading with this (device, seq) was accepted before
)

// Outbox is the hub's durable queue (bbolt): a reading is in it before the
// device gets its PUBACK, and leaves it only once it is on the ledger or was
// refused by it.
type Outbox struct {
	db      *bolt.DB
	pending atomic.Int64 // readings in bucketPending
	batched atomic.Int64 // readings in bucketBatches
	acks    atomic.Int64
}

// OpenOutbox opens (or creates) the outbox database file.
func OpenOutbox(path string) (*Outbox, error) {
	// The free-page list is not written on every commit (one write less per
	// fsync on a disk others share); after a crash bbolt rebuilds it by
	// scanning the file. The data itself is synced as before.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        5 * time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open outbox %s: locked by another process; is another hub running with this data dir? (%w)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o := &Outbox{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketBatches, bucketSeen, bucketAcks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		o.pending.Store(int64(tx.Bucket(bucketPending).Stats().KeyN))
		o.acks.Store(int64(tx.Bucket(bucketAcks).Stats().KeyN))
		var n int64
		err := tx.Bucket(bucketBatches).ForEach(func(_, v []byte) error {
			var b Batch
			if err := json.Unmarshal(v, &b); err != nil {
				return err
			}
			n += int64(len(b.Readings))
			return nil
		})
		o.batched.Store(n)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	return o, nil
}

// Close closes the database.
func (o *Outbox) Close() error { return o.db.Close() }

// Depth is the number of readings not yet resolved against the ledger.
func (o *Outbox) Depth() int64 { return o.pending.Load() + o.batched.Load() }

// Pending is the number of readings not yet assigned to a batch.
func (o *Outbox) Pending() int64 { return o.pending.Load() }

// PendingAcks is the number of acks not yet on the ledger.
func (o *Outbox) PendingAcks() int64 { return o.acks.Load() }

func seenKey(device string, seq uint64) []byte {
	k := make([]byte, 0, len(device)+9)
	k = append(k, device...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Append stores an accepted reading durably (group commit with other
// concurrent callers) unless the same (device, seq) was accepted before.
// When it returns Appended, the reading survives a crash.
func (o *Outbox) Append(r Record) (AppendResult, error) {
	var result AppendResult
	err := o.db.Batch(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSeen)
		key := seenKey(r.Device, r.Seq)
		if prev := seen.Get(key); prev != nil {
			result = Replay
			if len(prev) >= 32 && bytes.Equal(prev[:32], r.Leaf[:]) {
				result = Duplicate
			}
			return nil
		}
		pending := tx.Bucket(bucketPending)
		id, err := pending.NextSequence()
		if err != nil {
			return err
		}
		rec := r
		rec.ID = id
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := pending.Put(idKey(id), data); err != nil {
			return err
		}
		result = Appended
		// leaf hash, then the acceptance time (for pruning)
		return seen.Put(key, binary.BigEndian.AppendUint64(bytes.Clone(r.Leaf[:]), uint64(r.ReceivedMS)))
	})
	if err != nil {
		return 0, fmt.Errorf("outbox append %s/%d: %w", r.Device, r.Seq, err)
	}
	if result == Appended {
		o.pending.Add(1)
	}
	return result, nil
}

// TakeBatch moves up to max pending readings, oldest first, into a new
// batch record and returns it; nil when nothing is pending.
func (o *Outbox) TakeBatch(max int, now time.Time) (*Batch, error) {
	bs, err := o.TakeBatches(max, 1, now)
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	return &bs[0], nil
}

// TakeBatches moves pending readings, oldest first, into up to n new batch
// records of at most max readings each (only the last may be short) and
// returns them; none when nothing is pending. All of them are recorded in
// one transaction, committed together with concurrent appends and
// resolutions (group commit): one fsync for all of them.
func (o *Outbox) TakeBatches(max, n int, now time.Time) ([]Batch, error) {
	if max <= 0 || n <= 0 {
		return nil, fmt.Errorf("outbox take batches: max %d and n %d must be positive", max, n)
	}
	var out []Batch
	taken := 0
	// Batch may run the function again (after another caller's failure), so
	// it starts from scratch each time.
	err := o.db.Batch(func(tx *bolt.Tx) error {
		out, taken = nil, 0
		pending := tx.Bucket(bucketPending)
		batches := tx.Bucket(bucketBatches)
		c := pending.Cursor()
		var recs []Record
		var keys [][]byte
		for k, v := c.First(); k != nil && len(recs) < max*n; k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("pending record %x: %w", k, err)
			}
			recs = append(recs, r)
			keys = append(keys, bytes.Clone(k))
		}
		// Deleting while iterating makes a bbolt cursor skip keys.
		for _, k := range keys {
			if err := pending.Delete(k); err != nil {
				return err
			}
		}
		for len(recs) > 0 {
			size := min(max, len(recs))
			id, err := batches.NextSequence()
			if err != nil {
				return err
			}
			b := Batch{ID: id, Readings: recs[:size:size], CreatedMS: now.UnixMilli()}
			data, err := json.Marshal(b)
			if err != nil {
				return err
			}
			if err := batches.Put(idKey(id), data); err != nil {
				return err
			}
			out = append(out, b)
			taken += size
			recs = recs[size:]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox take batch: %w", err)
	}
	o.pending.Add(-int64(taken))
	o.batched.Add(int64(taken))
	return out, nil
}

// Batches returns every recorded batch (after a restart: those that may
// have been in flight when the hub stopped).
func (o *Outbox) Batches() ([]Batch, error) {
	var out []Batch
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBatches).ForEach(func(k, v []byte) error {
			var b Batch
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("batch %x: %w", k, err)
			}
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// Resolve removes readings (by record id) from a batch once each is known
// to be on the ledger or refused by it; an emptied batch is deleted. It is
// committed together with concurrent appends and batch formation (group
// commit). A resolution lost in a crash is harmless: the restarted hub
// re-checks the batch against the ledger before submitting it again.
func (o *Outbox) Resolve(batchID uint64, recordIDs []uint64) error {
	if len(recordIDs) == 0 {
		return nil
	}
	drop := make(map[uint64]bool, len(recordIDs))
	for _, id := range recordIDs {
		drop[id] = true
	}
	removed := 0
	// Batch may run the function again, so it starts from scratch each time.
	err := o.db.Batch(func(tx *bolt.Tx) error {
		removed = 0
		batches := tx.Bucket(bucketBatches)
		v := batches.Get(idKey(batchID))
		if v == nil {
			return nil
		}
		// Most resolutions clear a whole batch: decode only the record ids
		// to find out, and the full records only when some stay.
		var ids batchIDs
		if err := json.Unmarshal(v, &ids); err != nil {
			return err
		}
		for _, r := range ids.Readings {
			if drop[r.ID] {
				removed++
			}
		}
		if removed == 0 {
			return nil
		}
		if removed == len(ids.Readings) {
			return batches.Delete(idKey(batchID))
		}
		var b Batch
		if err := json.Unmarshal(v, &b); err != nil {
			return err
		}
		keep := b.Readings[:0]
		for _, r := range b.Readings {
			if !drop[r.ID] {
				keep = append(keep, r)
			}
		}
		b.Readings = keep
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		return batches.Put(idKey(batchID), data)
	})
	if err != nil {
		return fmt.Errorf("outbox resolve batch %d: %w", batchID, err)
	}
	o.batched.Add(-int64(removed))
	return nil
}

// batchIDs is the part of a stored Batch that Resolve needs.
type batchIDs struct {
	Readings []struct {
		ID uint64 `json:"id"`
	} `json:"readings"`
}

// Contains reports whether (device, seq) was ever accepted.
func (o *Outbox) Contains(device string, seq uint64) (bool, error) {
	found := false
	err := o.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketSeen).Get(seenKey(device, seq)) != nil
		return nil
	})
	return found, err
}

// PendingRecords returns the readings not yet assigned to a batch.
func (o *Outbox) PendingRecords() ([]Record, error) {
	var out []Record
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// AppendAck stores a command ack durably.
func (o *Outbox) AppendAck(a AckRecord) error {
	err := o.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAcks)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		rec := a
		rec.ID = id
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put(idKey(id), data)
	})
	if err != nil {
		return fmt.Errorf("outbox append ack %s: %w", a.Command, err)
	}
	o.acks.Add(1)
	return nil
}

// Acks returns the stored acks, oldest first.
func (o *Outbox) Acks() ([]AckRecord, error) {
	var out []AckRecord
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAcks).ForEach(func(_, v []byte) error {
			var a AckRecord
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// DeleteAck removes an ack once the ledger recorded or refused it.
func (o *Outbox) DeleteAck(id uint64) error {
	deleted := false
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAcks)
		deleted = b.Get(idKey(id)) != nil
		return b.Delete(idKey(id))
	})
	if err != nil {
		return fmt.Errorf("outbox delete ack %d: %w", id, err)
	}
	if deleted {
		o.acks.Add(-1)
	}
	return nil
}

// PruneSeen forgets accepted (device, seq) pairs accepted before cutoff,
// a chunk per transaction so ingestion is not held up. Forgetting is safe:
// a reading sent again after that is refused by the ledger as a replay (and
// dropped), it is only no longer refused at the door.
func (o *Outbox) PruneSeen(cutoff time.Time) (int, error) {
	const chunk = 10000
	limit := uint64(cutoff.UnixMilli())
	var from []byte
	total := 0
	for {
		n, next := 0, []byte(nil)
		err := o.db.Update(func(tx *bolt.Tx) error {
			n, next = 0, nil
			b := tx.Bucket(bucketSeen)
			c := b.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			var stale [][]byte
			for scanned := 0; k != nil; k, v = c.Next() {
				if scanned == chunk {
					next = bytes.Clone(k)
					break
				}
				scanned++
				if len(v) == 40 && binary.BigEndian.Uint64(v[32:]) < limit {
					stale = append(stale, bytes.Clone(k))
				}
			}
			// Deleting while iterating makes a bbolt cursor skip keys.
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(stale)
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("outbox prune: %w", err)
		}
		if next == nil {
			return total, nil
		}
		from = next
	}
}
