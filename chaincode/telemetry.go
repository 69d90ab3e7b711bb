package chaincode

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// MaxBatchReadings is the most readings one telemetry transaction carries.
const MaxBatchReadings = 500

// TelemetryContract accepts device-signed readings in batches, keeps them
// with a Merkle root per batch, runs the owners' automation rules and
// serves readings with proofs of inclusion. Transactions are addressed as
// "telemetry:<Tx>".
type TelemetryContract struct {
	contractapi.Contract
	e *engines
}

// GetEvaluateTransactions tags the read-only transactions "evaluate" in the
// chaincode metadata.
func (c *TelemetryContract) GetEvaluateTransactions() []string {
	return []string{"Get", "List", "Proof", "GetBatch"}
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
// but which is never written into a block. The readings of private devices
// are stored with their payload and signature in the owner org's implicit
// private data collection, and only their hashes reach the channel; readings
// of other devices are stored as SubmitBatch stores them.
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

// Get returns one stored reading.
func (c *TelemetryContract) Get(ctx contractapi.TransactionContextInterface, device, seq string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.StoredReading, error) {
		r, _, err := t.getReading(device, seq)
		return r, err
	})
}

// List returns one page of a device's readings in sequence order.
func (c *TelemetryContract) List(ctx contractapi.TransactionContextInterface, query string) (string, error) {
	var q api.ReadingQuery
	if err := decodeArg("reading query", query, &q); err != nil {
		return "", err
	}
	return evaluate(c.e, ctx, func(t *txn) (*api.ReadingPage, error) { return t.listReadings(q) })
}

// Proof returns a reading with everything needed to check offline that it
// was committed in its batch.
func (c *TelemetryContract) Proof(ctx contractapi.TransactionContextInterface, device, seq string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*reading.Proof, error) { return t.proof(device, seq) })
}

// GetBatch returns a batch record: its Merkle root and leaves (hashes only).
func (c *TelemetryContract) GetBatch(ctx contractapi.TransactionContextInterface, batchID string) (string, error) {
	return evaluate(c.e, ctx, func(t *txn) (*api.BatchRecord, error) { return t.batch(batchID) })
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

// checkReading decides whether one reading of a batch may be committed,
// except for the ledger's replay guard (checkReplays, once per device).
func (t *txn) checkReading(r *reading.Reading, private bool, writable map[string]bool, seen map[string]int) (*api.Device, string, error) {
	d, err := t.device(r.Device)
	if err != nil {
		return nil, "", err
	}
	if d.Private && !private {
		return nil, "", api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("device %s is private: its values must not be written into a block; submit its readings with telemetry:SubmitPrivateBatch (batch in the transient data)", d.ID))
	}
	if private {
		if err := t.joinPrivateBatch(d); err != nil {
			return nil, "", err
		}
	}
	if d.Status != api.StatusActive {
		return nil, "", api.Errorf(api.CodeDeviceInactive, fmt.Sprintf("device is %s, only active devices submit telemetry", d.Status))
	}
	ok, known := writable[d.ID]
	if !known {
		dec, err := t.decide(t.caller, api.ActionTelemetryWrite, deviceResource(d), nil)
		if err != nil {
			return nil, "", err
		}
		ok = dec.Allowed
		writable[d.ID] = ok
		if !ok {
			return nil, "", api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may not %s device %s of %s: %s",
				t.callerName(), t.caller.MSPID, api.ActionTelemetryWrite, d.ID, d.Owner, dec.Reason))
		}
	}
	if !ok {
		return nil, "", api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may not %s device %s", t.callerName(), t.caller.MSPID, api.ActionTelemetryWrite, d.ID))
	}
	key, err := t.deviceKey(d)
	if err != nil {
		return nil, "", err
	}
	if err := r.Verify(key); err != nil {
		return nil, "", api.Errorf(api.CodeBadSignature, fmt.Sprintf("signature does not verify with the key enrolled for the device (key version %d)", d.KeyVersion))
	}
	rk := readingKey(r.Device, r.Seq)
	if j, dup := seen[rk]; dup {
		return nil, "", api.Errorf(api.CodeReplay, fmt.Sprintf("the batch carries this device and sequence number twice (also reading %d)", j))
	}
	seen[rk] = len(seen)
	return d, rk, nil
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

