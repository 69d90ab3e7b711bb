package chaincode

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// MaxBatchReadings is the most readings one telemetry transaction carries.
const MaxBatchReadings = api.MaxBatchReadings

// TelemetryContract accepts device-signed readings in batches, runs the
// owners' automation rules, and keeps in world state only what later
// transactions must check: a commitment per batch (its Merkle root) and a
// replay state per device. The readings themselves live in the blocks (a
// public batch's arguments) or in the owner's collection (a private batch);
// each org's index serves them. Transactions are addressed as
// "telemetry:<Tx>".
type TelemetryContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *TelemetryContract) GetEvaluateTransactions() []string {
	return []string{"Seen", "GetBatch", "PrivateBatch"}
}

// Whether a batch may carry readings of private devices.
const (
	publicOnly   = false
	allowPrivate = true
)

// Submit accepts one signed reading (a batch of one).
func (c *TelemetryContract) Submit(ctx contractapi.TransactionContextInterface, envelope string) (string, error) {
	env, err := reading.ParseEnvelope([]byte(envelope))
	if err != nil {
		return "", invalidArg(err)
	}
	return submit(c.e, ctx, func(t *txn) (*api.BatchReceipt, *api.Event, error) {
		return t.submitBatch([]reading.Envelope{env}, publicOnly)
	})
}

// SubmitBatch accepts 1..MaxBatchReadings signed readings, whole or not at all.
func (c *TelemetryContract) SubmitBatch(ctx contractapi.TransactionContextInterface, request string) (string, error) {
	req, err := parseBatchRequest(request)
	if err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) (*api.BatchReceipt, *api.Event, error) {
		return t.submitBatch(req.Readings, publicOnly)
	})
}

// SubmitPrivateBatch is SubmitBatch for batches carrying readings of private
// devices. It takes no arguments: the api.BatchRequest JSON travels in the
// proposal's transient data under api.TransientBatchKey, which endorsers see
// but which is never written into a block. A private batch holds the private
// devices of one org; their readings are kept, with the batch's record and
// the devices' replay states, in that org's implicit private data
// collection, and only hashes reach the channel.
func (c *TelemetryContract) SubmitPrivateBatch(ctx contractapi.TransactionContextInterface) (string, error) {
	tm, err := ctx.GetStub().GetTransient()
	if err != nil {
		return "", internal("reading the transient data", err)
	}
	b, ok := tm[api.TransientBatchKey]
	if !ok || len(b) == 0 {
		return "", api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("no batch in the transient data: pass the batch request JSON under the transient key %q", api.TransientBatchKey))
	}
	req, err := parseBatchRequest(string(b))
	if err != nil {
		return "", err
	}
	return submit(c.e, ctx, func(t *txn) (*api.BatchReceipt, *api.Event, error) {
		return t.submitBatch(req.Readings, allowPrivate)
	})
}

// Seen says of each sequence number in seqs (a JSON array of 1..500 of
// them) whether the device's replay state has it: accepted, not seen, or
// below the replay window (refused whatever it was). A hub asks it after a
// crash, to learn which readings of a batch whose outcome it does not know
// are on the ledger.
func (c *TelemetryContract) Seen(ctx contractapi.TransactionContextInterface, device, seqs string) (string, error) {
	if strings.TrimSpace(seqs) == "" {
		return "", api.Errorf(api.CodeInvalidArgument, "sequence numbers is empty: pass a JSON array such as [41,42]")
	}
	var list []uint64
	if err := decodeArg("sequence numbers", seqs, &list); err != nil {
		return "", err
	}
	if n := len(list); n == 0 || n > MaxBatchReadings {
		return "", api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("ask about 1..%d sequence numbers, got %d", MaxBatchReadings, n))
	}
	for _, seq := range list {
		if seq == 0 {
			return "", api.Errorf(api.CodeInvalidArgument, "sequence number 0: sequence numbers start at 1")
		}
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.SeenAnswer, error) { return t.seen(device, list) })
}

