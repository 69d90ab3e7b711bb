package hub

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	bucketParked  = []byte("parked")  // id → ParkedRecord: accepted readings the ledger did not know the device of (parked.go)
	bucketMeta    = []byte("meta")    // metaLedger → LedgerRecord: the ledger this outbox belongs to (identity.go)
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
//
// It also keeps, in memory, each device's pending readings in order (its
// lane) and which devices recorded batches hold: a recorded batch holds its
// devices until Release, and TakeLaneBatches leaves the readings of held
// devices pending, so that a device's readings are in one batch in flight at
// a time (see TakeLaneBatches). The lanes are rebuilt from the database when
// it is opened, with every recorded batch holding its devices again.
type Outbox struct {
	db      *bolt.DB
	pending atomic.Int64 // readings in bucketPending
	batched atomic.Int64 // readings in bucketBatches
	acks    atomic.Int64
	parked  atomic.Int64 // readings in bucketParked

	takeMu sync.Mutex // one batch formation at a time: it plans outside the transaction
	laneMu sync.Mutex // guards lanes, holds, laned and free
	lanes  map[string]*lane
	holds  map[uint64][]string // recorded batch id → the devices it holds
	laned  int64               // pending readings in lanes
	free   atomic.Int64        // of those, readings of devices no batch holds (Available)
	// released is set when Release frees readings that waited for their
	// device's batch in flight (TakeReleased).
	released atomic.Bool
}