// checkReplays refuses the batch if one of its readings is already on the
// ledger, naming the first such reading. It asks the ledger once per device
// for the key range spanning the batch's sequence numbers of that device
// (normally empty: a device's sequence numbers grow) rather than once per
// reading; the range also makes a concurrent batch that inserts into it fail
// at commit (PHANTOM_READ_CONFLICT), as a point read would. A sparse span
// (sequence numbers far apart) falls back to point reads.
func (t *txn) checkReplays(batch []accepted, seen map[string]int) error {
	type span struct {
		lo, hi uint64
		idx    []int
	}
	spans := map[string]*span{}
	var devices []string
	for i, a := range batch {
		s, ok := spans[a.r.Device]
		if !ok {
			s = &span{lo: a.r.Seq, hi: a.r.Seq}
			spans[a.r.Device] = s
			devices = append(devices, a.r.Device)
		}
		s.lo, s.hi = min(s.lo, a.r.Seq), max(s.hi, a.r.Seq)
		s.idx = append(s.idx, i)
	}
	first := -1
	found := func(key string) {
		if i, ok := seen[key]; ok && (first < 0 || i < first) {
			first = i
		}
	}
	for _, dev := range devices {
		s := spans[dev]
		// Range reads of private data are not checked for phantoms at
		// commit, point reads are (their hashed versions are validated).
		if t.private == "" && s.hi-s.lo <= uint64(4*len(s.idx)+16) {
			it, err := t.l.GetStateByRange(readingKey(dev, s.lo), readingKey(dev, s.hi)+"\x00")
			if err != nil {
				return internal("reading world state", err)
			}
			kvs, err := drain(it)
			if err != nil {
				return err
			}
			for _, e := range kvs {
				found(e.Key)
			}
			continue
		}
		for _, i := range s.idx {
			old, err := t.getRecord(batch[i].key)
			if err != nil {
				return err
			}
			if old != nil {
				found(batch[i].key)
			}
		}
	}
	if first >= 0 {
		return readingError(first, batch[first].r, api.Errorf(api.CodeReplay, "this device and sequence number are already on the ledger"))
	}
	return nil
}

// accepted is a reading that passed every check.
type accepted struct {
	r     *reading.Reading
	key   string
	keyID string
}

// submitBatch verifies and stores a batch. With private false, readings of
// private devices are refused: the batch came in the transaction's
// arguments, which are written into the block. With private true, the batch
// holds private devices of one org, and everything it stores goes to that
// org's implicit collection (records.go).
func (t *txn) submitBatch(envs []reading.Envelope, private bool) (*api.BatchReceipt, *api.Event, error) {
	if n := len(envs); n == 0 || n > MaxBatchReadings {
		return nil, nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("a batch carries 1..%d readings, got %d", MaxBatchReadings, n))
	}
	writable := map[string]bool{}
	seen := make(map[string]int, len(envs)) // reading key → batch index
	batch := make([]accepted, len(envs))
	leaves := make([][32]byte, len(envs))
	for i, env := range envs {
		r, err := env.Decode()
		if err != nil {
			return nil, nil, readingError(i, nil, invalidArg(err))
		}
		d, rk, err := t.checkReading(r, private, writable, seen)
		if err != nil {
			return nil, nil, readingError(i, r, err)
		}
		batch[i] = accepted{r: r, key: rk, keyID: d.KeyID}
		leaves[i] = r.LeafHash()
	}
	if err := t.checkReplays(batch, seen); err != nil {
		return nil, nil, err
	}
	root, err := reading.MerkleRoot(leaves)
	if err != nil {
		return nil, nil, internal("computing the Merkle root", err)
	}
	devices := make([]string, 0, 4)
	for i, a := range batch {
		rec := api.StoredReading{
			Device: a.r.Device, Seq: a.r.Seq, Timestamp: a.r.Timestamp,
			Payload: a.r.Raw, Signature: a.r.Signature, KeyID: a.keyID,
			BatchID: t.id, Index: i, Committed: t.now,
		}
		// The record keeps only what neither the key nor the signed
		// payload says (encodeRecord); values and the device clock are
		// decoded from the payload when the reading is read.
		if err := t.putRecord(a.key, encodeRecord(&rec)); err != nil {
			return nil, nil, err
		}
		if !slices.Contains(devices, a.r.Device) {
			devices = append(devices, a.r.Device)
		}
	}
	rec := api.BatchRecord{
		ID: t.id, Root: reading.Hash(root), Size: len(batch), Leaves: make([]reading.Hash, len(leaves)),
		Submitter: t.caller.ClientID, MSPID: t.caller.MSPID, Timestamp: t.now,
	}
	for i, l := range leaves {
		rec.Leaves[i] = reading.Hash(l)
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
	slices.Sort(devices)
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

func parseSeq(seq string) (uint64, error) {
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("seq %q is not a decimal sequence number", seq))
	}
	return n, nil
}