// GetBatch returns a batch record: its Merkle root, size and submitter.
func (c *TelemetryContract) GetBatch(ctx contractapi.TransactionContextInterface, batchID string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.BatchRecord, error) { return t.loadBatch(batchID) })
}

// PrivateBatch returns the readings of one of the caller's org's private
// batches (an api.BatchRequest), byte for byte as its collection holds
// them, so that the caller can check them against the hash the block
// carries. Only the org whose devices the batch carried has them.
func (c *TelemetryContract) PrivateBatch(ctx contractapi.TransactionContextInterface, batchID string) (string, error) {
	return evaluateBytes(c.e, ctx, func(t *txn) ([]byte, error) { return t.privateBatch(batchID) })
}

// parseBatchRequest decodes the argument of SubmitBatch.
func parseBatchRequest(request string) (api.BatchRequest, error) {
	var req api.BatchRequest
	if err := decodeArg("batch request", request, &req); err != nil {
		return req, err
	}
	if n := len(req.Readings); n == 0 || n > MaxBatchReadings {
		return req, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("a batch carries 1..%d readings, got %d", MaxBatchReadings, n))
	}
	return req, nil
}

// readingError names the offending reading of a batch.
func readingError(i int, r *reading.Reading, err error) error {
	code := api.CodeOf(err)
	if code == "" {
		code = api.CodeInvalidArgument
	}
	msg := err.Error()
	var e *api.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	if r == nil {
		return api.Errorf(code, fmt.Sprintf("reading %d: %s", i, msg))
	}
	return api.Errorf(code, fmt.Sprintf("reading %d (device %s seq %d): %s", i, r.Device, r.Seq, msg))
}

// batchCheck is what the checks of one batch have learnt so far.
type batchCheck struct {
	private  bool                    // the batch came as transient data (SubmitPrivateBatch)
	writable map[string]bool         // device → whether the caller may telemetry:write it
	seen     map[deviceSeq]int       // (device, seq) → index in the batch
	states   map[string]*replayState // device → its replay state before the batch
	devices  []string                // the batch's devices, in order of first reading
	// sigs are the signatures of the readings checked so far, verified
	// together once the other checks are done (verifySignatures).
	sigs []sigCheck
}

// sigCheck is one reading's signature and the key it must verify with.
type sigCheck struct {
	index      int
	r          *reading.Reading
	key        *reading.PublicKey
	keyVersion int
}

// verifySignatures verifies the signatures on up to GOMAXPROCS goroutines
// (ECDSA verification is most of a batch's work, and pure) and returns the
// BAD_SIGNATURE error of the first reading, in batch order, whose
// signature does not verify, and its index.
func verifySignatures(sigs []sigCheck) (int, error) {
	bad := make([]bool, len(sigs))
	workers := min(runtime.GOMAXPROCS(0), (len(sigs)+sigsPerWorker-1)/sigsPerWorker)
	if workers <= 1 {
		for j, s := range sigs {
			bad[j] = s.r.Verify(s.key) != nil
		}
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for j := w; j < len(sigs); j += workers {
					bad[j] = sigs[j].r.Verify(sigs[j].key) != nil
				}
			})
		}
		wg.Wait()
	}
	for j, s := range sigs {
		if bad[j] {
			return s.index, api.Errorf(api.CodeBadSignature, fmt.Sprintf("signature does not verify with the key enrolled for the device (key version %d)", s.keyVersion))
		}
	}
	return -1, nil
}

// sigsPerWorker is the fewest signatures worth a goroutine of their own.
const sigsPerWorker = 16

type deviceSeq struct {
	device string
	seq    uint64
}

func newBatchCheck(private bool, n int) *batchCheck {
	return &batchCheck{private: private, writable: map[string]bool{}, seen: make(map[deviceSeq]int, n), states: map[string]*replayState{}}
}

