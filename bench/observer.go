package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
)

// observer follows the channel's blocks as an org's index does: an
// index.Follower verifies each block from the genesis block on
// (receipt.Chain) and decodes it, the readings of valid
// telemetry:SubmitBatch transactions from the transaction's arguments. The
// observer keeps, per block, when the bench's peer delivered it (before
// verification, so the bench's own work is not in the latencies), the
// iotledger transactions' validation codes and the telemetry batches'
// sizes, and, while asked to, when each reading was committed.
//
// Verifying the chain from its start costs the bench time once, before
// the first workload that needs the observer: about a millisecond of one
// core per transaction the channel holds.
type observer struct {
	mu       sync.Mutex
	arrived  map[uint64]time.Time // block number → when the peer delivered it, until applied
	next     uint64               // blocks applied
	blocks   []blockSeen
	readings map[readingKey]time.Time // when recording: (device, seq) → when its block arrived
	waiters  []func(*api.Event, time.Time)
	stopped  chan struct{}
	err      error // why the follower stopped
}

// blockSeen is what the observer keeps of one block.
type blockSeen struct {
	number  uint64
	at      time.Time
	txs     int64            // iotledger transactions, valid or not
	invalid map[string]int64 // by validation code, nil if none
	batches int64            // telemetry batches committed (events)
	size    int64            // their readings
}

type readingKey struct {
	device string
	seq    uint64
}

// startObserver starts following the channel through c (the genesis block
// its peer serves is the trust anchor: the bench trusts its own network)
// and returns once the blocks committed so far are applied.
func startObserver(ctx context.Context, c *client.Client, chaincode string, log *slog.Logger, progressf func(string, ...any)) (*observer, error) {
	anchor, _, err := c.TrustAnchor(ctx)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	height, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	o := &observer{arrived: map[uint64]time.Time{}, stopped: make(chan struct{})}
	f := index.NewFollower(observerStore{o: o}, timedBlocks{c: c, o: o}, anchor, chaincode, log)
	go func() {
		err := f.Run(ctx)
		o.mu.Lock()
		o.err = err
		o.mu.Unlock()
		close(o.stopped)
	}()
	progressf("following the channel: verifying its %d blocks so far (once) …", height)
	start := time.Now()
	if err := o.waitFor(ctx, height); err != nil {
		return nil, err
	}
	progressf("following the channel: %d blocks verified in %s", height, time.Since(start).Round(100*time.Millisecond))
	return o, nil
}

// timedBlocks is the follower's block source: it notes when each block
// arrives from the peer before the follower verifies it.
type timedBlocks struct {
	c *client.Client
	o *observer
}

