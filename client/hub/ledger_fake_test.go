package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// fakeLedger is an in-memory stand-in for the chaincode with the same
// refusal rules the hub relies on: batches are all-or-nothing, a (device,
// seq) is accepted once (REPLAY after), signatures must verify, devices must
// be active.
type fakeLedger struct {
	mu        sync.Mutex
	devices   map[string]*api.Device
	readings  map[string]api.StoredReading
	commits   map[string]int // device/seq → times committed
	commands  map[string]*api.Command
	messaging map[[2]string]bool // (from, to) allowed device:message
	denyWrite map[string]bool    // devices this hub may not write
	denyReads bool               // Reading answers ACCESS_DENIED (the hub role's default)

	submitCalls int
	// failSubmit, when set, is asked before each SubmitBatch: "before" fails
	// it without committing, "after" commits and then reports an error (an
	// unknown outcome), "" lets it pass.
	failSubmit func(call int) string
	// blockSubmit, when set, makes SubmitBatch wait until ctx ends.
	blockSubmit bool

	events chan api.Event
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{
		devices:   map[string]*api.Device{},
		readings:  map[string]api.StoredReading{},
		commits:   map[string]int{},
		commands:  map[string]*api.Command{},
		messaging: map[[2]string]bool{},
		denyWrite: map[string]bool{},
		events:    make(chan api.Event, 16),
	}
}

var errUnavailable = errors.New("rpc error: code = Unavailable desc = connection refused")

func rkey(device string, seq uint64) string { return fmt.Sprintf("%s/%d", device, seq) }

func (f *fakeLedger) enroll(id string, key *reading.PublicKey, status api.DeviceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id] = &api.Device{ID: id, Owner: "Org1MSP", Type: "sensor", PublicKey: key.PEM(), KeyAlg: string(key.Algorithm()), KeyID: key.Fingerprint(), Status: status}
}

func (f *fakeLedger) setStatus(id string, s api.DeviceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id].Status = s
}

func (f *fakeLedger) Device(_ context.Context, id string) (*api.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "device "+id+" not found")
	}
	c := *d
	return &c, nil
}

func (f *fakeLedger) CheckAccess(_ context.Context, req api.AccessRequest) (*api.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch req.Action {
	case api.ActionTelemetryWrite:
		return &api.Decision{Allowed: !f.denyWrite[req.Resource]}, nil
	case api.ActionDeviceMessage:
		return &api.Decision{Allowed: f.messaging[[2]string{req.Device, req.Resource}]}, nil
	}
	return &api.Decision{}, nil
}

func (f *fakeLedger) SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error) {
	f.mu.Lock()
	f.submitCalls++
	call := f.submitCalls
	block := f.blockSubmit
	mode := ""
	if f.failSubmit != nil {
		mode = f.failSubmit(call)
	}
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if mode == "before" {
		return nil, errUnavailable
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []*reading.Reading
	inBatch := map[string]bool{}
	for i, env := range req.Readings {
		r, err := env.Decode()
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("reading %d: %v", i, err))
		}
		d, ok := f.devices[r.Device]
		if !ok {
			return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("reading %d: device %s", i, r.Device))
		}
		if d.Status != api.StatusActive {
			return nil, api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("reading %d: device %s is %s", i, r.Device, d.Status))
		}
		k, _ := reading.ParsePublicKey(d.PublicKey)
		if err := r.Verify(k); err != nil {
			return nil, api.Errorf(api.CodeBadSignature, fmt.Sprintf("reading %d", i))
		}
		key := rkey(r.Device, r.Seq)
		if _, dup := f.readings[key]; dup || inBatch[key] {
			return nil, api.Errorf(api.CodeReplay, fmt.Sprintf("reading %d (device %s seq %d): already on the ledger", i, r.Device, r.Seq))
		}
		inBatch[key] = true
		rs = append(rs, r)
	}
	id := fmt.Sprintf("tx%d", call)
	for i, r := range rs {
		key := rkey(r.Device, r.Seq)
		f.readings[key] = api.StoredReading{Device: r.Device, Seq: r.Seq, Payload: r.Raw, Signature: r.Signature, BatchID: id, Index: i}
		f.commits[key]++
	}
	if mode == "after" {
		return nil, errUnavailable
	}
	return &api.BatchReceipt{BatchID: id, Size: len(rs)}, nil
}

func (f *fakeLedger) Reading(_ context.Context, device string, seq uint64) (*api.StoredReading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.denyReads {
		return nil, api.Errorf(api.CodeAccessDenied, "no statement allows telemetry:read")
	}
	r, ok := f.readings[rkey(device, seq)]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no reading")
	}
	return &r, nil
}

func (f *fakeLedger) ListCommands(_ context.Context, q api.CommandQuery) (*api.CommandPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	page := &api.CommandPage{}
	for _, c := range f.commands {
		if c.Device == q.Device && (q.Status == "" || c.Status == q.Status) {
			page.Commands = append(page.Commands, *c)
		}
	}
	return page, nil
}

func (f *fakeLedger) addCommand(c api.Command) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands[c.ID] = &c
}

func (f *fakeLedger) command(id string) api.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.commands[id]
}

func (f *fakeLedger) MarkCommandDelivered(_ context.Context, id string) (*api.Command, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.commands[id]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "command "+id)
	}
	if c.Status != api.CommandPending {
		return nil, api.Errorf(api.CodeFailedPrecondition, "command is "+string(c.Status))
	}
	c.Status = api.CommandDelivered
	out := *c
	return &out, nil
}

func (f *fakeLedger) AckCommand(_ context.Context, env reading.Envelope) (*api.Command, error) {
	a, err := parseAck(env.Payload)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.commands[a.Command]
	if !ok || c.Device != a.Device {
		return nil, api.Errorf(api.CodeNotFound, "command "+a.Command)
	}
	k, _ := reading.ParsePublicKey(f.devices[a.Device].PublicKey)
	if err := k.Verify(reading.Message(reading.DomainAck, env.Payload), env.Signature); err != nil {
		return nil, api.Errorf(api.CodeBadSignature, "ack")
	}
	if c.Status != api.CommandDelivered && c.Status != api.CommandPending {
		return nil, api.Errorf(api.CodeFailedPrecondition, "command is "+string(c.Status))
	}
	c.Status = a.Status
	c.Result = a.Result
	now := time.Now()
	c.CompletedAt = &now
	out := *c
	return &out, nil
}

// LedgerEvents implements EventSource.
func (f *fakeLedger) LedgerEvents(ctx context.Context) (<-chan api.Event, error) {
	out := make(chan api.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeLedger) committed() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.commits))
	for k, v := range f.commits {
		out[k] = v
	}
	return out
}

// set changes the fake's configuration under its lock.
func (f *fakeLedger) set(change func(f *fakeLedger)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}
