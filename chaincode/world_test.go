package chaincode

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/statebased"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/mocks"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// world is an in-memory Fabric world state behind the counterfeiter fakes.
// Like a peer, it shows a transaction only the committed state (no
// read-your-writes) and commits a transaction's writes only if it succeeds.
type world struct {
	t       *testing.T
	c       *Contracts
	state   map[string][]byte
	sbe     map[string][]byte
	history map[string][]*queryresult.KeyModification
	now     time.Time
	// peerClockOffset is how far the endorsing peer's clock is from the
	// proposal timestamp now (zero: they agree).
	peerClockOffset time.Duration
	txNo            int
	lastTx          *txRecord
	lastEvent       *api.Event
	lastRaw         []byte
	fault           fault
	// calls counts the stub methods called, by name (see injected).
	calls map[string]int

	// private is what the peers of each collection's member org hold:
	// collection → key → value. The channel (state) only ever sees hashes.
	private map[string]map[string][]byte
	// transient is the transient data of the next transaction proposal.
	transient map[string][]byte
	// peerOrg is the MSP ID of the peer that runs the next transactions;
	// empty means the caller's own org's peer, where the gateway evaluates.
	peerOrg string
}

// fault makes the n-th call of a stub method fail (n counts from 1).
type fault struct {
	method string
	n      int
	calls  int
	hit    bool
}

var errInjected = fmt.Errorf("injected ledger failure")

func (w *world) injected(method string) error {
	if w.calls == nil {
		w.calls = map[string]int{}
	}
	w.calls[method]++
	if w.fault.method != method {
		return nil
	}
	w.fault.calls++
	if w.fault.calls == w.fault.n {
		w.fault.hit = true
		return errInjected
	}
	return nil
}

// txRecord is what one transaction did.
type txRecord struct {
	id     string
	writes map[string][]byte // nil value = delete
	order  []string
	sbe    map[string][]byte
	events [][]byte
	pvt    map[string]map[string][]byte // collection → key → value
	// required is which orgs' peers must have endorsed the transaction for
	// Fabric's validator to accept it (see endorsementNeeded).
	required []string
	// wrote and queriedPrivate enforce Fabric's rule that a query over
	// private data (a range or partial key) runs only in a transaction
	// that writes nothing, before or after it.
	wrote, queriedPrivate bool
}

// write checks that a transaction may write, as Fabric's simulator does.
func (rec *txRecord) write() error {
	if rec.queriedPrivate {
		return fmt.Errorf("txid [%s]: unsuppored transaction. Transaction has already performed queries on pvt data. Writes are not allowed", rec.id)
	}
	rec.wrote = true
	return nil
}

// queryPrivate checks that a transaction may query private data.
func (rec *txRecord) queryPrivate() error {
	if rec.wrote {
		return fmt.Errorf("txid [%s]: Queries on pvt data is supported only in a read-only transaction", rec.id)
	}
	rec.queriedPrivate = true
	return nil
}

// chaincodePolicy stands for the chaincode's own endorsement policy
// (MAJORITY: both orgs of the channel) in requiredEndorsers.
const chaincodePolicy = "<chaincode policy>"

// endorsementNeeded decides, as Fabric's validator does with key-level
// policies, which endorsements a transaction needs against the state before
// it: every written public key (value or key-level policy) needs the orgs of
// its current key-level policy, or the chaincode's policy if it has none;
// every write to an org's implicit collection needs that org.
func (w *world) endorsementNeeded(rec *txRecord) []string {
	need := map[string]bool{}
	public := slices.Clone(rec.order)
	for k := range rec.sbe {
		if !slices.Contains(public, k) {
			public = append(public, k)
		}
	}
	for _, k := range public {
		ep, ok := w.sbe[k]
		if !ok {
			need[chaincodePolicy] = true
			continue
		}
		for _, org := range listOrgs(w.t, ep) {
			need[org] = true
		}
	}
	for coll := range rec.pvt {
		need[strings.TrimPrefix(coll, "_implicit_org_")] = true
	}
	return sortedKeys(need)
}

