// Package hubtest provides an in-memory ledger for tests of the hub and of
// device software: it applies the chaincode's refusal rules that the hub
// relies on (all-or-nothing batches, replay refusal, signature and status
// checks) without a Fabric network.
package hubtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Ledger is an in-memory stand-in for the chaincode with the same
// refusal rules the hub relies on: batches are all-or-nothing, a (device,
// seq) is accepted once (REPLAY after), signatures must verify, devices must
// be active.
type Ledger struct {
	mu        sync.Mutex
	devices   map[string]*api.Device
	readings  map[string]bool // device/seq on the ledger
	commits   map[string]int  // device/seq → times Committed
	commands  map[string]*api.Command
	Messaging map[[2]string]bool // (from, to) allowed device:message
	DenyWrite map[string]bool    // devices this hub may not write
	// Unreachable makes Device fail as if the peer were down.
	Unreachable bool

	submitCalls  int
	privateCalls int
	messages     map[string]api.StoredMessage // to/from/id → waiting message (messages.go)
	sentMessages int
	// FailSubmit, when set, is asked before each SubmitBatch: "before" fails
	// it without committing, "after" commits and then reports an error (an
	// unknown outcome), "" lets it pass.
	FailSubmit func(call int) string
	// BlockSubmit, when set, makes SubmitBatch wait until ctx ends.
	BlockSubmit bool

	Events chan api.Event
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		devices:   map[string]*api.Device{},
		readings:  map[string]bool{},
		commits:   map[string]int{},
		commands:  map[string]*api.Command{},
		Messaging: map[[2]string]bool{},
		DenyWrite: map[string]bool{},
		Events:    make(chan api.Event, 16),
	}
}

// ErrUnavailable is the unclassified error of a failed call.
var ErrUnavailable = errors.New("rpc error: code = Unavailable desc = connection refused")

// Key names a reading in Committed.
func Key(device string, seq uint64) string { return fmt.Sprintf("%s/%d", device, seq) }

// Enroll adds a device.
func (f *Ledger) Enroll(id string, key *reading.PublicKey, status api.DeviceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id] = &api.Device{ID: id, Owner: "Org1MSP", Type: "sensor", PublicKey: key.PEM(), KeyAlg: string(key.Algorithm()), KeyID: key.Fingerprint(), Status: status}
}

// SetStatus changes a device's status.
func (f *Ledger) SetStatus(id string, s api.DeviceStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id].Status = s
}

// Device implements the hub's Ledger.
func (f *Ledger) Device(_ context.Context, id string) (*api.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Unreachable {
		return nil, ErrUnavailable
	}
	d, ok := f.devices[id]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "device "+id+" not found")
	}
	c := *d
	return &c, nil
}

// CheckAccess implements the hub's Ledger.
func (f *Ledger) CheckAccess(_ context.Context, req api.AccessRequest) (*api.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.devices[req.Resource]; !ok { // as the chaincode: the resource must be enrolled
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("device %q is not enrolled", req.Resource))
	}
	switch req.Action {
	case api.ActionTelemetryWrite:
		return &api.Decision{Allowed: !f.DenyWrite[req.Resource]}, nil
	case api.ActionDeviceMessage:
		return &api.Decision{Allowed: f.Messaging[[2]string{req.Device, req.Resource}]}, nil
	}
	return &api.Decision{}, nil
}

// SetPrivate marks a device private (api.Device.Private): SubmitBatch then
// refuses its readings, as the chaincode does, and SubmitPrivateBatchFor takes them.
func (f *Ledger) SetPrivate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id].Private = true
}

// PrivateSubmits counts SubmitPrivateBatchFor calls.
func (f *Ledger) PrivateSubmits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.privateCalls
}

// SubmitPrivateBatchFor implements the hub's PrivateLedger: like the
// chaincode, it takes only readings of owner's private devices.
func (f *Ledger) SubmitPrivateBatchFor(ctx context.Context, owner string, req api.BatchRequest) (*api.BatchReceipt, error) {
	f.mu.Lock()
	f.privateCalls++
	for i, env := range req.Readings {
		r, err := env.Decode()
		if err != nil {
			continue // submit refuses it with the reading's index
		}
		if d, ok := f.devices[r.Device]; ok && (!d.Private || d.Owner != owner) {
			f.mu.Unlock()
			return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("reading %d: device %s is not a private device of %s", i, r.Device, owner))
		}
	}
	f.mu.Unlock()
	return f.submit(ctx, req, true)
}