func (s timedBlocks) Blocks(ctx context.Context, from uint64) (<-chan *common.Block, error) {
	in, err := s.c.Blocks(ctx, from)
	if err != nil {
		return nil, err
	}
	// A few blocks of slack: the follower keeps up once it has caught up,
	// and while it catches up the arrival times do not matter.
	out := make(chan *common.Block, 16)
	go func() {
		defer close(out)
		for b := range in {
			s.o.arrive(b.GetHeader().GetNumber(), time.Now())
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// observerStore is the follower's store. It keeps nothing but the
// checkpoint and hands each verified block to the observer; the follower
// calls no other method of a Store (the embedded nil one).
type observerStore struct {
	index.Store
	o *observer
}

func (s observerStore) Checkpoint(context.Context) (uint64, []byte, error) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	return s.o.next, nil, nil
}

func (s observerStore) Apply(_ context.Context, b *index.Block) error {
	s.o.apply(b)
	return nil
}

func (o *observer) arrive(n uint64, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.arrived[n]; !ok {
		o.arrived[n] = at
	}
}

func (o *observer) apply(b *index.Block) {
	o.mu.Lock()
	at, ok := o.arrived[b.Number]
	if !ok {
		at = time.Now()
	}
	delete(o.arrived, b.Number)
	bs := blockSeen{number: b.Number, at: at}
	var events []*api.Event
	for i := range b.Transactions {
		t := &b.Transactions[i]
		bs.txs++
		if !t.Valid() {
			if bs.invalid == nil {
				bs.invalid = map[string]int64{}
			}
			bs.invalid[t.ValidationCode]++
			continue
		}
		if o.readings != nil {
			for _, r := range t.Readings {
				o.readings[readingKey{r.Device, r.Seq}] = at
			}
		}
		if ev := t.Event; ev != nil {
			if ev.Type == api.EventTelemetryBatch && ev.Batch != nil {
				bs.batches++
				bs.size += int64(ev.Batch.Size)
			}
			events = append(events, ev)
		}
	}
	o.blocks = append(o.blocks, bs)
	o.next = b.Number + 1
	waiters := slices.Clone(o.waiters)
	o.mu.Unlock()
	for _, ev := range events {
		for _, w := range waiters {
			w(ev, at)
		}
	}
}

// waitFor returns once blocks 0..height-1 are applied.
func (o *observer) waitFor(ctx context.Context, height uint64) error {
	for {
		o.mu.Lock()
		next := o.next
		o.mu.Unlock()
		if next >= height {
			return nil
		}
		select {
		case <-o.stopped:
			return o.failure()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// caughtUp returns once every block c's peer has committed is applied, and
// the height it waited for.
func (o *observer) caughtUp(ctx context.Context, c *client.Client) (uint64, error) {
	h, err := c.Height(ctx)
	if err != nil {
		return 0, err
	}
	return h, o.waitFor(ctx, h)
}

func (o *observer) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil || errors.Is(o.err, context.Canceled) {
		return errors.New("the observer stopped following the channel")
	}
	return fmt.Errorf("the observer stopped following the channel: %w", o.err)
}

// watch calls fn with every chaincode event of a valid transaction applied
// from now on, until the returned func is called.
func (o *observer) watch(fn func(*api.Event, time.Time)) func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := len(o.waiters)
	o.waiters = append(o.waiters, fn)
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.waiters[id] = func(*api.Event, time.Time) {}
	}
}

// committedBetween counts telemetry batches (and their readings) in the
// blocks that arrived in [from, to).
func (o *observer) committedBetween(from, to time.Time) (batches, readings int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, b := range o.blocks {
		if !b.at.Before(from) && b.at.Before(to) {
			batches += b.batches
			readings += b.size
		}
	}
	return batches, readings
}

// validation sums the validation codes of the iotledger transactions in
// blocks [from, to).
func (o *observer) validation(from, to uint64) *Validation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return tallyValidation(o.blocks, from, to)
}

// tallyValidation counts the validation codes of the blocks numbered from
// up to (not including) to.
func tallyValidation(blocks []blockSeen, from, to uint64) *Validation {
	v := &Validation{FromBlock: from, ToBlock: to}
	for _, b := range blocks {
		if b.number < from || b.number >= to {
			continue
		}
		v.Transactions += b.txs
		for code, n := range b.invalid {
			if v.Invalid == nil {
				v.Invalid = map[string]int64{}
			}
			v.Invalid[code] += n
		}
	}
	v.Conflicts = v.Invalid[peer.TxValidationCode_MVCC_READ_CONFLICT.String()] + v.Invalid[peer.TxValidationCode_PHANTOM_READ_CONFLICT.String()]
	return v
}

// recordReadings starts (or, with false, stops and forgets) keeping when
// each reading of a valid batch was committed.
func (o *observer) recordReadings(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.readings = nil
	if on {
		o.readings = map[readingKey]time.Time{}
	}
}

// readingCommitted is when the block with the valid batch transaction
// carrying (device, seq) arrived, if it did while recording.
func (o *observer) readingCommitted(device string, seq uint64) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.readings[readingKey{device, seq}]
	return at, ok
}

// observer returns the run's observer, started (and caught up) on first
// use; nil once it could not be started, which the report notes.
func (e *Env) observer(ctx context.Context) *observer {
	if e.obs != nil || e.obsErr != nil {
		return e.obs
	}
	octx, cancel := context.WithCancel(ctx)
	o, err := startObserver(octx, e.Operator, e.Target.Profile.Chaincode, e.log, e.Progressf)
	if err != nil {
		cancel()
		e.obsErr = err
		e.Progressf("%v", err)
		e.Report.Notes = append(e.Report.Notes, "validation codes and commit times not observed: "+err.Error())
		return nil
	}
	e.obs, e.obsStop = o, cancel
	return o
}

// closeObserver stops following the channel.
func (e *Env) closeObserver() {
	if e.obsStop != nil {
		e.obsStop()
		<-e.obs.stopped
	}
}

// observeFrom is the block to count a workload's transactions from: the
// height once every block so far is applied. An observer that fails is
// noted, and nil returned for it.
func (e *Env) observeFrom(ctx context.Context, o *observer) (uint64, *observer) {
	if o == nil {
		return 0, nil
	}
	h, err := o.caughtUp(ctx, e.Operator)
	if err != nil {
		e.Report.Notes = append(e.Report.Notes, "validation codes not counted: "+err.Error())
		return 0, nil
	}
	return h, o
}

// validationSince is what the peers' flags said of the iotledger
// transactions committed since block from, once the observer has every
// block committed so far; nil without an observer or when it fails (noted).
func (e *Env) validationSince(ctx context.Context, o *observer, from uint64) *Validation {
	if o == nil {
		return nil
	}
	to, err := o.caughtUp(ctx, e.Operator)
	if err != nil {
		e.Report.Notes = append(e.Report.Notes, "validation codes not counted: "+err.Error())
		return nil
	}
	return o.validation(from, to)
}