// requiredEndorsers is endorsementNeeded of a committed transaction.
func (w *world) requiredEndorsers(rec *txRecord) []string { return rec.required }

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t}
	c, err := NewContracts(WithClock(func() time.Time { return w.now.Add(w.peerClockOffset) }))
	require.NoError(t, err)
	*w = world{
		t: t, c: c,
		state:   map[string][]byte{},
		sbe:     map[string][]byte{},
		history: map[string][]*queryresult.KeyModification{},
		private: map[string]map[string][]byte{},
		now:     time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	return w
}

// caller is a client identity.
type caller struct {
	msp, id, role string
}

var (
	org1Operator = caller{"Org1MSP", "x509::CN=operator,OU=client::CN=ca.org1", api.RoleOperator}
	org1Hub      = caller{"Org1MSP", "x509::CN=hub1,OU=client::CN=ca.org1", api.RoleHub}
	org1Auditor  = caller{"Org1MSP", "x509::CN=auditor,OU=client::CN=ca.org1", api.RoleAuditor}
	org1NoRole   = caller{"Org1MSP", "x509::CN=nobody,OU=client::CN=ca.org1", ""}
	org2Operator = caller{"Org2MSP", "x509::CN=operator,OU=client::CN=ca.org2", api.RoleOperator}
	org2Hub      = caller{"Org2MSP", "x509::CN=hub2,OU=client::CN=ca.org2", api.RoleHub}
	org1Admin    = caller{"Org1MSP", "x509::CN=Admin@org1,OU=admin::CN=ca.org1", ""}
	org2Admin    = caller{"Org2MSP", "x509::CN=Admin@org2,OU=admin::CN=ca.org2", ""}
)

func (w *world) identity(c caller) *mocks.ClientIdentity {
	ci := &mocks.ClientIdentity{}
	ci.GetMSPIDReturns(c.msp, nil)
	ci.GetIDReturns(c.id, nil)
	if strings.Contains(c.id, "OU="+api.AdminOU+"::") {
		// An MSP admin: its certificate carries the admin OU.
		ci.GetX509CertificateReturns(&x509.Certificate{Subject: pkix.Name{CommonName: "admin", OrganizationalUnit: []string{api.AdminOU}}}, nil)
	}
	ci.GetAttributeValueStub = func(name string) (string, bool, error) {
		if name == api.RoleAttribute && c.role != "" {
			return c.role, true, nil
		}
		return "", false, nil
	}
	return ci
}