// SubmitBatch implements the hub's Ledger.
func (f *Ledger) SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error) {
	return f.submit(ctx, req, false)
}

func (f *Ledger) submit(ctx context.Context, req api.BatchRequest, private bool) (*api.BatchReceipt, error) {
	f.mu.Lock()
	f.submitCalls++
	call := f.submitCalls
	block := f.BlockSubmit
	mode := ""
	if f.FailSubmit != nil {
		mode = f.FailSubmit(call)
	}
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if mode == "before" {
		return nil, ErrUnavailable
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
		if d.Private && !private {
			return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("reading %d: device %s is private: submit its readings with telemetry:SubmitPrivateBatch", i, r.Device))
		}
		if d.Status != api.StatusActive {
			return nil, api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("reading %d: device %s is %s", i, r.Device, d.Status))
		}
		k, _ := reading.ParsePublicKey(d.PublicKey)
		if err := r.Verify(k); err != nil {
			return nil, api.Errorf(api.CodeBadSignature, fmt.Sprintf("reading %d", i))
		}
		key := Key(r.Device, r.Seq)
		if f.readings[key] || inBatch[key] {
			return nil, api.Errorf(api.CodeReplay, fmt.Sprintf("reading %d (device %s seq %d): already on the ledger", i, r.Device, r.Seq))
		}
		inBatch[key] = true
		rs = append(rs, r)
	}
	id := fmt.Sprintf("tx%d", call)
	for _, r := range rs {
		key := Key(r.Device, r.Seq)
		f.readings[key] = true
		f.commits[key]++
	}
	if mode == "after" {
		return nil, ErrUnavailable
	}
	return &api.BatchReceipt{BatchID: id, Size: len(rs)}, nil
}

// ListCommands implements the hub's Ledger.
func (f *Ledger) ListCommands(_ context.Context, q api.CommandQuery) (*api.CommandPage, error) {
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

// AddCommand adds a command.
func (f *Ledger) AddCommand(c api.Command) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands[c.ID] = &c
}

// Command returns a command.
func (f *Ledger) Command(id string) api.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.commands[id]
}

// MarkCommandDelivered implements the hub's Ledger.
func (f *Ledger) MarkCommandDelivered(_ context.Context, id string) (*api.Command, error) {
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

// AckCommand implements the hub's Ledger.
func (f *Ledger) AckCommand(_ context.Context, env reading.Envelope) (*api.Command, error) {
	var a api.AckPayload
	if err := json.Unmarshal(env.Payload, &a); err != nil {
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

// LedgerEvents streams what is sent to Events (the hub's EventSource).
func (f *Ledger) LedgerEvents(ctx context.Context) (<-chan api.Event, error) {
	out := make(chan api.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-f.Events:
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

// Committed counts how often each reading (Key) was committed.
func (f *Ledger) Committed() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.commits))
	for k, v := range f.commits {
		out[k] = v
	}
	return out
}

// Set changes the fake's configuration under its lock.
func (f *Ledger) Set(change func(f *Ledger)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// EnrollDevice enrolls a device (the simulator's Enroller).
func (f *Ledger) EnrollDevice(_ context.Context, req api.EnrollRequest) (*api.Device, error) {
	k, err := reading.ParsePublicKey(req.PublicKey)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, err.Error())
	}
	f.mu.Lock()
	if _, ok := f.devices[req.ID]; ok {
		f.mu.Unlock()
		return nil, api.Errorf(api.CodeAlreadyExists, "device "+req.ID)
	}
	f.mu.Unlock()
	status := api.StatusProvisioned
	if req.Activate {
		status = api.StatusActive
	}
	f.Enroll(req.ID, k, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[req.ID]
	d.Type, d.Groups, d.Attributes, d.Firmware = req.Type, req.Groups, req.Attributes, req.Firmware
	c := *d
	return &c, nil
}

// RotateKey replaces a device's enrolled key.
func (f *Ledger) RotateKey(id string, key *reading.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	d.PublicKey, d.KeyAlg, d.KeyID = key.PEM(), string(key.Algorithm()), key.Fingerprint()
	d.KeyVersion++
}
