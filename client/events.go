package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
)

// ChaincodeEvent is one iotledger chaincode event: what one committed
// transaction produced.
type ChaincodeEvent struct {
	BlockNumber uint64    `json:"blockNumber"`
	TxID        string    `json:"txId"`
	Event       api.Event `json:"event"`
	cp          Checkpointer
}

// Checkpoint records the event as handled in the stream's Checkpointer (a
// no-op without one). Call it after handling the event: a stream opened
// later with the same Checkpointer starts right after it.
func (e ChaincodeEvent) Checkpoint() error {
	if e.cp == nil {
		return nil
	}
	return e.cp.CheckpointTransaction(e.BlockNumber, e.TxID)
}

// EventOptions says where an event stream starts.
type EventOptions struct {
	// Checkpoint, if set and not empty, is where the stream starts; events
	// record themselves there when the consumer calls their Checkpoint.
	Checkpoint Checkpointer
	// StartBlock is the first block to read when there is no checkpoint.
	// Without either, the stream starts at the current end of the chain.
	StartBlock *uint64
	// ReconnectBackoff is the first wait before reconnecting after the
	// stream fails (doubling up to 10 s); default 500 ms.
	ReconnectBackoff time.Duration
}

// position is a place in the chain's event sequence: the next event is in
// block, after the event of txID ("" = from the block's start).
type position struct {
	block uint64
	txID  string
	set   bool // false: from the next committed block
}

func (p position) BlockNumber() uint64   { return p.block }
func (p position) TransactionID() string { return p.txID }

// eventSource opens one chaincode event stream starting at from.
type eventSource func(ctx context.Context, from position) (<-chan *gw.ChaincodeEvent, error)

// Events streams the iotledger chaincode's events in commit order until ctx
// is done, when the channel closes.
//
// Fabric ends an event stream silently when the peer goes away; Events
// reconnects, with backoff, from right after the last event it delivered,
// so within one stream no event is missed or repeated. Across processes the
// Checkpointer carries the position: call ev.Checkpoint() after handling
// each event, and a later Events call with the same Checkpointer resumes
// right after the last checkpointed event. Events whose payload does not
// decode are logged and skipped.
func (c *Client) Events(ctx context.Context, opts EventOptions) (<-chan ChaincodeEvent, error) {
	if c.network == nil {
		return nil, errors.New("events need a gateway connection")
	}
	start, err := c.startPosition(ctx, opts)
	if err != nil {
		return nil, err
	}
	src := func(ctx context.Context, from position) (<-chan *gw.ChaincodeEvent, error) {
		var eo []gw.ChaincodeEventsOption
		switch {
		case !from.set:
		case from.txID == "":
			eo = append(eo, gw.WithStartBlock(from.block))
		default:
			eo = append(eo, gw.WithCheckpoint(from))
		}
		return c.network.ChaincodeEvents(ctx, c.chain, eo...)
	}
	return c.streamEvents(ctx, src, start, opts), nil
}

// startPosition picks where a new stream begins: the checkpoint, else the
// start block, else the current chain height (so that a reconnect before
// the first event still misses nothing).
func (c *Client) startPosition(ctx context.Context, opts EventOptions) (position, error) {
	if cp := opts.Checkpoint; cp != nil && (cp.BlockNumber() != 0 || cp.TransactionID() != "") {
		return position{block: cp.BlockNumber(), txID: cp.TransactionID(), set: true}, nil
	}
	if opts.StartBlock != nil {
		return position{block: *opts.StartBlock, set: true}, nil
	}
	h, err := c.chainHeight(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "cannot read the chain height; events start at the next block", "err", err)
		return position{}, nil
	}
	return position{block: h, set: true}, nil
}

// chainHeight asks the peer's query system chaincode for the channel height.
func (c *Client) chainHeight(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeouts.Evaluate)
	defer cancel()
	res, err := c.network.GetContract("qscc").EvaluateWithContext(ctx, "GetChainInfo", gw.WithArguments(c.channel))
	if err != nil {
		return 0, err
	}
	var info common.BlockchainInfo
	if err := proto.Unmarshal(res, &info); err != nil {
		return 0, fmt.Errorf("decoding chain info: %w", err)
	}
	return info.GetHeight(), nil
}

