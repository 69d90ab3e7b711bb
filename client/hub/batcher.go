package hub

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
)

// startBatcher recovers batches left by an earlier run, then forms new
// batches from the outbox and hands them to the submitters.
//
// Device lanes: a device's readings are in one batch in flight at a time.
// On the ledger every batch reads (and writes) the state of each of its
// devices (the replay guard's key ranges, the device's records), so two
// batches in flight with one device conflict at commit (MVCC_READ_CONFLICT,
// PHANTOM_READ_CONFLICT), are retried and hold up everybody; with lanes they
// never conflict with each other, and a device that sends fast is limited
// by its own batch cadence (at most BatchSize readings per commit round
// trip), not by others'. The outbox keeps the lanes (Outbox.TakeLaneBatches):
// a recorded batch holds its devices, their newer readings stay pending, in
// order, until a submitter has resolved the batch and released it
// (batchDone), which wakes the batcher like a new reading does. The lanes
// are kept where the pending readings are, rather than as a set of busy
// devices here that batch formation would skip past, so that forming a
// batch does not read a fast device's whole backlog every time, and the
// batcher knows how many readings can go now (Outbox.Available) to decide
// whether to wait for a full batch.
func (h *Hub) startBatcher() {
	recovered, err := h.outbox.Batches()
	if err != nil {
		h.log.Error("reading in-flight batches", "err", err)
	}
	if len(recovered) > 0 {
		h.log.Info("recovering batches that were in flight", "batches", len(recovered))
	}
	recovery := &recoveryQueue{waiting: recovered, running: map[string]int{}}
	work := make(chan batchJob, h.cfg.Submitters)
	for range h.cfg.Submitters {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for job := range work {
				h.submitBatch(h.ctx, job)
				h.batchDone(job, recovery)
			}
		}()
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(work)
		h.formBatches(work, recovery)
	}()
}

type batchJob struct {
	batch   Batch
	recheck bool // may already be (partly) on the ledger: look before submitting
}

// batchDone releases a submitted batch's devices for their next batches and
// wakes the batcher. A batch cut short by shutdown keeps them: its readings
// stay recorded, for the next start to re-check.
func (h *Hub) batchDone(job batchJob, recovery *recoveryQueue) {
	if h.ctx.Err() != nil {
		return
	}
	if job.recheck {
		recovery.done(job.batch)
	}
	h.outbox.Release(job.batch.ID)
	poke(h.readingsReady)
}

// recoveryQueue holds the batches an earlier run left recorded, to be
// submitted (with recheck) in the order they were formed, two of them never
// in flight with a device in common: a hub before device lanes left batches
// that share devices. Until all the recovered batches holding a device are
// released, the outbox keeps the device's pending readings back.
type recoveryQueue struct {
	mu      sync.Mutex
	waiting []Batch        // not yet queued, in batch id (formation) order
	running map[string]int // device → recovered batches queued or submitting that hold it
}

// ready removes and returns the waiting batches that may be queued now: no
// device of theirs is in a recovered batch in flight, nor in an earlier
// waiting one (whose readings of the device are older).
func (q *recoveryQueue) ready() []Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		return nil
	}
	var out []Batch
	blocked := map[string]bool{}
	keep := q.waiting[:0]
	for _, b := range q.waiting {
		devs := batchDevices(b)
		free := true
		for _, d := range devs {
			if q.running[d] > 0 || blocked[d] {
				free = false
			}
		}
		if !free {
			keep = append(keep, b)
			for _, d := range devs {
				blocked[d] = true
			}
			continue
		}
		for _, d := range devs {
			q.running[d]++
		}
		out = append(out, b)
	}
	clear(q.waiting[len(keep):])
	q.waiting = keep
	return out
}

// done marks a recovered batch resolved.
func (q *recoveryQueue) done(b Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range batchDevices(b) {
		if q.running[d]--; q.running[d] <= 0 {
			delete(q.running, d)
		}
	}
}

