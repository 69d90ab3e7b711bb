// Package hubtest provides an in-memory ledger for tests of the hub and of
// device software: it applies the chaincode's refusal rules that the hub
// relies on (all-or-nothing batches, replay refusal with the chaincode's
// replay window, signature and status checks) and answers telemetry:Seen,
// without a Fabric network.
package hubtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/iotledger/iotledger/chaincode"
	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt"
)

// Ledger is an in-memory stand-in for the chaincode with the same
// refusal rules the hub relies on: batches are all-or-nothing, a (device,
// seq) is accepted once (REPLAY after), and so is nothing at or below a
// device's highest accepted sequence number minus chaincode.ReplayWindow
// (REPLAY too, as the chaincode's window no longer tells it apart),
// signatures must verify, devices must be active.
type Ledger struct {
	mu        sync.Mutex
	devices   map[string]*api.Device
	replay    map[string]*replayState // device → what it accepted
	commits   map[string]int          // device/seq → times Committed
	placed    map[string]Placement    // device/seq → where it was last committed
	commands  map[string]*api.Command
	Messaging map[[2]string]bool // (from, to) allowed device:message
	DenyWrite map[string]bool    // devices this hub may not write
	// DenyReads: the caller may not telemetry:read (the hub role's
	// default). Seen answers a caller that may telemetry:write the device
	// or telemetry:read it, as the chaincode does.
	DenyReads bool
	// PeerOrg is the org whose peers answer evaluations (the caller's
	// org): Seen of another org's private device is refused as the
	// chaincode refuses it on a peer that cannot read the owner's
	// collection. NewLedger sets Org1MSP, the org Enroll gives devices.
	PeerOrg string
	// Unreachable makes Device fail as if the peer were down.
	Unreachable bool
	// SeenDown makes Seen fail as if the peer were down (the other calls
	// are unaffected).
	SeenDown bool
	// Anchor is the channel's identity TrustAnchor answers (NewLedger:
	// channel "iotledger", the genesis hash of AnchorNamed("iotledger")).
	Anchor receipt.Anchor
	// AnchorDown makes TrustAnchor fail as if the peer were down (the
	// other calls are unaffected).
	AnchorDown bool

	submitCalls  int
	privateCalls int
	refused      int // submits refused with a chaincode error code
	seenCalls    int
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
		replay:    map[string]*replayState{},
		commits:   map[string]int{},
		placed:    map[string]Placement{},
		commands:  map[string]*api.Command{},
		Messaging: map[[2]string]bool{},
		DenyWrite: map[string]bool{},
		PeerOrg:   "Org1MSP",
		Anchor:    AnchorNamed("iotledger"),
		Events:    make(chan api.Event, 16),
	}
}

// AnchorNamed is a trust anchor of channel "iotledger" whose genesis hash
// is derived from name: ledgers made with different names are different
// ledgers to the hub.
func AnchorNamed(name string) receipt.Anchor {
	sum := sha256.Sum256([]byte("hubtest genesis " + name))
	return receipt.Anchor{Channel: "iotledger", Genesis: hex.EncodeToString(sum[:])}
}

// TrustAnchor implements the hub's Ledger: Anchor, and no block (the hub
// needs only the anchor).
func (f *Ledger) TrustAnchor(context.Context) (receipt.Anchor, *common.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Unreachable || f.AnchorDown {
		return receipt.Anchor{}, nil, ErrUnavailable
	}
	return f.Anchor, nil, nil
}

// Forget removes a device, as a ledger that never enrolled it (or another
// network) does not know it: lookups and submits of it are NOT_FOUND.
func (f *Ledger) Forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.devices, id)
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
			f.refused++
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
	rc, err := f.submitOnce(ctx, req, private)
	if api.CodeOf(err) != "" {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
	}
	return rc, err
}

func (f *Ledger) submitOnce(ctx context.Context, req api.BatchRequest, private bool) (*api.BatchReceipt, error) {
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
		// As the chaincode: against the state before the batch, and no
		// (device, seq) twice within it.
		switch st := f.replay[r.Device].seen(r.Seq); {
		case st == api.SeqAccepted || inBatch[key]:
			return nil, api.Errorf(api.CodeReplay, fmt.Sprintf("reading %d (device %s seq %d): already on the ledger", i, r.Device, r.Seq))
		case st == api.SeqBelowWindow:
			return nil, api.Errorf(api.CodeReplay, fmt.Sprintf("reading %d (device %s seq %d): older than the device's replay window (highest accepted %d)", i, r.Device, r.Seq, f.replay[r.Device].hwm))
		}
		inBatch[key] = true
		rs = append(rs, r)
	}
	id := fmt.Sprintf("tx%d", call)
	for i, r := range rs {
		st := f.replay[r.Device]
		if st == nil {
			st = &replayState{accepted: map[uint64]bool{}}
			f.replay[r.Device] = st
		}
		st.accept(r.Seq)
		f.commits[Key(r.Device, r.Seq)]++
		f.placed[Key(r.Device, r.Seq)] = Placement{BatchID: id, Index: i}
	}
	if mode == "after" {
		return nil, ErrUnavailable
	}
	return &api.BatchReceipt{BatchID: id, Size: len(rs)}, nil
}

