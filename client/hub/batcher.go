package hub

import (
	"context"
	"strings"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// startBatcher recovers batches left by an earlier run, then forms new
// batches from the outbox and hands them to the submitters.
func (h *Hub) startBatcher() {
	work := make(chan batchJob, h.cfg.Submitters)
	for range h.cfg.Submitters {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for job := range work {
				h.submitBatch(h.ctx, job)
			}
		}()
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(work)
		recovered, err := h.outbox.Batches()
		if err != nil {
			h.log.Error("reading in-flight batches", "err", err)
		}
		if len(recovered) > 0 {
			h.log.Info("recovering batches that were in flight", "batches", len(recovered))
		}
		for _, b := range recovered {
			select {
			case work <- batchJob{batch: b, recheck: true}:
			case <-h.ctx.Done():
				return
			}
		}
		h.formBatches(work)
	}()
}

type batchJob struct {
	batch   Batch
	recheck bool // may already be (partly) on the ledger: look before submitting
}

// formBatches waits until BatchSize readings are pending or the oldest has
// waited BatchWait (no waiting once the hub is flushing), then records
// batches and queues them. When several batches' worth is pending it
// records as many as the queue has room for in one outbox transaction, so
// idle submitters get work without one fsync per batch. Queuing blocks
// while all submitters are busy and the queue is full, which lets readings
// accumulate into full batches under load.
func (h *Hub) formBatches(work chan<- batchJob) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if h.outbox.Pending() == 0 {
			select {
			case <-h.readingsReady:
				continue
			case <-h.ctx.Done():
				return
			}
		}
		timer.Reset(h.cfg.BatchWait)
	fill:
		for h.outbox.Pending() < int64(h.cfg.BatchSize) {
			select {
			case <-h.readingsReady:
			case <-timer.C:
				break fill
			case <-h.flushing:
				break fill
			case <-h.ctx.Done():
				timer.Stop()
				return
			}
		}
		timer.Stop()
		n := batchesToForm(h.outbox.Pending(), h.cfg.BatchSize, cap(work)-len(work))
		bs, err := h.outbox.TakeBatches(h.cfg.BatchSize, n, h.cfg.Now())
		if err != nil {
			h.log.Error("forming batch", "err", err)
			if !sleepCtx(h.ctx, time.Second) {
				return
			}
			continue
		}
		for _, b := range bs {
			select {
			case work <- batchJob{batch: b}:
			case <-h.ctx.Done():
				return // the batches are recorded; the next start recovers them
			}
		}
	}
}

// batchesToForm is how many batches to record at once: every full batch
// pending, as far as the submitters' queue has room, and at least one (a
// short one once BatchWait has passed).
func batchesToForm(pending int64, batchSize, room int) int {
	full := int(min(pending/int64(batchSize), int64(room)))
	return max(full, 1)
}

// submitBatch gets every reading of a batch resolved: committed, found on
// the ledger already, or refused by the ledger (isolated and counted).
func (h *Hub) submitBatch(ctx context.Context, job batchJob) {
	recs := job.batch.Readings
	if !job.recheck {
		h.submitSet(ctx, job.batch.ID, recs)
		return
	}
	recs = h.dropCommitted(ctx, job.batch.ID, recs)
	h.submitSet(ctx, job.batch.ID, recs)
	if ctx.Err() == nil {
		h.log.Info("recovered batch resolved (see iotledger_hub_readings_already_on_ledger_total)", "batch", job.batch.ID, "readings", len(job.batch.Readings))
	}
}

// submitSet submits readings as transactions: public readings in one, the
// private readings of each owner org in one of their own (endorsed by that
// org alone). Transient failures are retried (after checking whether an
// unknown outcome committed); a refusal of the whole set first drops
// readings already on the ledger, then bisects until the refused reading is
// alone, and drops it.
func (h *Hub) submitSet(ctx context.Context, batchID uint64, recs []Record) {
	if parts := h.byPrivacy(ctx, recs); len(parts) > 1 {
		for _, p := range parts {
			h.submitSet(ctx, batchID, p.recs)
		}
		return
	}
	backoff := 200 * time.Millisecond
	for len(recs) > 0 {
		req := api.BatchRequest{Readings: make([]reading.Envelope, len(recs))}
		for i, r := range recs {
			req.Readings[i] = r.Envelope
		}
		start := time.Now()
		var err error
		owner := h.privateOwner(ctx, recs[0])
		if pl, ok := h.cfg.Ledger.(PrivateLedger); ok && owner != "" {
			_, err = pl.SubmitPrivateBatchFor(ctx, owner, req)
		} else {
			_, err = h.cfg.Ledger.SubmitBatch(ctx, req)
		}
		h.metrics.submitSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			h.metrics.batchesCommitted.Inc()
			h.metrics.readingsCommitted.Add(float64(len(recs)))
			h.resolve(batchID, recs)
			return
		}
		if ctx.Err() != nil {
			return // stays in the outbox
		}
		code := api.CodeOf(err)
		if transient(code) {
			h.log.Warn("submit failed; will retry", "batch", batchID, "readings", len(recs), "err", err)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
			// The transaction may have committed although we got an error.
			recs = h.dropCommitted(ctx, batchID, recs)
			continue
		}
		h.log.Debug("ledger refused batch; isolating", "batch", batchID, "readings", len(recs), "code", code, "err", err)
		remaining := h.dropCommitted(ctx, batchID, recs)
		if len(remaining) < len(recs) {
			recs = remaining
			continue
		}
		if len(recs) == 1 {
			h.refuseReading(batchID, recs[0], code, err)
			return
		}
		mid := len(recs) / 2
		h.submitSet(ctx, batchID, recs[:mid])
		h.submitSet(ctx, batchID, recs[mid:])
		return
	}
}

