package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotledger/iotledger/chaincode/api"
)

// Parked readings. The hub accepts readings only of devices it looked up on
// the ledger, so a ledger that refuses one as NOT_FOUND no longer knows the
// device: the hub is connected to another ledger than the one it accepted
// the reading for, or the device's record went away. Neither is the
// reading's fault, and neither is mended by dropping it, so such readings
// are parked: moved out of their batch into a bucket of their own, neither
// pending nor deleted, counted (iotledger_hub_readings_parked), logged once
// per device and reported by /healthz. They go back to pending when the
// ledger knows their device again and it is active (the hub looks every
// Config.ParkedRecheck), or when the operator says so with `iotledger hub
// parked retry` while the hub is stopped; `iotledger hub parked drop`
// deletes them deliberately.

// ParkReasonNotFound is the reason of readings parked because the ledger
// refused them as NOT_FOUND (it does not know their device).
const ParkReasonNotFound = "not_found"

// ParkedRecord is a parked reading with why and when it was parked.
type ParkedRecord struct {
	Record
	Reason   string `json:"reason"`
	Error    string `json:"error"`
	ParkedMS int64  `json:"parkedMs"`
}

// ParkedAt is when the reading was parked.
func (p ParkedRecord) ParkedAt() time.Time { return time.UnixMilli(p.ParkedMS) }

// Parked is the number of parked readings.
func (o *Outbox) Parked() int64 { return o.parked.Load() }