// Seen implements the hub's Ledger (telemetry:Seen): what the device's
// replay state says of each of 1..chaincode.MaxBatchReadings sequence
// numbers, in the order asked. Like the chaincode, it answers a caller
// that may telemetry:write the device or telemetry:read it, and a private
// device's state only on a peer of its owner (PeerOrg).
func (f *Ledger) Seen(_ context.Context, device string, seqs []uint64) (*api.SeenAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seenCalls++
	if f.Unreachable || f.SeenDown {
		return nil, ErrUnavailable
	}
	if n := len(seqs); n == 0 || n > chaincode.MaxBatchReadings {
		return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("ask about 1..%d sequence numbers, got %d", chaincode.MaxBatchReadings, n))
	}
	if slices.Contains(seqs, 0) {
		return nil, api.Errorf(api.CodeInvalidArgument, "sequence number 0: sequence numbers start at 1")
	}
	d, ok := f.devices[device]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "device "+device+" not found")
	}
	if f.DenyWrite[device] && f.DenyReads {
		return nil, api.Errorf(api.CodeAccessDenied, "may neither telemetry:write nor telemetry:read device "+device)
	}
	if d.Private && d.Owner != f.PeerOrg {
		return nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("the replay state of private device %s is in the private data of %s: evaluate on a peer of %s", device, d.Owner, d.Owner))
	}
	st := f.replay[device]
	ans := &api.SeenAnswer{Device: device, Window: chaincode.ReplayWindow, Seqs: make([]api.SeqSeen, len(seqs))}
	if st != nil {
		ans.HighWater = st.hwm
	}
	for i, seq := range seqs {
		ans.Seqs[i] = api.SeqSeen{Seq: seq, State: st.seen(seq)}
	}
	return ans, nil
}

// replayState is what the ledger keeps of a device's sequence numbers: the
// highest accepted (hwm) and, within chaincode.ReplayWindow of it, which
// were accepted. Below the window it tells nothing apart, as the chaincode's
// bitmap does not.
type replayState struct {
	hwm      uint64
	accepted map[uint64]bool // only seqs within the window of hwm
}

func (s *replayState) seen(seq uint64) api.SeqState {
	switch {
	case s == nil || seq > s.hwm:
		return api.SeqNotSeen
	case s.hwm-seq >= chaincode.ReplayWindow:
		return api.SeqBelowWindow
	case s.accepted[seq]:
		return api.SeqAccepted
	}
	return api.SeqNotSeen
}

func (s *replayState) accept(seq uint64) {
	if seq == 0 {
		return
	}
	s.accepted[seq] = true
	if seq <= s.hwm {
		return
	}
	s.hwm = seq
	for k := range s.accepted {
		if s.hwm-k >= chaincode.ReplayWindow {
			delete(s.accepted, k)
		}
	}
}

// Refused counts SubmitBatch and SubmitPrivateBatchFor calls the ledger
// refused (a chaincode error code: REPLAY, DEVICE_INACTIVE, ...), not the
// failures FailSubmit injects.
func (f *Ledger) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// Submits counts SubmitBatch and SubmitPrivateBatchFor calls.
func (f *Ledger) Submits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.submitCalls
}

// SeenCalls counts Seen calls.
func (f *Ledger) SeenCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seenCalls
}

// SetOwner changes a device's owner org.
func (f *Ledger) SetOwner(id, owner string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[id].Owner = owner
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

// Placement is where the fake committed a reading: its batch's
// transaction (tx1, tx2, ... numbered as submits arrive) and its index in
// the batch.
type Placement struct {
	BatchID string
	Index   int
}

// Reading says where a reading was committed (what an org's index would
// say; the chaincode serves no readings), NOT_FOUND if it was not.
func (f *Ledger) Reading(_ context.Context, device string, seq uint64) (*Placement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.placed[Key(device, seq)]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "reading "+Key(device, seq)+" not committed")
	}
	return &p, nil
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