// batchDevices lists the devices of a batch, in order of first appearance.
func batchDevices(b Batch) []string {
	var devs []string
	for _, r := range b.Readings {
		if !slices.Contains(devs, r.Device) {
			devs = append(devs, r.Device)
		}
	}
	return devs
}

// queueRecovered queues the recovered batches that may go now; false once
// the hub stops.
func (h *Hub) queueRecovered(work chan<- batchJob, recovery *recoveryQueue) bool {
	for _, b := range recovery.ready() {
		select {
		case work <- batchJob{batch: b, recheck: true}:
		case <-h.ctx.Done():
			return false
		}
	}
	return true
}

// formBatches waits until BatchSize readings can go (readings of devices
// without a batch in flight, Outbox.Available) or BatchWait has passed since
// readings first waited (no waiting once the hub is flushing, nor for
// readings that a resolved batch has just freed: they waited for that batch
// already, and together they are the next batch), then records
// batches and queues them. When several batches' worth can go it records
// as many as the queue has room for in one outbox transaction, so idle
// submitters get work without one fsync per batch. A batch that is not
// full is recorded only once BatchWait has passed. Queuing blocks while all
// submitters are busy and the queue is full, which lets readings accumulate
// into full batches under load. A resolved batch wakes it (its devices'
// readings can go again), and recovered batches are queued first, as their
// devices become free.
func (h *Hub) formBatches(work chan<- batchJob, recovery *recoveryQueue) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var shortAt time.Time // when a short batch may go: BatchWait after readings could first go
	for {
		if !h.queueRecovered(work, recovery) {
			return
		}
		if h.outbox.Available() == 0 {
			shortAt = time.Time{}
			select {
			case <-h.readingsReady:
				continue
			case <-h.ctx.Done():
				return
			}
		}
		if shortAt.IsZero() {
			shortAt = time.Now().Add(h.cfg.BatchWait)
		}
		if h.outbox.TakeReleased() {
			shortAt = time.Now() // they waited for their device's batch in flight already
		}
		flushing := isClosed(h.flushing)
	fill:
		for !flushing && h.outbox.Available() < int64(h.cfg.BatchSize) {
			wait := time.Until(shortAt)
			if wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case <-h.readingsReady:
				timer.Stop()
				if !h.queueRecovered(work, recovery) {
					return
				}
				if h.outbox.TakeReleased() {
					shortAt = time.Now()
				}
			case <-timer.C:
			case <-h.flushing:
				timer.Stop()
				break fill
			case <-h.ctx.Done():
				timer.Stop()
				return
			}
		}
		short := isClosed(h.flushing) || !time.Now().Before(shortAt)
		n := batchesToForm(h.outbox.Available(), h.cfg.BatchSize, cap(work)-len(work))
		bs, err := h.outbox.TakeLaneBatches(h.cfg.BatchSize, n, short, h.cfg.Now())
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

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// batchesToForm is how many batches to record at once: every full batch
// that can go, as far as the submitters' queue has room, and at least one
// (a short one once BatchWait has passed).
func batchesToForm(available int64, batchSize, room int) int {
	full := int(min(available/int64(batchSize), int64(room)))
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
	if ctx.Err() != nil {
		return // stays in the outbox, for the next start to re-check
	}
	dropped := len(job.batch.Readings) - len(recs)
	h.submitSet(ctx, job.batch.ID, recs)
	if ctx.Err() == nil {
		h.log.Info("recovered batch resolved: what the replay state has or is below its window was not submitted (see iotledger_hub_readings_already_on_ledger_total)",
			"batch", job.batch.ID, "readings", len(job.batch.Readings), "not_submitted", dropped, "submitted", len(recs))
	}
}

