package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/iotledger/iotledger/receipt"
)

// A hub's outbox belongs to one ledger: the channel it was first drained
// into, named by its trust anchor (channel name and SHA-256 of the genesis
// block header, receipt.Anchor), which every member computes the same. The
// hub learns the ledger's anchor before it submits anything
// (Ledger.TrustAnchor), records it in the outbox when the outbox has none,
// and refuses to drain the outbox into a ledger with another anchor: the
// readings in it were accepted for the recorded ledger, its duplicate index
// and event checkpoint speak of that ledger's devices and blocks, and a
// ledger that never heard of its devices would refuse every reading.

// metaLedger is the key of the LedgerRecord in bucketMeta.
var metaLedger = []byte("ledger")

// LedgerRecord is the ledger an outbox belongs to, as the outbox records it.
type LedgerRecord struct {
	Anchor     receipt.Anchor `json:"anchor"`
	RecordedMS int64          `json:"recordedMs"` // when the hub first drained into it
}

// RecordedAt is when the record was made.
func (r LedgerRecord) RecordedAt() time.Time { return time.UnixMilli(r.RecordedMS) }

// Ledger returns the ledger the outbox belongs to; nil when none is
// recorded (a new outbox, or one made before outboxes recorded it).
func (o *Outbox) Ledger() (*LedgerRecord, error) {
	var rec *LedgerRecord
	err := o.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(metaLedger)
		if v == nil {
			return nil
		}
		rec = &LedgerRecord{}
		return json.Unmarshal(v, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("outbox ledger record: %w", err)
	}
	return rec, nil
}

// PinLedger records a as the ledger the outbox belongs to unless one is
// recorded already, and returns the record that holds after the call: the
// earlier one (whatever its anchor; the caller compares) or the new one.
func (o *Outbox) PinLedger(a receipt.Anchor, now time.Time) (LedgerRecord, error) {
	var rec LedgerRecord
	err := o.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaLedger); v != nil {
			return json.Unmarshal(v, &rec)
		}
		rec = LedgerRecord{Anchor: a, RecordedMS: now.UnixMilli()}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return meta.Put(metaLedger, data)
	})
	if err != nil {
		return LedgerRecord{}, fmt.Errorf("outbox ledger record: %w", err)
	}
	return rec, nil
}

// LedgerMismatchError is a hub refusing to drain its outbox into a ledger
// other than the one the outbox belongs to.
type LedgerMismatchError struct {
	DataDir  string         // the hub's data directory
	Recorded LedgerRecord   // the ledger the outbox belongs to
	Ledger   receipt.Anchor // the ledger the hub is connected to
	Readings int64          // readings in the outbox (pending, in batches, parked)
	Acks     int64          // command acks in the outbox
}

func (e *LedgerMismatchError) Error() string {
	held := fmt.Sprintf("it holds %d readings and %d command acks accepted for that ledger", e.Readings, e.Acks)
	if e.Readings == 0 && e.Acks == 0 {
		held = "it holds no readings, but its duplicate index and event checkpoint are of that ledger"
	}
	return fmt.Sprintf("hub data dir %s belongs to channel %q with genesis block %s (recorded %s); "+
		"the ledger this hub is connected to is channel %q with genesis block %s: "+
		"the hub submits nothing to it, so that nothing drains into another ledger (%s). "+
		"Point the hub at the network it was recorded against (--state-dir, --org or --profile), "+
		"or start it on this network with another --data (move %s aside to keep what it holds)",
		e.DataDir, e.Recorded.Anchor.Channel, e.Recorded.Anchor.Genesis, e.Recorded.RecordedAt().UTC().Format(time.RFC3339),
		e.Ledger.Channel, e.Ledger.Genesis, held, e.DataDir)
}

// identityState is what the hub knows of the ledger's identity: not yet
// learned (the ledger did not answer), verified (it is the outbox's
// ledger, which the outbox now records), or another ledger. The batcher
// and the ack worker start only once it is verified (hub.go).
type identityState struct {
	mu       sync.Mutex
	verified bool
	anchor   receipt.Anchor
	err      error // why not verified: the last failure to learn it, or a *LedgerMismatchError
}

func (s *identityState) set(verified bool, a receipt.Anchor, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verified, s.anchor, s.err = verified, a, err
}

func (s *identityState) get() (verified bool, a receipt.Anchor, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verified, s.anchor, s.err
}

// errIdentityUnknown is the identity state before the first check.
var errIdentityUnknown = errors.New("not checked yet")

// checkLedger asks the ledger for its trust anchor and compares it with
// the outbox's record (recording it when there is none): nil once
// verified, a *LedgerMismatchError for another ledger, another error when
// the ledger did not answer.
func (h *Hub) checkLedger(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
	defer cancel()
	a, _, err := h.cfg.Ledger.TrustAnchor(cctx)
	if err != nil {
		err = fmt.Errorf("reading the ledger's trust anchor (genesis block): %w", err)
		h.identity.set(false, receipt.Anchor{}, err)
		return err
	}
	before, err := h.outbox.Ledger()
	if err != nil {
		h.identity.set(false, a, err)
		return err
	}
	if before == nil && (h.outbox.Depth() > 0 || h.outbox.Parked() > 0 || h.outbox.PendingAcks() > 0) {
		// An outbox from before outboxes recorded their ledger. Readings the
		// ledger does not know the device of are parked, not dropped.
		h.log.Warn("the outbox records no ledger (made by an older hub); it now belongs to the ledger this hub is connected to",
			"channel", a.Channel, "genesis", a.Genesis, "readings", h.outbox.Depth(), "acks", h.outbox.PendingAcks())
	}
	rec, err := h.outbox.PinLedger(a, h.cfg.Now())
	if err != nil {
		h.identity.set(false, a, err)
		return err
	}
	if rec.Anchor != a {
		err := &LedgerMismatchError{DataDir: h.cfg.DataDir, Recorded: rec, Ledger: a,
			Readings: h.outbox.Depth() + h.outbox.Parked(), Acks: h.outbox.PendingAcks()}
		h.identity.set(false, a, err)
		return err
	}
	if before == nil {
		h.log.Info("outbox recorded the ledger it belongs to", "channel", a.Channel, "genesis", a.Genesis)
	}
	h.identity.set(true, a, nil)
	return nil
}

// awaitLedger checks the ledger's identity again, with backoff, until it is
// verified (then starts what submits: the batcher and the ack worker), the
// ledger turns out to be another one (then nothing is ever submitted, and
// /healthz says why), or the hub stops.
func (h *Hub) awaitLedger(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for {
		if !sleepCtx(ctx, backoff) {
			return
		}
		err := h.checkLedger(ctx)
		var mismatch *LedgerMismatchError
		switch {
		case err == nil:
			h.log.Info("ledger identity verified; submitting", "outbox", h.outbox.Depth())
			h.startSubmitting()
			return
		case errors.As(err, &mismatch):
			h.log.Error("not submitting: the ledger is not the one this outbox belongs to; stop the hub and point it at the right network or another --data", "err", err)
			return
		case ctx.Err() != nil:
			return
		case identityRefused(err):
			h.log.Error("ledger identity still unknown: "+identityRefusedAdvice, "err", err, "retry_in", backoff)
		default:
			h.log.Warn("ledger identity still unknown; accepting readings, submitting none", "err", err, "retry_in", backoff)
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