func (c *Client) streamEvents(ctx context.Context, open eventSource, from position, opts EventOptions) <-chan ChaincodeEvent {
	out := make(chan ChaincodeEvent)
	first := opts.ReconnectBackoff
	if first <= 0 {
		first = 500 * time.Millisecond
	}
	const ceiling = 10 * time.Second
	go func() {
		defer close(out)
		wait := first
		for ctx.Err() == nil {
			delivered, err := c.runStream(ctx, open, &from, out, opts.Checkpoint)
			if ctx.Err() != nil {
				return
			}
			if delivered {
				wait = first
			}
			c.log.WarnContext(ctx, "event stream ended; reconnecting",
				"fromBlock", from.block, "afterTx", from.txID, "err", err, "wait", wait)
			if sleep(ctx, wait) != nil {
				return
			}
			wait = min(wait*2, ceiling)
		}
	}()
	return out
}

// runStream reads one stream until it ends, advancing from past every event
// delivered (or skipped). It reports whether any event was delivered.
func (c *Client) runStream(ctx context.Context, open eventSource, from *position, out chan<- ChaincodeEvent, cp Checkpointer) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := open(sctx, *from)
	if err != nil {
		return false, err
	}
	// The gateway's reader blocks sending to events until it is read:
	// drain what is left once this stream is abandoned.
	defer func() {
		cancel()
		go func() {
			for range events { //nolint:revive // draining
			}
		}()
	}()
	delivered := false
	for {
		var raw *gw.ChaincodeEvent
		var ok bool
		select {
		case <-ctx.Done():
			return delivered, ctx.Err()
		case raw, ok = <-events:
		}
		if !ok {
			return delivered, errors.New("stream closed")
		}
		next := position{block: raw.BlockNumber, txID: raw.TransactionID, set: true}
		if raw.EventName != api.EventName {
			*from = next
			continue
		}
		var ev api.Event
		if err := json.Unmarshal(raw.Payload, &ev); err != nil {
			c.log.WarnContext(ctx, "skipping an event whose payload does not decode",
				"block", raw.BlockNumber, "txId", raw.TransactionID, "err", err)
			*from = next
			continue
		}
		select {
		case <-ctx.Done():
			return delivered, ctx.Err()
		case out <- ChaincodeEvent{BlockNumber: raw.BlockNumber, TxID: raw.TransactionID, Event: ev, cp: cp}:
		}
		*from = next
		delivered = true
	}
}

// EventFeed hands a consumer that handles one event at a time (the hub is
// one) the decoded events of c's stream. With a Checkpoint, the stream
// resumes from it, and an event is checkpointed once the consumer asks for
// the next one — the channel is unbuffered, so that means it was handled:
// a restarted consumer neither misses nor re-applies events beyond the one
// it was handling.
type EventFeed struct {
	Client     *Client
	Checkpoint Checkpointer // optional
}

// LedgerEvents starts the stream; the channel closes when ctx ends.
func (f EventFeed) LedgerEvents(ctx context.Context) (<-chan api.Event, error) {
	in, err := f.Client.Events(ctx, EventOptions{Checkpoint: f.Checkpoint})
	if err != nil {
		return nil, err
	}
	out := make(chan api.Event)
	go func() {
		defer close(out)
		var prev *ChaincodeEvent
		for ev := range in {
			select {
			case out <- ev.Event:
			case <-ctx.Done():
				return
			}
			if prev != nil {
				if err := prev.Checkpoint(); err != nil {
					f.Client.log.Warn("event checkpoint not saved", "block", prev.BlockNumber, "tx", prev.TxID, "err", err)
				}
			}
			cur := ev
			prev = &cur
		}
	}()
	return out, nil
}