// stub builds a fake stub for a new transaction recording into rec, run on
// a peer of org peerMSP.
func (w *world) stub(rec *txRecord, peerMSP string) *mocks.ChaincodeStub {
	s := &mocks.ChaincodeStub{}
	transient := w.transient
	s.GetTransientStub = func() (map[string][]byte, error) {
		if err := w.injected("GetTransient"); err != nil {
			return nil, err
		}
		return transient, nil
	}
	s.PutPrivateDataStub = func(coll, k string, v []byte) error {
		if err := w.injected("PutPrivateData"); err != nil {
			return err
		}
		if coll == "" || k == "" || len(v) == 0 {
			return fmt.Errorf("empty collection, key or value for %q", k)
		}
		if err := rec.write(); err != nil {
			return err
		}
		if rec.pvt[coll] == nil {
			rec.pvt[coll] = map[string][]byte{}
		}
		rec.pvt[coll][k] = slices.Clone(v)
		return nil
	}
	s.GetPrivateDataStub = func(coll, k string) ([]byte, error) {
		if err := w.injected("GetPrivateData"); err != nil {
			return nil, err
		}
		v, ok := w.private[coll][k]
		// Like Fabric, a peer outside the collection knows the hash of a
		// committed value but not the value, and refuses the read.
		if ok && coll != implicitCollection(peerMSP) {
			return nil, fmt.Errorf("private data matching public hash version is not available")
		}
		return v, nil
	}
	privateRange := func(coll, start, end string) (shim.StateQueryIteratorInterface, error) {
		if err := rec.queryPrivate(); err != nil {
			return nil, err
		}
		if coll != implicitCollection(peerMSP) && len(w.private[coll]) > 0 {
			return nil, fmt.Errorf("private data matching public hash version is not available")
		}
		var keys []string
		for k := range w.private[coll] {
			if k >= start && k < end {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		kvs := make([]*queryresult.KV, len(keys))
		for i, k := range keys {
			kvs[i] = &queryresult.KV{Key: k, Value: w.private[coll][k]}
		}
		return w.iterator(kvs), nil
	}
	s.GetPrivateDataByRangeStub = func(coll, start, end string) (shim.StateQueryIteratorInterface, error) {
		if err := w.injected("GetPrivateDataByRange"); err != nil {
			return nil, err
		}
		// Like Fabric, a range over composite keys is refused.
		if strings.HasPrefix(start, "\x00") || strings.HasPrefix(end, "\x00") {
			return nil, fmt.Errorf("invalid range: %q contains a null character", start)
		}
		return privateRange(coll, start, end)
	}
	s.GetPrivateDataByPartialCompositeKeyStub = func(coll, kind string, attrs []string) (shim.StateQueryIteratorInterface, error) {
		if err := w.injected("GetPrivateDataByPartialCompositeKey"); err != nil {
			return nil, err
		}
		start, err := shim.CreateCompositeKey(kind, attrs)
		if err != nil {
			return nil, err
		}
		return privateRange(coll, start, start+"\U0010ffff")
	}
	s.GetTxIDReturns(rec.id)
	s.GetTxTimestampStub = func() (*timestamppb.Timestamp, error) {
		if err := w.injected("GetTxTimestamp"); err != nil {
			return nil, err
		}
		return timestamppb.New(w.now), nil
	}
	s.GetStateStub = func(k string) ([]byte, error) {
		if err := w.injected("GetState"); err != nil {
			return nil, err
		}
		return w.state[k], nil
	}
	s.PutStateStub = func(k string, v []byte) error {
		if err := w.injected("PutState"); err != nil {
			return err
		}
		if k == "" || len(v) == 0 {
			return fmt.Errorf("empty key or value for %q", k)
		}
		if err := rec.write(); err != nil {
			return err
		}
		if _, ok := rec.writes[k]; !ok {
			rec.order = append(rec.order, k)
		}
		rec.writes[k] = slices.Clone(v)
		return nil
	}
	s.DelStateStub = func(k string) error {
		if err := w.injected("DelState"); err != nil {
			return err
		}
		if err := rec.write(); err != nil {
			return err
		}
		if _, ok := rec.writes[k]; !ok {
			rec.order = append(rec.order, k)
		}
		rec.writes[k] = nil
		return nil
	}
	s.GetStateValidationParameterStub = func(k string) ([]byte, error) {
		if err := w.injected("GetStateValidationParameter"); err != nil {
			return nil, err
		}
		return w.sbe[k], nil // committed state only, like a peer
	}
	s.SetStateValidationParameterStub = func(k string, ep []byte) error {
		if err := w.injected("SetStateValidationParameter"); err != nil {
			return err
		}
		if err := rec.write(); err != nil {
			return err
		}
		rec.sbe[k] = ep
		return nil
	}
	s.SetEventStub = func(name string, payload []byte) error {
		if err := w.injected("SetEvent"); err != nil {
			return err
		}
		if name != api.EventName {
			return fmt.Errorf("unexpected event name %q", name)
		}
		rec.events = append(rec.events, payload)
		return nil
	}
	s.CreateCompositeKeyStub = shim.CreateCompositeKey
	s.GetStateByPartialCompositeKeyStub = func(kind string, attrs []string) (shim.StateQueryIteratorInterface, error) {
		if err := w.injected("GetStateByPartialCompositeKey"); err != nil {
			return nil, err
		}
		prefix, err := shim.CreateCompositeKey(kind, attrs)
		if err != nil {
			return nil, err
		}
		kvs, _ := w.scan(prefix, prefix+"\U0010FFFF", 0, "")
		return w.iterator(kvs), nil
	}
	s.GetStateByPartialCompositeKeyWithPaginationStub = func(kind string, attrs []string, size int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
		if err := w.injected("GetStateByPartialCompositeKeyWithPagination"); err != nil {
			return nil, nil, err
		}
		prefix, err := shim.CreateCompositeKey(kind, attrs)
		if err != nil {
			return nil, nil, err
		}
		kvs, next := w.scan(prefix, prefix+"\U0010FFFF", size, bookmark)
		return w.iterator(kvs), &peer.QueryResponseMetadata{FetchedRecordsCount: int32(len(kvs)), Bookmark: next}, nil
	}
	s.GetStateByRangeStub = func(start, end string) (shim.StateQueryIteratorInterface, error) {
		if err := w.injected("GetStateByRange"); err != nil {
			return nil, err
		}
		kvs, _ := w.scan(start, end, 0, "")
		return w.iterator(kvs), nil
	}
	s.GetStateByRangeWithPaginationStub = func(start, end string, size int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
		if err := w.injected("GetStateByRangeWithPagination"); err != nil {
			return nil, nil, err
		}
		kvs, next := w.scan(start, end, size, bookmark)
		return w.iterator(kvs), &peer.QueryResponseMetadata{FetchedRecordsCount: int32(len(kvs)), Bookmark: next}, nil
	}
	s.GetHistoryForKeyStub = func(k string) (shim.HistoryQueryIteratorInterface, error) {
		if err := w.injected("GetHistoryForKey"); err != nil {
			return nil, err
		}
		mods := w.history[k]
		it := &mocks.HistoryQueryIterator{}
		i := 0
		it.HasNextStub = func() bool { return i < len(mods) }
		it.NextStub = func() (*queryresult.KeyModification, error) {
			if err := w.injected("HistoryNext"); err != nil {
				return nil, err
			}
			i++
			return mods[i-1], nil
		}
		it.CloseStub = func() error { return w.injected("Close") }
		return it, nil
	}
	return s
}

// scan returns committed keys in [start, end) from bookmark on, at most
// size of them (0 = all), and the key to continue from.
func (w *world) scan(start, end string, size int32, bookmark string) ([]*queryresult.KV, string) {
	if bookmark != "" && bookmark > start {
		start = bookmark
	}
	keys := make([]string, 0, len(w.state))
	for k := range w.state {
		if k >= start && k < end {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	next := ""
	if size > 0 && len(keys) > int(size) {
		next = keys[size]
		keys = keys[:size]
	}
	out := make([]*queryresult.KV, len(keys))
	for i, k := range keys {
		out[i] = &queryresult.KV{Key: k, Value: w.state[k]}
	}
	return out, next
}

func (w *world) iterator(kvs []*queryresult.KV) *mocks.StateQueryIterator {
	it := &mocks.StateQueryIterator{}
	i := 0
	it.HasNextStub = func() bool { return i < len(kvs) }
	it.NextStub = func() (*queryresult.KV, error) {
		if err := w.injected("Next"); err != nil {
			return nil, err
		}
		i++
		return kvs[i-1], nil
	}
	it.CloseStub = func() error { return w.injected("Close") }
	return it
}

// invoke runs one transaction as c; its writes are committed if it succeeds.
func (w *world) invoke(c caller, tx func(contractapi.TransactionContextInterface) (string, error)) (string, error) {
	w.txNo++
	rec := &txRecord{id: fmt.Sprintf("%064x", w.txNo), writes: map[string][]byte{}, sbe: map[string][]byte{}, pvt: map[string]map[string][]byte{}}
	peerMSP := w.peerOrg
	if peerMSP == "" {
		peerMSP = c.msp
	}
	ctx := &mocks.TransactionContext{}
	ctx.GetStubReturns(w.stub(rec, peerMSP))
	ctx.GetClientIdentityReturns(w.identity(c))
	out, err := tx(ctx)
	w.lastTx = rec
	w.lastEvent, w.lastRaw = nil, nil
	if err != nil {
		return "", err
	}
	require.LessOrEqual(w.t, len(rec.events), 1, "a transaction sets at most one event")
	if len(rec.events) == 1 {
		var ev api.Event
		require.NoError(w.t, json.Unmarshal(rec.events[0], &ev))
		w.lastEvent, w.lastRaw = &ev, rec.events[0]
	}
	rec.required = w.endorsementNeeded(rec)
	for _, k := range rec.order {
		v := rec.writes[k]
		w.history[k] = append(w.history[k], &queryresult.KeyModification{TxId: rec.id, Value: v, Timestamp: timestamppb.New(w.now), IsDelete: v == nil})
		if v == nil {
			delete(w.state, k)
			delete(w.sbe, k) // Fabric deletes a key's metadata with it
		} else {
			w.state[k] = v
		}
	}
	for k, ep := range rec.sbe {
		w.sbe[k] = ep
	}
	for coll, kvs := range rec.pvt {
		if w.private[coll] == nil {
			w.private[coll] = map[string][]byte{}
		}
		for k, v := range kvs {
			w.private[coll][k] = v
		}
	}
	return out, nil
}

// must runs a transaction that has to succeed and decodes its result.
func must[T any](w *world, c caller, tx func(contractapi.TransactionContextInterface) (string, error)) T {
	w.t.Helper()
	out, err := w.invoke(c, tx)
	require.NoError(w.t, err)
	var v T
	require.NoError(w.t, json.Unmarshal([]byte(out), &v))
	return v
}

// refused runs a transaction that has to fail with code, and checks that it
// wrote nothing and emitted nothing.
func refused(t *testing.T, w *world, c caller, code api.Code, contains string, tx func(contractapi.TransactionContextInterface) (string, error)) {
	t.Helper()
	before, beforePvt := len(w.state), w.privateCount()
	_, err := w.invoke(c, tx)
	require.Error(t, err)
	require.Equal(t, code, api.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), contains)
	require.Equal(t, before, len(w.state))
	require.Equal(t, beforePvt, w.privateCount())
	require.Nil(t, w.lastEvent)
}

func (w *world) privateCount() int {
	n := 0
	for _, kvs := range w.private {
		n += len(kvs)
	}
	return n
}

func jsonArg(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// --- fixtures ---

type testDevice struct {
	id     string
	signer *reading.Signer
	seq    uint64
}

func newKey(t *testing.T, alg reading.Algorithm) *reading.Signer {
	t.Helper()
	s, err := reading.GenerateKey(alg)
	require.NoError(t, err)
	return s
}

// enroll enrolls an active device of c's org.
func (w *world) enroll(c caller, id, typ string, groups ...string) *testDevice {
	w.t.Helper()
	s := newKey(w.t, reading.ECDSAP256)
	req := api.EnrollRequest{ID: id, Type: typ, Groups: groups, PublicKey: s.Public().PEM(), Activate: true,
		Attributes: map[string]string{"zone": "cold"}}
	must[api.Device](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Enroll(ctx, jsonArg(w.t, req))
	})
	return &testDevice{id: id, signer: s}
}

// reading signs the device's next reading with the given temperature.
func (d *testDevice) reading(t *testing.T, temp float64) reading.Envelope {
	t.Helper()
	d.seq++
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: 1_700_000_000_000 + int64(d.seq),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &temp}}})
	require.NoError(t, err)
	return env
}

func (w *world) submitBatch(c caller, envs ...reading.Envelope) (string, error) {
	return w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(w.t, api.BatchRequest{Readings: envs}))
	})
}

func (w *world) getDevice(id string) api.Device {
	w.t.Helper()
	k, err := shim.CreateCompositeKey(kindDevice, []string{id})
	require.NoError(w.t, err)
	var d api.Device
	require.NoError(w.t, json.Unmarshal(w.state[k], &d))
	return d
}

// endorsers decodes the orgs named by a key-level endorsement policy.
func (w *world) endorsers(key string) []string {
	w.t.Helper()
	ep, ok := w.sbe[key]
	require.True(w.t, ok, "key %q has no endorsement policy", strings.ReplaceAll(key, "\x00", "~"))
	return listOrgs(w.t, ep)
}

func ckey(t *testing.T, kind string, attrs ...string) string {
	t.Helper()
	k, err := shim.CreateCompositeKey(kind, attrs)
	require.NoError(t, err)
	return k
}

func listOrgs(t *testing.T, ep []byte) []string {
	t.Helper()
	p, err := statebased.NewStateEP(ep)
	require.NoError(t, err)
	orgs := p.ListOrgs()
	slices.Sort(orgs)
	return orgs
}