// checkReading decides whether reading i of a batch may be committed; its
// signature is left in c for verifySignatures.
// The replay state of each device is read once, at its first reading, and
// every reading of the batch is checked against the state before the
// batch: whether a batch is accepted does not depend on the order of its
// readings.
func (t *txn) checkReading(i int, r *reading.Reading, c *batchCheck) error {
	d, err := t.device(r.Device)
	if err != nil {
		return err
	}
	if d.Private && !c.private {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("device %s is private: its values must not be written into a block; submit its readings with telemetry:SubmitPrivateBatch (batch in the transient data)", d.ID))
	}
	if c.private {
		if err := t.joinPrivateBatch(d); err != nil {
			return err
		}
	}
	if d.Status != api.StatusActive {
		return api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("device is %s, only active devices submit telemetry", d.Status))
	}
	ok, known := c.writable[d.ID]
	if !known {
		dec, err := t.decide(t.caller, api.ActionTelemetryWrite, deviceResource(d), nil)
		if err != nil {
			return err
		}
		ok = dec.Allowed
		c.writable[d.ID] = ok
		if !ok {
			return api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may not %s device %s of %s: %s",
				t.callerName(), t.caller.MSPID, api.ActionTelemetryWrite, d.ID, d.Owner, dec.Reason))
		}
	}
	if !ok {
		return api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may not %s device %s", t.callerName(), t.caller.MSPID, api.ActionTelemetryWrite, d.ID))
	}
	key, err := t.deviceKey(d)
	if err != nil {
		return err
	}
	c.sigs = append(c.sigs, sigCheck{index: i, r: r, key: key, keyVersion: d.KeyVersion})
	ds := deviceSeq{r.Device, r.Seq}
	if j, dup := c.seen[ds]; dup {
		return api.Errorf(api.CodeReplay, fmt.Sprintf("the batch carries this device and sequence number twice (also reading %d)", j))
	}
	c.seen[ds] = len(c.seen)
	st, ok := c.states[d.ID]
	if !ok {
		s, err := t.loadReplay(d.ID)
		if err != nil {
			return err
		}
		st = &s
		c.states[d.ID] = st
		c.devices = append(c.devices, d.ID)
	}
	return t.replayRefusal(st, d.ID, r.Seq)
}

// joinPrivateBatch admits a device's reading into a private batch: the
// batch is endorsed by one org alone, so it holds only that org's private
// devices, and its records go to that org's implicit collection.
func (t *txn) joinPrivateBatch(d *api.Device) error {
	if !d.Private {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("device %s is not private: submit its readings with telemetry:SubmitBatch (a private batch holds only private devices' readings, endorsed by their owner alone)", d.ID))
	}
	switch t.private {
	case "":
		t.private = d.Owner
	case d.Owner:
	default:
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("device %s is private to %s, and this batch holds private readings of %s: one private batch holds the devices of one org, which alone endorses it", d.ID, d.Owner, t.private))
	}
	return nil
}