// Park moves readings (by record id) out of a recorded batch into the
// parked bucket, in one transaction, and returns how many it moved
// (readings no longer in the batch are not parked again).
func (o *Outbox) Park(batchID uint64, recordIDs []uint64, reason, errText string, now time.Time) (int, error) {
	if len(recordIDs) == 0 {
		return 0, nil
	}
	drop := make(map[uint64]bool, len(recordIDs))
	for _, id := range recordIDs {
		drop[id] = true
	}
	moved := 0
	err := o.db.Batch(func(tx *bolt.Tx) error {
		n, gone, err := removeFromBatch(tx, batchID, drop, true)
		moved = n
		if err != nil {
			return err
		}
		parked := tx.Bucket(bucketParked)
		for _, r := range gone {
			data, err := json.Marshal(ParkedRecord{Record: r, Reason: reason, Error: errText, ParkedMS: now.UnixMilli()})
			if err != nil {
				return err
			}
			if err := parked.Put(idKey(r.ID), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox park readings of batch %d: %w", batchID, err)
	}
	o.batched.Add(-int64(moved))
	o.parked.Add(int64(moved))
	return moved, nil
}

// ParkedRecords returns the parked readings, oldest accepted first.
func (o *Outbox) ParkedRecords() ([]ParkedRecord, error) {
	var out []ParkedRecord
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketParked).ForEach(func(k, v []byte) error {
			var p ParkedRecord
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("parked record %x: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// ParkedDevices returns the devices with parked readings, sorted.
func (o *Outbox) ParkedDevices() ([]string, error) {
	recs, err := o.ParkedRecords()
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, p := range recs {
		devs = append(devs, p.Device)
	}
	slices.Sort(devs)
	return slices.Compact(devs), nil
}

// Unpark moves the parked readings of devices (all parked readings when
// devices is empty) back to pending, under their record ids, so that they
// are batched again in the order they were accepted, and returns how many
// it moved.
func (o *Outbox) Unpark(devices ...string) (int, error) {
	var moved []Record
	err := o.db.Update(func(tx *bolt.Tx) error {
		moved = nil
		parked, pending := tx.Bucket(bucketParked), tx.Bucket(bucketPending)
		var keys [][]byte
		err := parked.ForEach(func(k, v []byte) error {
			var p ParkedRecord
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("parked record %x: %w", k, err)
			}
			if len(devices) > 0 && !slices.Contains(devices, p.Device) {
				return nil
			}
			data, err := json.Marshal(p.Record)
			if err != nil {
				return err
			}
			if err := pending.Put(k, data); err != nil {
				return err
			}
			keys = append(keys, k)
			moved = append(moved, p.Record)
			return nil
		})
		if err != nil {
			return err
		}
		// Deleting while iterating makes a bbolt cursor skip keys.
		for _, k := range keys {
			if err := parked.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox unpark: %w", err)
	}
	o.parked.Add(-int64(len(moved)))
	o.pending.Add(int64(len(moved)))
	for _, r := range moved {
		o.addToLane(r.Device, r.ID)
	}
	return len(moved), nil
}

// DropParked deletes the parked readings of devices (all of them when
// devices is empty) and returns how many it deleted. The duplicate index
// keeps them: a device sending one again is acknowledged, not stored.
func (o *Outbox) DropParked(devices ...string) (int, error) {
	n := 0
	err := o.db.Update(func(tx *bolt.Tx) error {
		n = 0
		parked := tx.Bucket(bucketParked)
		var keys [][]byte
		err := parked.ForEach(func(k, v []byte) error {
			var p struct {
				Device string `json:"device"`
			}
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("parked record %x: %w", k, err)
			}
			if len(devices) == 0 || slices.Contains(devices, p.Device) {
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := parked.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox drop parked: %w", err)
	}
	o.parked.Add(-int64(n))
	return n, nil
}

// parkLog remembers the devices whose parking the hub has logged, so that
// it logs once per device, not once per reading.
type parkLog struct {
	mu     sync.Mutex
	logged map[string]bool
}

// first reports whether device was not logged yet, and marks it.
func (p *parkLog) first(device string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logged == nil {
		p.logged = map[string]bool{}
	}
	if p.logged[device] {
		return false
	}
	p.logged[device] = true
	return true
}

func (p *parkLog) forget(device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.logged, device)
}

// park parks readings of a batch that the ledger refused because it does
// not know their device.
func (h *Hub) park(batchID uint64, recs []Record, reason string, err error) {
	ids := make([]uint64, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	n, perr := h.outbox.Park(batchID, ids, reason, err.Error(), h.cfg.Now())
	if perr != nil {
		// The readings stay in their batch, which the next start re-checks.
		h.log.Error("parking readings", "batch", batchID, "err", perr)
		return
	}
	h.metrics.parked.WithLabelValues(reason).Add(float64(n))
	for _, r := range recs {
		if h.parkLog.first(r.Device) {
			h.log.Warn("the ledger does not know this device: its readings are parked, not dropped; they are submitted again once the ledger knows it "+
				"(or see `iotledger hub parked list`); is the hub connected to the network it accepted them for?",
				"device", r.Device, "seq", r.Seq, "reason", reason, "err", err)
		}
	}
}

// recheckParked looks up the devices of parked readings every
// ParkedRecheck and moves the readings of those the ledger knows and that
// are active back to pending. It does nothing while the ledger's identity
// is not verified, nor while it is another ledger's.
func (h *Hub) recheckParked(ctx context.Context) {
	for sleepCtx(ctx, h.cfg.ParkedRecheck) {
		if h.outbox.Parked() == 0 {
			continue
		}
		if verified, _, _ := h.identity.get(); !verified {
			continue
		}
		// The ledger may have changed under a running hub (a network
		// recreated at the same address): look again before unparking.
		if !h.sameLedger(ctx) {
			continue
		}
		h.unparkKnown(ctx)
	}
}

// sameLedger reports whether the ledger still has the verified identity.
// Another one is recorded as a mismatch (/healthz says so, and nothing is
// unparked again); a ledger that does not answer changes nothing.
func (h *Hub) sameLedger(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
	defer cancel()
	a, _, err := h.cfg.Ledger.TrustAnchor(cctx)
	if err != nil {
		h.log.Debug("parked readings not rechecked: the ledger's trust anchor not read", "err", err)
		return false
	}
	verified, want, _ := h.identity.get()
	if !verified {
		return false
	}
	if a == want {
		return true
	}
	rec, err := h.outbox.Ledger()
	if err != nil || rec == nil {
		rec = &LedgerRecord{Anchor: want}
	}
	merr := &LedgerMismatchError{DataDir: h.cfg.DataDir, Recorded: *rec, Ledger: a,
		Readings: h.outbox.Depth() + h.outbox.Parked(), Acks: h.outbox.PendingAcks()}
	h.identity.set(false, a, merr)
	h.log.Error("the ledger changed under the running hub: parked readings stay parked; stop the hub and point it at the right network or another --data", "err", merr)
	return false
}

// unparkKnown moves the parked readings of devices the ledger knows and
// that are active back to pending.
func (h *Hub) unparkKnown(ctx context.Context) {
	devs, err := h.outbox.ParkedDevices()
	if err != nil {
		h.log.Error("reading parked readings", "err", err)
		return
	}
	for _, dev := range devs {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
		d, err := h.cfg.Ledger.Device(cctx, dev)
		cancel()
		switch {
		case err != nil && api.CodeOf(err) == api.CodeNotFound:
			continue
		case err != nil:
			h.log.Debug("parked device not looked up", "device", dev, "err", err)
			if ctx.Err() != nil || api.CodeOf(err) == "" {
				return // the ledger is not answering; next round
			}
			continue
		case d.Status != api.StatusActive:
			h.log.Debug("parked device is known again but not active; its readings stay parked", "device", dev, "status", d.Status)
			continue
		}
		n, err := h.outbox.Unpark(dev)
		if err != nil {
			h.log.Error("unparking readings", "device", dev, "err", err)
			continue
		}
		h.parkLog.forget(dev)
		h.metrics.unparked.Add(float64(n))
		h.log.Info("the ledger knows the device again: its parked readings are submitted", "device", dev, "readings", n)
		poke(h.readingsReady)
	}
}