// lane is one device's pending readings and the recorded batches holding
// the device. A lane with neither is deleted.
type lane struct {
	ids  []uint64 // pending record ids, ascending (oldest first)
	held int      // recorded batches holding the device, not yet released
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
	o := &Outbox{db: db, lanes: map[string]*lane{}, holds: map[uint64][]string{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketBatches, bucketSeen, bucketAcks, bucketParked, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		o.acks.Store(int64(tx.Bucket(bucketAcks).Stats().KeyN))
		o.parked.Store(int64(tx.Bucket(bucketParked).Stats().KeyN))
		// The lanes: pending readings in key (acceptance) order, by device.
		err := tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			var r struct {
				Device string `json:"device"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("pending record %x: %w", k, err)
			}
			l := o.lane(r.Device)
			l.ids = append(l.ids, binary.BigEndian.Uint64(k))
			o.laned++
			return nil
		})
		if err != nil {
			return err
		}
		o.pending.Store(o.laned)
		// Batches recorded by the last run hold their devices until the
		// batcher has submitted (or re-checked) them and released them.
		var n int64
		err = tx.Bucket(bucketBatches).ForEach(func(_, v []byte) error {
			var b Batch
			if err := json.Unmarshal(v, &b); err != nil {
				return err
			}
			n += int64(len(b.Readings))
			o.hold(b)
			return nil
		})
		o.batched.Store(n)
		var free int64
		for _, l := range o.lanes {
			if l.held == 0 {
				free += int64(len(l.ids))
			}
		}
		o.free.Store(free)
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
	var appended uint64
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
		result, appended = Appended, id
		// leaf hash, then the acceptance time (for pruning)
		return seen.Put(key, binary.BigEndian.AppendUint64(bytes.Clone(r.Leaf[:]), uint64(r.ReceivedMS)))
	})
	if err != nil {
		return 0, fmt.Errorf("outbox append %s/%d: %w", r.Device, r.Seq, err)
	}
	if result == Appended {
		o.pending.Add(1)
		o.addToLane(r.Device, appended)
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
//
// It ignores device lanes: the batches may share devices, and readings of
// held devices are taken too (what a hub before device lanes did). The
// batches hold their devices like any recorded batch. The hub forms its
// batches with TakeLaneBatches.
func (o *Outbox) TakeBatches(max, n int, now time.Time) ([]Batch, error) {
	if max <= 0 || n <= 0 {
		return nil, fmt.Errorf("outbox take batches: max %d and n %d must be positive", max, n)
	}
	o.takeMu.Lock()
	defer o.takeMu.Unlock()
	o.laneMu.Lock()
	var all []laneRef
	for dev, l := range o.lanes {
		for _, id := range l.ids {
			all = append(all, laneRef{dev, id})
		}
	}
	o.laneMu.Unlock()
	slices.SortFunc(all, func(a, b laneRef) int { return cmpID(a.id, b.id) })
	all = all[:min(len(all), max*n)]
	var plans [][]laneRef
	for len(all) > 0 {
		size := min(max, len(all))
		plans = append(plans, all[:size:size])
		all = all[size:]
	}
	return o.record(plans, now)
}

// TakeLaneBatches moves pending readings into up to n new batch records of
// at most max readings each, as TakeBatches does, but keeps each device's
// readings in one lane: it leaves pending the readings of devices that a
// recorded batch holds (until that batch is released), puts a device's
// readings in one of the batches it forms (a device may be in a batch many
// times, never in two), and the batches hold their devices until Release.
// A device whose readings do not all fit keeps the rest pending, in order,
// for its next batch. So the batches in flight never share a device, and a
// device's later readings are not submitted before its earlier ones are
// resolved.
//
// Devices are served oldest first, by their oldest pending reading (a
// device with a long backlog gets one batch's worth and then waits for it,
// others do not wait for its backlog). Each device's readings (up to max)
// go into the first batch they fit in whole, else a new one, else fill the
// batch with the most room; so the batches are full while enough readings
// of free devices are pending. A batch that is not full is recorded only
// when short is true (the caller waited BatchWait for it to fill, or is
// flushing); its readings stay pending otherwise. Each batch lists its
// readings oldest first. One transaction for all, as TakeBatches.
//
// Planning costs a pass over the devices with pending readings (not over
// the readings): a device's backlog is not read again on every call.
func (o *Outbox) TakeLaneBatches(max, n int, short bool, now time.Time) ([]Batch, error) {
	if max <= 0 || n <= 0 {
		return nil, fmt.Errorf("outbox take batches: max %d and n %d must be positive", max, n)
	}
	o.takeMu.Lock()
	defer o.takeMu.Unlock()
	o.laneMu.Lock()
	type candidate struct {
		dev string
		l   *lane
	}
	var cands []candidate
	for dev, l := range o.lanes {
		if l.held == 0 && len(l.ids) > 0 {
			cands = append(cands, candidate{dev, l})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int { return cmpID(a.l.ids[0], b.l.ids[0]) })
	var plans [][]laneRef
	full := 0
	for _, c := range cands {
		if full == n {
			break
		}
		k := min(len(c.l.ids), max)
		at := -1
		for i, p := range plans {
			if max-len(p) >= k {
				at = i
				break
			}
		}
		if at < 0 && len(plans) < n {
			at = len(plans)
			plans = append(plans, make([]laneRef, 0, max))
		}
		if at < 0 {
			for i, p := range plans {
				if room := max - len(p); room > 0 && (at < 0 || room > max-len(plans[at])) {
					at = i
				}
			}
			k = max - len(plans[at])
		}
		for _, id := range c.l.ids[:k] {
			plans[at] = append(plans[at], laneRef{c.dev, id})
		}
		if len(plans[at]) == max {
			full++
		}
	}
	o.laneMu.Unlock()
	kept := plans[:0]
	for _, p := range plans {
		if len(p) == max || short {
			slices.SortFunc(p, func(a, b laneRef) int { return cmpID(a.id, b.id) })
			kept = append(kept, p)
		}
	}
	return o.record(kept, now)
}

// laneRef is a pending reading as its lane knows it.
type laneRef struct {
	dev string
	id  uint64
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// record moves the planned pending readings into one batch record per plan,
// in one transaction, and then takes them out of their lanes and makes the
// batches hold their devices. The caller holds takeMu, so the planned
// readings are still pending (only a take removes them). A planned reading
// that is not pending after all is dropped from its lane.
func (o *Outbox) record(plans [][]laneRef, now time.Time) ([]Batch, error) {
	if len(plans) == 0 {
		return nil, nil
	}
	var out []Batch
	var missing []laneRef
	taken := 0
	// Batch may run the function again (after another caller's failure), so
	// it starts from scratch each time.
	err := o.db.Batch(func(tx *bolt.Tx) error {
		out, missing, taken = nil, nil, 0
		pending := tx.Bucket(bucketPending)
		batches := tx.Bucket(bucketBatches)
		for _, plan := range plans {
			var recs []Record
			for _, ref := range plan {
				v := pending.Get(idKey(ref.id))
				if v == nil {
					missing = append(missing, ref)
					continue
				}
				var r Record
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("pending record %d: %w", ref.id, err)
				}
				r.ID = ref.id
				recs = append(recs, r)
			}
			if len(recs) == 0 {
				continue
			}
			for _, r := range recs {
				if err := pending.Delete(idKey(r.ID)); err != nil {
					return err
				}
			}
			id, err := batches.NextSequence()
			if err != nil {
				return err
			}
			b := Batch{ID: id, Readings: recs, CreatedMS: now.UnixMilli()}
			data, err := json.Marshal(b)
			if err != nil {
				return err
			}
			if err := batches.Put(idKey(id), data); err != nil {
				return err
			}
			out = append(out, b)
			taken += len(recs)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox take batch: %w", err)
	}
	o.pending.Add(-int64(taken))
	o.batched.Add(int64(taken))
	o.laneMu.Lock()
	defer o.laneMu.Unlock()
	for _, b := range out {
		byDevice := map[string][]uint64{}
		for _, r := range b.Readings {
			byDevice[r.Device] = append(byDevice[r.Device], r.ID)
		}
		for dev, ids := range byDevice {
			o.dropFromLane(dev, ids)
		}
		o.hold(b)
	}
	for _, ref := range missing {
		o.dropFromLane(ref.dev, []uint64{ref.id})
	}
	return out, nil
}

// Release ends a recorded batch's hold on its devices (once it is resolved,
// or re-checked and resolved after a restart): their pending readings may
// go into new batches again. Releasing a batch again, or one that does not
// exist, changes nothing.
func (o *Outbox) Release(batchID uint64) {
	o.laneMu.Lock()
	defer o.laneMu.Unlock()
	devs, ok := o.holds[batchID]
	if !ok {
		return
	}
	delete(o.holds, batchID)
	for _, dev := range devs {
		l := o.lanes[dev]
		if l == nil || l.held == 0 {
			continue
		}
		l.held--
		if l.held == 0 {
			if len(l.ids) > 0 {
				o.released.Store(true)
			}
			o.free.Add(int64(len(l.ids)))
			o.tidy(dev, l)
		}
	}
}

// TakeReleased reports whether a Release has freed readings that were held
// back by their device's batch in flight since the last call.
func (o *Outbox) TakeReleased() bool { return o.released.Swap(false) }

// Available is the number of pending readings of devices no recorded batch
// holds: what TakeLaneBatches can take now.
func (o *Outbox) Available() int64 { return o.free.Load() }

// HeldBack is the number of pending readings waiting for their device's
// batch in flight to be released.
func (o *Outbox) HeldBack() int64 {
	o.laneMu.Lock()
	defer o.laneMu.Unlock()
	return o.laned - o.free.Load()
}

// Held reports whether a recorded batch holds device.
func (o *Outbox) Held(device string) bool {
	o.laneMu.Lock()
	defer o.laneMu.Unlock()
	l := o.lanes[device]
	return l != nil && l.held > 0
}

// lane returns device's lane, made if need be. The caller holds laneMu (or
// is OpenOutbox).
func (o *Outbox) lane(device string) *lane {
	l := o.lanes[device]
	if l == nil {
		l = &lane{}
		o.lanes[device] = l
	}
	return l
}

// tidy deletes a lane with nothing in it.
func (o *Outbox) tidy(device string, l *lane) {
	if l.held == 0 && len(l.ids) == 0 {
		delete(o.lanes, device)
	}
}

// hold makes a recorded batch hold its devices. The caller holds laneMu (or
// is OpenOutbox, which counts free readings afterwards).
func (o *Outbox) hold(b Batch) {
	var devs []string
	for _, r := range b.Readings {
		if !slices.Contains(devs, r.Device) {
			devs = append(devs, r.Device)
		}
	}
	for _, dev := range devs {
		l := o.lane(dev)
		if l.held == 0 {
			o.free.Add(-int64(len(l.ids)))
		}
		l.held++
	}
	o.holds[b.ID] = devs
}

// addToLane adds an appended reading to its device's lane. Appends of one
// device normally finish in the order of their ids; ones that ran
// concurrently may not, so the id is put in its place.
func (o *Outbox) addToLane(device string, id uint64) {
	o.laneMu.Lock()
	defer o.laneMu.Unlock()
	l := o.lane(device)
	i := len(l.ids)
	for i > 0 && l.ids[i-1] > id {
		i--
	}
	l.ids = slices.Insert(l.ids, i, id)
	o.laned++
	if l.held == 0 {
		o.free.Add(1)
	}
}

// dropFromLane removes taken (or vanished) readings from a lane; ids are
// ascending. They are at its front (a take plans a lane's oldest readings),
// unless an older id was inserted since, so this stops once they are found.
func (o *Outbox) dropFromLane(device string, ids []uint64) {
	l := o.lanes[device]
	if l == nil {
		return
	}
	var kept []uint64
	i, j, removed := 0, 0, 0
	for i < len(l.ids) && j < len(ids) {
		switch {
		case l.ids[i] == ids[j]:
			i, j, removed = i+1, j+1, removed+1
		case l.ids[i] < ids[j]:
			kept = append(kept, l.ids[i])
			i++
		default:
			j++ // not in the lane
		}
	}
	if len(kept) == 0 {
		l.ids = l.ids[i:]
	} else {
		l.ids = append(kept, l.ids[i:]...)
	}
	o.laned -= int64(removed)
	if l.held == 0 {
		o.free.Add(-int64(removed))
	}
	o.tidy(device, l)
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
		var err error
		removed, _, err = removeFromBatch(tx, batchID, drop, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox resolve batch %d: %w", batchID, err)
	}
	o.batched.Add(-int64(removed))
	return nil
}

// removeFromBatch removes the readings in drop (by record id) from a
// recorded batch, deleting it once empty, and says how many it removed;
// with records, it returns them too. Readings not in the batch (resolved
// already) are not counted.
func removeFromBatch(tx *bolt.Tx, batchID uint64, drop map[uint64]bool, records bool) (int, []Record, error) {
	batches := tx.Bucket(bucketBatches)
	v := batches.Get(idKey(batchID))
	if v == nil {
		return 0, nil, nil
	}
	// Most resolutions clear a whole batch: decode only the record ids to
	// find out, and the full records only when some stay (or are asked for).
	var ids batchIDs
	if err := json.Unmarshal(v, &ids); err != nil {
		return 0, nil, err
	}
	n := 0
	for _, r := range ids.Readings {
		if drop[r.ID] {
			n++
		}
	}
	if n == 0 {
		return 0, nil, nil
	}
	if n == len(ids.Readings) && !records {
		return n, nil, batches.Delete(idKey(batchID))
	}
	var b Batch
	if err := json.Unmarshal(v, &b); err != nil {
		return 0, nil, err
	}
	var gone []Record
	keep := b.Readings[:0]
	for _, r := range b.Readings {
		switch {
		case !drop[r.ID]:
			keep = append(keep, r)
		case records:
			gone = append(gone, r)
		}
	}
	if len(keep) == 0 {
		return n, gone, batches.Delete(idKey(batchID))
	}
	b.Readings = keep
	data, err := json.Marshal(b)
	if err != nil {
		return 0, nil, err
	}
	return n, gone, batches.Put(idKey(batchID), data)
}

// batchIDs is the part of a stored Batch that removeFromBatch decodes first.
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