// submitSet submits readings as transactions: public readings in one, the
// private readings of each owner org in one of their own (endorsed by that
// org alone). Transient failures are retried (after asking the replay
// state whether an unknown outcome committed); a REPLAY refusal of the
// whole set first drops the readings the replay state has, and a refusal
// that leaves is bisected until the refused reading is alone, and dropped.
func (h *Hub) submitSet(ctx context.Context, batchID uint64, recs []Record) {
	if parts := h.byPrivacy(ctx, recs); len(parts) > 1 {
		for _, p := range parts {
			h.submitSet(ctx, batchID, p.recs)
		}
		return
	}
	backoff := 200 * time.Millisecond
	traced := client.WithSubmitTrace(ctx, h.submitTrace)
	for len(recs) > 0 {
		req := api.BatchRequest{Readings: make([]reading.Envelope, len(recs))}
		for i, r := range recs {
			req.Readings[i] = r.Envelope
		}
		start := time.Now()
		var err error
		owner := h.privateOwner(ctx, recs[0])
		if pl, ok := h.cfg.Ledger.(PrivateLedger); ok && owner != "" {
			_, err = pl.SubmitPrivateBatchFor(traced, owner, req)
		} else {
			_, err = h.cfg.Ledger.SubmitBatch(traced, req)
		}
		h.metrics.submitSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			h.metrics.commit.committed(h.cfg.Now())
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
			h.metrics.commit.failed(h.cfg.Now(), err)
			if identityRefused(err) {
				h.log.Error("submit refused: "+identityRefusedAdvice, "batch", batchID, "readings", len(recs), "err", err)
			} else {
				h.log.Warn("submit failed; will retry", "batch", batchID, "readings", len(recs), "err", err)
			}
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
			// The transaction may have committed although we got an error.
			recs = h.dropCommitted(ctx, batchID, recs)
			continue
		}
		h.log.Debug("ledger refused batch; isolating", "batch", batchID, "readings", len(recs), "code", code, "err", err)
		// Only a REPLAY refusal says a reading of the set is on the ledger
		// (or below its window); others are isolated by bisecting, and a
		// half holding a reading the ledger has is then refused as REPLAY.
		remaining := recs
		if code == api.CodeReplay {
			remaining = h.dropCommitted(ctx, batchID, recs)
		}
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

// seenPerCall is the most sequence numbers one telemetry:Seen call asks
// about (the chaincode's limit, its MaxBatchReadings).
const seenPerCall = 500

// reasonBelowWindow is the iotledger_hub_ledger_rejected_total reason of
// readings dropped because they are below their device's replay window.
const reasonBelowWindow = "below_window"

// dropCommitted asks the ledger's replay state which readings of recs it
// has — telemetry:Seen, per device, at most seenPerCall sequence numbers a
// call — resolves those it will not take, and returns the others, in order:
//
//   - accepted: the ledger holds a reading of the device under this
//     sequence number. Resolved, counted as already on the ledger
//     (iotledger_hub_readings_already_on_ledger_total). The replay state
//     knows sequence numbers, not bytes: other content under the same
//     number (a device that signed two readings with one) counts the same;
//     the ledger would refuse ours as REPLAY either way, and the org's
//     index tells them apart.
//   - not seen: returned, to be submitted.
//   - below the window: at or below the device's highest accepted
//     sequence number minus the replay window (1,024). The ledger no
//     longer tells whether it took the reading, and refuses it as REPLAY
//     whatever it was: it committed before the device moved on, or it
//     never did and never can. Submitting it is certain to be refused, and
//     counting it as on the ledger would claim what nobody here knows; so
//     it is resolved without a transaction, counted apart
//     (iotledger_hub_ledger_rejected_total{reason="below_window"}) and
//     logged, for the org's index to say which. It takes the device's
//     readings moving on by 1,024 without this one: through another hub
//     while this one was down (this hub sends none of a device's newer
//     readings while an older batch of it is unresolved, device lanes), or
//     the device sending it that late.
//
// The readings of a device the ledger does not answer for are returned
// too, and the ledger's REPLAY refusal decides (submitSet): an error
// classified by the chaincode (another org's private device, whose replay
// state only the owner's peers hold; a device this hub may neither write
// nor read) skips the device, an unclassified or INTERNAL one (the peer
// unreachable) stops the asking.
//
// An answer may be stale by the time of the submit (another hub relaying
// the same readings, a transaction of ours with an unknown outcome that
// commits only now). That costs a refused or invalidated transaction, never
// a second copy: the chaincode checks the replay state again, and Fabric's
// MVCC check at commit invalidates a batch endorsed on the older state.
func (h *Hub) dropCommitted(ctx context.Context, batchID uint64, recs []Record) []Record {
	if len(recs) == 0 {
		return recs
	}
	var devices []string
	byDevice := map[string][]int{} // device → indexes into recs, in order
	for i, r := range recs {
		if _, ok := byDevice[r.Device]; !ok {
			devices = append(devices, r.Device)
		}
		byDevice[r.Device] = append(byDevice[r.Device], i)
	}
	drop := make([]bool, len(recs))
	var resolved []Record
asking:
	for _, dev := range devices {
		for chunk := range slices.Chunk(byDevice[dev], seenPerCall) {
			seqs := make([]uint64, len(chunk))
			for j, i := range chunk {
				seqs[j] = recs[i].Seq
			}
			ans, err := h.cfg.Ledger.Seen(ctx, dev, seqs)
			if err != nil {
				if ctx.Err() != nil {
					break asking // what is known is resolved; the rest stays for the next start
				}
				h.log.Debug("replay state not asked; the ledger's REPLAY refusal decides", "batch", batchID, "device", dev, "err", err)
				if transient(api.CodeOf(err)) {
					break asking
				}
				continue asking
			}
			if !answers(ans, seqs) {
				h.log.Warn("the ledger's replay state answered other sequence numbers than asked; the ledger decides", "batch", batchID, "device", dev)
				continue asking
			}
			var below []uint64
			for j, st := range ans.Seqs {
				i := chunk[j]
				switch st.State {
				case api.SeqAccepted:
					h.metrics.alreadyOnLedger.Inc()
				case api.SeqBelowWindow:
					h.metrics.ledgerRejected.WithLabelValues(reasonBelowWindow).Inc()
					below = append(below, st.Seq)
				default: // not seen, or a state this hub does not know
					continue
				}
				drop[i] = true
				resolved = append(resolved, recs[i])
			}
			if len(below) > 0 {
				h.log.Warn("readings older than the device's replay window: the ledger refuses them whether it holds them or not; dropped without submitting",
					"batch", batchID, "device", dev, "readings", len(below), "first_seq", below[0], "last_seq", below[len(below)-1],
					"high_water", ans.HighWater, "window", ans.Window)
			}
		}
	}
	if len(resolved) == 0 {
		return recs
	}
	h.resolve(batchID, resolved)
	keep := make([]Record, 0, len(recs)-len(resolved))
	for i, r := range recs {
		if !drop[i] {
			keep = append(keep, r)
		}
	}
	return keep
}

// answers reports whether a Seen answer is about seqs, in the order asked.
func answers(ans *api.SeenAnswer, seqs []uint64) bool {
	if ans == nil || len(ans.Seqs) != len(seqs) {
		return false
	}
	for i, st := range ans.Seqs {
		if st.Seq != seqs[i] {
			return false
		}
	}
	return true
}

// refuseReading drops a reading the ledger refused on its own. A REPLAY
// refusal the replay state could not account for (dropCommitted: not
// asked, or stale) is taken to mean the reading (ours, from before a
// crash, or the same bytes relayed by another hub) is already on the
// ledger. A NOT_FOUND refusal is not the reading's fault: the hub accepted
// it from a device it looked up on the ledger, which no longer knows the
// device (another ledger, or the record went away); it is parked, not
// dropped (parked.go).
func (h *Hub) refuseReading(batchID uint64, r Record, code api.Code, err error) {
	if code == api.CodeNotFound {
		h.park(batchID, []Record{r}, ParkReasonNotFound, err)
		return
	}
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