// privacyPart is readings that go into one transaction: public ones, or
// the private ones of one owner org.
type privacyPart struct {
	owner string // "" for public readings
	recs  []Record
}

// byPrivacy splits readings into public ones and each owner's private ones,
// in order of first appearance, by the devices' cached records. A device
// that cannot be looked up goes with the public readings, where the ledger
// decides.
func (h *Hub) byPrivacy(ctx context.Context, recs []Record) []privacyPart {
	var parts []privacyPart
	index := map[string]int{}
	for _, r := range recs {
		owner := h.privateOwner(ctx, r)
		i, ok := index[owner]
		if !ok {
			i = len(parts)
			index[owner] = i
			parts = append(parts, privacyPart{owner: owner})
		}
		parts[i].recs = append(parts[i].recs, r)
	}
	return parts
}

// privateOwner is the owner org of a private device's reading, or "" for a
// public device (or one that cannot be looked up).
func (h *Hub) privateOwner(ctx context.Context, r Record) string {
	info, err := h.dir.lookup(ctx, r.Device)
	if err != nil || info.device == nil || !info.device.Private {
		return ""
	}
	return info.device.Owner
}

// transient reports whether an error may go away by itself: unclassified
// errors (network, timeouts, exhausted conflict retries), INTERNAL, and
// CLOCK_SKEW (an endorser's clock and this hub's disagree until NTP mends
// one of them).
func transient(code api.Code) bool {
	return code == "" || code == api.CodeInternal || code == api.CodeClockSkew
}

// dropCommitted resolves the readings already on the ledger and returns
// the others. It looked each reading up with telemetry:Get, which the
// ledger no longer has: it keeps no readings, only each device's replay
// state. So nothing is looked up, and the ledger's REPLAY refusal decides
// (as it did when the hub may not read telemetry): a set that committed
// before is refused, bisected, and each reading dropped as already there.
//
// TODO(index): ask the replay state instead — client.Seen
// (telemetry:Seen) for the devices of recs, resolving "accepted" readings
// (and "below-window" ones, which can never commit, counted apart) — or
// the org's index, to also tell the hub's bytes from other content under
// the same sequence number.
func (h *Hub) dropCommitted(_ context.Context, _ uint64, recs []Record) []Record {
	return recs
}

// refuseReading drops a reading the ledger refused on its own. A REPLAY
// refusal means the reading (ours, from before a crash, or the same bytes
// relayed by another hub) is already on the ledger.
func (h *Hub) refuseReading(batchID uint64, r Record, code api.Code, err error) {
	if code == api.CodeReplay {
		h.metrics.alreadyOnLedger.Inc()
		h.log.Debug("reading already on the ledger", "device", r.Device, "seq", r.Seq)
	} else {
		h.metrics.ledgerRejected.WithLabelValues(strings.ToLower(string(code))).Inc()
		h.log.Warn("ledger refused reading; dropped", "device", r.Device, "seq", r.Seq, "code", code, "err", err)
	}
	h.resolve(batchID, []Record{r})
}

func (h *Hub) resolve(batchID uint64, recs []Record) {
	ids := make([]uint64, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	if err := h.outbox.Resolve(batchID, ids); err != nil {
		h.log.Error("resolving readings", "batch", batchID, "err", err)
	}
}

// startAckWorker records stored command acks on the ledger.
func (h *Hub) startAckWorker() {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		backoff := 200 * time.Millisecond
		for {
			acks, err := h.outbox.Acks()
			if err != nil {
				h.log.Error("reading acks", "err", err)
			}
			retry := false
			for _, a := range acks {
				if h.ctx.Err() != nil {
					return
				}
				_, err := h.cfg.Ledger.AckCommand(h.ctx, a.Envelope)
				code := api.CodeOf(err)
				switch {
				case err == nil:
					h.metrics.acksRecorded.Inc()
				case transient(code):
					h.log.Warn("ack not recorded; will retry", "command", a.Command, "err", err)
					retry = true
					continue
				default:
					h.metrics.rejected.WithLabelValues("ack_" + strings.ToLower(string(code))).Inc()
					h.log.Warn("ledger refused ack", "device", a.Device, "command", a.Command, "err", err)
					reason := "ledger_refused"
					if code == api.CodeNotFound {
						reason = "unknown_command"
					}
					h.sendError(a.Device, errorForAck(reason, a, err))
				}
				if err := h.outbox.DeleteAck(a.ID); err != nil {
					h.log.Error("deleting ack", "err", err)
				}
			}
			wait := time.Hour
			if retry {
				wait = backoff
				backoff = min(backoff*2, 10*time.Second)
			} else {
				backoff = 200 * time.Millisecond
			}
			select {
			case <-h.acksReady:
			case <-time.After(wait):
			case <-h.ctx.Done():
				return
			}
		}
	}()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