// storedReading completes a stored record with the values of its payload.
// privateTo is the org whose implicit collection held it, if any.
func (t *txn) storedReading(device string, seq uint64, key string, b []byte, privateTo string) (*api.StoredReading, error) {
	r, err := decodeRecord(b)
	if err != nil {
		return nil, internal("decoding stored reading "+key, err)
	}
	r.Device, r.Seq = device, seq
	if privateTo != "" {
		r.Private, r.PrivateTo = true, privateTo
	}
	p, err := reading.ParsePayload(r.Payload)
	if err != nil {
		return nil, internal("decoding stored reading payload", err)
	}
	if p.Device != device || p.Seq != seq {
		return nil, internal("decoding stored reading", fmt.Errorf("the payload under %s is reading %d of device %q", key, p.Seq, p.Device))
	}
	r.Timestamp, r.Values = p.Timestamp, p.Values
	return &r, nil
}

// readingRecord reads a reading's stored record: from world state for a
// public device, from the caller's org's implicit collection for a private
// one (only the org that owned the device when the reading was submitted
// holds it). It returns the org whose private data held it, if any.
func (t *txn) readingRecord(d *api.Device, seq uint64) ([]byte, string, error) {
	k := readingKey(d.ID, seq)
	if !d.Private {
		b, err := t.l.GetState(k)
		if err != nil {
			return nil, "", internal("reading world state", err)
		}
		return b, "", nil
	}
	b, err := t.ownPrivate(k, fmt.Sprintf("reading %d of private device %s", seq, d.ID))
	if err != nil {
		return nil, "", err
	}
	return b, t.caller.MSPID, nil
}

func (t *txn) readableDevice(id string) (*api.Device, error) {
	d, err := t.device(id)
	if err != nil {
		return nil, err
	}
	if err := t.authorize(api.ActionTelemetryRead, deviceResource(d)); err != nil {
		return nil, err
	}
	return d, nil
}

func (t *txn) getReading(device, seqText string) (*api.StoredReading, *api.Device, error) {
	seq, err := parseSeq(seqText)
	if err != nil {
		return nil, nil, err
	}
	d, err := t.readableDevice(device)
	if err != nil {
		return nil, nil, err
	}
	b, privateTo, err := t.readingRecord(d, seq)
	if err != nil {
		return nil, nil, err
	}
	if b == nil && d.Private {
		return nil, nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("device %q has no reading with seq %d in the private data of %s (a private device's readings stay with the org that owned it when they were submitted)", device, seq, t.caller.MSPID))
	}
	if b == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("device %q has no reading with seq %d", device, seq))
	}
	r, err := t.storedReading(device, seq, readingKey(device, seq), b, privateTo)
	if err != nil {
		return nil, nil, err
	}
	return r, d, nil
}