// submitBatch verifies and stores a batch. With private false, readings of
// private devices are refused: the batch came in the transaction's
// arguments, which are written into the block, and that is where its
// readings stay: world state keeps the batch's commitment and each
// device's replay state, nothing per reading. With private true, the batch
// holds private devices of one org, and everything it stores goes to that
// org's implicit collection (records.go), its readings included, under one
// key for the batch.
func (t *txn) submitBatch(envs []reading.Envelope, private bool) (*api.BatchReceipt, *api.Event, error) {
	if n := len(envs); n == 0 || n > MaxBatchReadings {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("a batch carries 1..%d readings, got %d", MaxBatchReadings, n))
	}
	c := newBatchCheck(private, len(envs))
	batch := make([]*reading.Reading, len(envs))
	leaves := make([][32]byte, len(envs))
	// The first refusal in batch order is the batch's: a reading's checks
	// run in order up to the first that fails, with its signature's place
	// among them taken by verifySignatures afterwards — a bad signature of
	// an earlier reading (or of the refused one, whose signature came
	// before the check that failed) is that refusal.
	var refusal error
	for i, env := range envs {
		r, err := env.Decode()
		if err != nil {
			refusal = readingError(i, nil, invalidArg(err))
			break
		}
		batch[i] = r
		if err := t.checkReading(i, r, c); err != nil {
			refusal = readingError(i, r, err)
			break
		}
		leaves[i] = r.LeafHash()
	}
	if i, err := verifySignatures(c.sigs); err != nil {
		return nil, nil, readingError(i, batch[i], err)
	}
	if refusal != nil {
		return nil, nil, refusal
	}
	root, err := reading.MerkleRoot(leaves)
	if err != nil {
		return nil, nil, internal("computing the Merkle root", err)
	}
	for _, r := range batch {
		c.states[r.Device].accept(r.Seq)
	}
	for _, dev := range c.devices {
		if err := t.putReplay(dev, c.states[dev]); err != nil {
			return nil, nil, err
		}
	}
	if t.private != "" {
		if err := t.putPrivateReadings(envs); err != nil {
			return nil, nil, err
		}
	}
	rec := api.BatchRecord{
		ID: t.id, Root: reading.Hash(root), Size: len(batch),
		Submitter: t.caller.ClientID, MSPID: t.caller.MSPID, Timestamp: t.now,
	}
	bk, err := compositeKey(kindBatch, t.id)
	if err != nil {
		return nil, nil, err
	}
	rb, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, internal("encoding batch record", err)
	}
	if err := t.putRecord(bk, rb); err != nil {
		return nil, nil, err
	}
	out, err := t.runRules(batch)
	if err != nil {
		return nil, nil, err
	}
	devices := slices.Sorted(slices.Values(c.devices))
	ev := &api.Event{
		Type:          api.EventTelemetryBatch,
		Devices:       mergeSorted(devices, out.touched),
		Batch:         &api.BatchSummary{ID: t.id, Root: rec.Root, Size: rec.Size, Devices: devices},
		Alerts:        out.alerts,
		Commands:      out.commands,
		StatusChanges: out.changes,
		Revocations:   out.revocations,
	}
	receipt := &api.BatchReceipt{BatchID: t.id, Root: rec.Root, Size: rec.Size, Alerts: len(out.alerts), Commands: len(out.commands)}
	return receipt, ev, nil
}

// putPrivateReadings keeps a private batch's envelopes, in batch order, as
// one api.BatchRequest under pbatch~<txid> in the owner's collection: the
// block carries only Fabric's hashes of key and value, and the owner's
// index fetches the value with telemetry:PrivateBatch and checks it against
// them.
func (t *txn) putPrivateReadings(envs []reading.Envelope) error {
	k, err := compositeKey(kindPrivBatch, t.id)
	if err != nil {
		return err
	}
	b, err := json.Marshal(api.BatchRequest{Readings: envs})
	if err != nil {
		return internal("encoding the private batch", err)
	}
	return t.putRecord(k, b)
}

func mergeSorted(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// seen answers telemetry:Seen. A hub asks it (it may telemetry:write the
// device), or anyone who may telemetry:read it. A private device's replay
// state is in its owner's collection, so only the owner's peers answer.
func (t *txn) seen(id string, seqs []uint64) (*api.SeenAnswer, error) {
	d, err := t.device(id)
	if err != nil {
		return nil, err
	}
	if err := t.authorizeSeen(d); err != nil {
		return nil, err
	}
	if d.Private {
		t.private = d.Owner
	}
	st, err := t.loadReplay(d.ID)
	if err != nil {
		if d.Private && api.CodeOf(err) == api.CodeInternal {
			return nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("the replay state of private device %s is in the private data of %s, which this peer cannot read (%s): evaluate on a peer of %s",
				d.ID, d.Owner, errMessage(err), d.Owner))
		}
		return nil, err
	}
	ans := &api.SeenAnswer{Device: d.ID, HighWater: st.hwm, Window: ReplayWindow, Seqs: make([]api.SeqSeen, len(seqs))}
	for i, seq := range seqs {
		seen, err := t.seenByLedger(&st, d.ID, seq)
		if err != nil {
			return nil, err
		}
		state := api.SeqNotSeen
		switch seen {
		case seqAccepted:
			state = api.SeqAccepted
		case seqBelowWindow:
			state = api.SeqBelowWindow
		}
		ans.Seqs[i] = api.SeqSeen{Seq: seq, State: state}
	}
	return ans, nil
}

// authorizeSeen lets a caller that may telemetry:write or telemetry:read
// the device ask about its replay state.
func (t *txn) authorizeSeen(d *api.Device) error {
	for _, action := range []string{api.ActionTelemetryWrite, api.ActionTelemetryRead} {
		dec, err := t.decide(t.caller, action, deviceResource(d), nil)
		if err != nil {
			return err
		}
		if dec.Allowed {
			return nil
		}
		if action == api.ActionTelemetryRead {
			return api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may neither %s nor %s device %s of %s: %s",
				t.callerName(), t.caller.MSPID, api.ActionTelemetryWrite, api.ActionTelemetryRead, d.ID, d.Owner, dec.Reason))
		}
	}
	return nil
}

// errMessage is the message of a classified error without its code.
func errMessage(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// privateBatch answers telemetry:PrivateBatch from the caller's org's
// collection, which only that org's peers hold: another org finds nothing.
// The caller must be allowed to telemetry:read every device of the batch,
// decided by the policies of the org that holds it (the devices' owner
// when the batch was submitted).
func (t *txn) privateBatch(id string) ([]byte, error) {
	if err := reading.ValidateID("batch id", id); err != nil {
		return nil, invalidArg(err)
	}
	k, err := compositeKey(kindPrivBatch, id)
	if err != nil {
		return nil, err
	}
	org := t.caller.MSPID
	b, err := t.ownPrivate(k, "private batch "+id)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("the private data of %s holds no private batch %q (a private batch stays with the org whose devices it carried; a public batch's readings are in its transaction's arguments)", org, id))
	}
	var req api.BatchRequest
	if err := reading.DecodeStrict(b, &req); err != nil {
		return nil, inconsistent("private batch "+readableKey(k), "cannot be decoded: "+err.Error())
	}
	checked := map[string]bool{}
	for i, env := range req.Readings {
		r, err := env.Decode()
		if err != nil {
			return nil, inconsistent("private batch "+readableKey(k), fmt.Sprintf("reading %d cannot be decoded: %v", i, err))
		}
		if checked[r.Device] {
			continue
		}
		checked[r.Device] = true
		d, err := t.device(r.Device)
		if err != nil {
			return nil, err
		}
		res := deviceResource(d)
		res.Owner = org
		if err := t.authorize(api.ActionTelemetryRead, res); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// loadBatch reads a batch record: from world state, or for a private batch
// from the caller's org's collection. It holds hashes only, so any channel
// member may read a public one. Records of the first layout also hold the
// leaves; they are not returned.
func (t *txn) loadBatch(id string) (*api.BatchRecord, error) {
	if err := reading.ValidateID("batch id", id); err != nil {
		return nil, invalidArg(err)
	}
	k, err := compositeKey(kindBatch, id)
	if err != nil {
		return nil, err
	}
	var b api.BatchRecord
	ok, err := getJSON(t.l, k, &b)
	if err != nil {
		return nil, err
	}
	if ok {
		return &b, nil
	}
	// A private batch's record is in its org's implicit collection.
	raw, err := t.l.GetPrivateData(implicitCollection(t.caller.MSPID), k)
	if err != nil || raw == nil {
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("batch %q does not exist (or is a private batch of another org)", id))
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, inconsistent("private batch record "+readableKey(k), "cannot be decoded: "+err.Error())
	}
	return &b, nil
}