func (t *txn) listReadings(q api.ReadingQuery) (*api.ReadingPage, error) {
	size, err := pageSize(q.PageSize)
	if err != nil {
		return nil, err
	}
	d, err := t.readableDevice(q.Device)
	if err != nil {
		return nil, err
	}
	if d.Private {
		return t.listPrivateReadings(d, q, size)
	}
	start, end := readingRange(q.Device, q.FromSeq)
	it, meta, err := t.l.GetStateByRangeWithPagination(start, end, size, q.Bookmark)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("cannot list readings: %v (is the bookmark from an earlier page of the same listing?)", err))
	}
	kvs, err := drain(it)
	if err != nil {
		return nil, err
	}
	return t.readingPage(q.Device, kvs, nextBookmark(len(kvs), size, meta), "")
}

// listPrivateReadings lists a private device's readings held in the
// caller's org's implicit collection. Fabric has no paginated range query
// over private data, so the bookmark is the sequence number to go on from.
func (t *txn) listPrivateReadings(d *api.Device, q api.ReadingQuery, size int32) (*api.ReadingPage, error) {
	from := q.FromSeq
	if q.Bookmark != "" {
		n, err := strconv.ParseUint(q.Bookmark, 10, 64)
		if err != nil || n < from {
			return nil, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("bookmark %q is not from an earlier page of this private device's readings", q.Bookmark))
		}
		from = n
	}
	org := t.caller.MSPID
	start, end := readingRange(d.ID, from)
	it, err := t.l.GetPrivateDataByRange(implicitCollection(org), start, end)
	if err != nil {
		return nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("the readings of private device %s are in the private data of %s, which this peer cannot read (%v): evaluate on a peer of %s", d.ID, org, err, org))
	}
	defer func() { _ = it.Close() }()
	var kvs []kv
	bookmark := ""
	for it.HasNext() {
		r, err := it.Next()
		if err != nil {
			return nil, internal("iterating private data", err)
		}
		if len(kvs) == int(size) {
			seq, err := seqFromReadingKey(d.ID, r.GetKey())
			if err != nil {
				return nil, err
			}
			bookmark = strconv.FormatUint(seq, 10)
			break
		}
		kvs = append(kvs, kv{Key: r.GetKey(), Value: r.GetValue()})
	}
	return t.readingPage(d.ID, kvs, bookmark, org)
}

func (t *txn) readingPage(device string, kvs []kv, bookmark, privateTo string) (*api.ReadingPage, error) {
	page := &api.ReadingPage{Readings: make([]api.StoredReading, 0, len(kvs)), Bookmark: bookmark}
	for _, e := range kvs {
		seq, err := seqFromReadingKey(device, e.Key)
		if err != nil {
			return nil, err
		}
		r, err := t.storedReading(device, seq, e.Key, e.Value, privateTo)
		if err != nil {
			return nil, err
		}
		page.Readings = append(page.Readings, *r)
	}
	return page, nil
}

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

// batch returns a batch record. It holds hashes only, so any channel member
// may read it.
func (t *txn) batch(id string) (*api.BatchRecord, error) {
	return t.loadBatch(id)
}

func (t *txn) proof(device, seq string) (*reading.Proof, error) {
	r, _, err := t.getReading(device, seq)
	if err != nil {
		return nil, err
	}
	b, err := t.loadBatch(r.BatchID)
	if err != nil {
		return nil, err
	}
	leaves := make([][32]byte, len(b.Leaves))
	for i, l := range b.Leaves {
		leaves[i] = l
	}
	path, err := reading.InclusionPath(leaves, r.Index)
	if err != nil {
		return nil, internal("building the inclusion proof", err)
	}
	kk, err := compositeKey(kindDeviceKey, device, r.KeyID)
	if err != nil {
		return nil, err
	}
	pemText, err := t.l.GetState(kk)
	if err != nil {
		return nil, internal("reading device key", err)
	}
	if pemText == nil {
		return nil, api.Errorf(api.CodeInternal, fmt.Sprintf("key %s of device %q is not stored", r.KeyID, device))
	}
	p := &reading.Proof{
		BatchID: b.ID, Root: b.Root, Size: b.Size, Index: r.Index, Path: make([]reading.Hash, len(path)),
		Payload: r.Payload, Signature: r.Signature, PublicKey: string(pemText),
	}
	for i, h := range path {
		p.Path[i] = h
	}
	return p, nil
}
