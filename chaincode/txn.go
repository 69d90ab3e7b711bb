package chaincode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"
	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/automation"
	"github.com/iotledger/iotledger/chaincode/policy"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// maxArgBytes bounds one JSON argument (a batch of 500 readings of a few
// hundred bytes each fits comfortably).
const maxArgBytes = 4 << 20

// engines holds what the contracts share between transactions: the policy
// engine and the rule evaluator. Both are pure functions of their inputs
// (their caches only hold compiled expressions), so sharing them keeps every
// endorsement deterministic.
type engines struct {
	policies *policy.Engine
	rules    *automation.Evaluator
	// clock and maxSkew bound the proposal timestamp (see checkClock).
	clock   func() time.Time
	maxSkew time.Duration
	// callers caches principalOf by creator bytes.
	callers callerCache
}

// txn is the state of one transaction: who calls, when (the transaction
// timestamp, never a clock), and what has been read so far.
type txn struct {
	eng    *engines
	l      ledger
	id     string
	now    time.Time
	caller api.Principal

	devices   map[string]*api.Device
	keys      map[string]*reading.PublicKey // device id → parsed current key
	policyOf  map[string]*orgPolicies       // owner MSP → its policies (policyset.go)
	commandNo int                           // commands created so far (ids <txid>-<n>)
	budget    *condition.Budget             // CEL cost all conditions of the transaction draw on (TxEvalBudget)
	// private is the org whose implicit collection receives the records
	// this transaction creates (a private telemetry batch); see records.go.
	private string
}

func (e *engines) begin(ctx contractapi.TransactionContextInterface) (*txn, error) {
	stub := ctx.GetStub()
	ts, err := stub.GetTxTimestamp()
	if err != nil {
		return nil, internal("reading the transaction timestamp", err)
	}
	now := ts.AsTime().UTC()
	if err := e.checkClock(now); err != nil {
		return nil, err
	}
	caller, err := e.caller(ctx)
	if err != nil {
		return nil, err
	}
	return newTxn(e, stub, now, caller), nil
}

// caller is the principal of the transaction's creator, from the cache when
// the same creator called before. The principal is shared between
// transactions: nothing may modify it (or its Attrs).
func (e *engines) caller(ctx contractapi.TransactionContextInterface) (api.Principal, error) {
	creator, err := ctx.GetStub().GetCreator()
	if err == nil && len(creator) > 0 {
		if p, ok := e.callers.get(creator); ok {
			return p, nil
		}
	}
	p, err := principalOf(ctx.GetClientIdentity())
	if err != nil {
		return api.Principal{}, err
	}
	if len(creator) > 0 {
		e.callers.put(creator, p)
	}
	return p, nil
}

// checkClock refuses a proposal whose timestamp is further than maxSkew from
// this endorser's clock. Fabric takes the timestamp from the client without
// checking it, and the contracts use it as "now" (validity windows, command
// expiry, cooldowns, every recorded time). Every change needs its owner
// org's endorsement, so with this check no member can move another member's
// clock. It is a refusal, never a different write: what a transaction writes
// still depends only on the timestamp.
func (e *engines) checkClock(ts time.Time) error {
	local := e.clock().UTC()
	skew := ts.Sub(local)
	if skew < 0 {
		skew = -skew
	}
	if skew <= e.maxSkew {
		return nil
	}
	dir := "ahead of"
	if ts.Before(local) {
		dir = "behind"
	}
	return api.Errorf(api.CodeClockSkew, fmt.Sprintf("the proposal timestamp %s is %s %s this endorser's clock %s; the bound is %s: check the client's clock (NTP)",
		ts.Format(time.RFC3339Nano), skew.Round(time.Millisecond), dir, local.Format(time.RFC3339Nano), e.maxSkew))
}

func newTxn(e *engines, l ledger, now time.Time, caller api.Principal) *txn {
	return &txn{
		eng:      e,
		l:        l,
		id:       l.GetTxID(),
		now:      now,
		caller:   caller,
		devices:  map[string]*api.Device{},
		keys:     map[string]*reading.PublicKey{},
		policyOf: map[string]*orgPolicies{},
		budget:   condition.NewBudget(TxEvalBudget),
	}
}

// principalOf reads the caller from its certificate: MSP ID, client ID and
// the Fabric CA attributes (the role is api.RoleAttribute).
func principalOf(ci cid.ClientIdentity) (api.Principal, error) {
	msp, err := ci.GetMSPID()
	if err != nil {
		return api.Principal{}, api.Errorf(api.CodeAccessDenied, "cannot read the caller's MSP ID: "+err.Error())
	}
	if err := reading.ValidateID("caller MSP ID", msp); err != nil {
		return api.Principal{}, api.Errorf(api.CodeAccessDenied, err.Error())
	}
	id, err := ci.GetID()
	if err != nil {
		return api.Principal{}, api.Errorf(api.CodeAccessDenied, "cannot read the caller's identity: "+err.Error())
	}
	role, _, err := ci.GetAttributeValue(api.RoleAttribute)
	if err != nil {
		return api.Principal{}, api.Errorf(api.CodeAccessDenied, "cannot read the caller's "+api.RoleAttribute+" attribute: "+err.Error())
	}
	p := api.Principal{MSPID: msp, ClientID: id, Role: role}
	if cert, err := ci.GetX509Certificate(); err == nil && cert != nil {
		p.Admin = slices.Contains(cert.Subject.OrganizationalUnit, api.AdminOU)
		if attrs, err := attrmgr.New().GetAttributesFromCert(cert); err == nil && attrs != nil && len(attrs.Attrs) > 0 {
			p.Attrs = make(map[string]string, len(attrs.Attrs))
			for k, v := range attrs.Attrs {
				p.Attrs[k] = v
			}
		}
	}
	return p, nil
}

// emit sets the transaction's one chaincode event.
func (t *txn) emit(ev api.Event) error {
	ev.TxID = t.id
	ev.MSPID = t.caller.MSPID
	ev.Client = t.caller.ClientID
	ev.Timestamp = t.now
	b, err := json.Marshal(ev)
	if err != nil {
		return internal("encoding event", err)
	}
	if err := t.l.SetEvent(api.EventName, b); err != nil {
		return internal("setting event", err)
	}
	return nil
}

// device loads a device (once per transaction).
func (t *txn) device(id string) (*api.Device, error) {
	d, err := t.findDevice(id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, api.Errorf(api.CodeNotFound, fmt.Sprintf("device %q is not enrolled", id))
	}
	return d, nil
}

// findDevice loads a device; it returns nil if none is enrolled with id.
func (t *txn) findDevice(id string) (*api.Device, error) {
	if d, ok := t.devices[id]; ok {
		return d, nil
	}
	if err := reading.ValidateID("device", id); err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, err.Error())
	}
	k, err := compositeKey(kindDevice, id)
	if err != nil {
		return nil, err
	}
	b, err := t.l.GetState(k)
	if err != nil {
		return nil, internal("reading world state", err)
	}
	if b == nil {
		return nil, nil
	}
	d, err := t.trustDevice(id, k, b)
	if err != nil {
		return nil, err
	}
	t.devices[id] = d
	return d, nil
}

// trustDevice decodes a stored device record and checks that the ledger
// enforces what it claims. A record is only what the org whose peers may
// endorse its key wrote: a member can rewrite its own device's record to
// name another org as owner, or hand the key's endorsement to that org, with
// its sole endorsement. So the owner is believed only when the record's
// key-level endorsement policy is exactly the claimed owner's peers AND the
// owner index key dev-owner~<owner>~<id> exists: index keys are created only
// under the channel's endorsement policy (enrolment or an accepted
// transfer), which one org alone cannot satisfy.
func (t *txn) trustDevice(id, key string, b []byte) (*api.Device, error) {
	name := "device record " + readableKey(key)
	var d api.Device
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, inconsistent(name, "cannot be decoded: "+err.Error())
	}
	if d.ID != id {
		return nil, inconsistent(name, fmt.Sprintf("says it is device %q", d.ID))
	}
	if reading.ValidateID("owner", d.Owner) != nil {
		return nil, inconsistent(name, fmt.Sprintf("names no valid owner (%q)", d.Owner))
	}
	got, err := t.l.GetStateValidationParameter(key)
	if err != nil {
		return nil, internal("reading key endorsement policy", err)
	}
	want, err := endorsementPolicy(d.Owner)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, inconsistent(name, fmt.Sprintf("claims owner %s, but its key-level endorsement policy names %s: the owner did not write it",
			d.Owner, describeEndorsers(got)))
	}
	ok, err := exists(t.l, kindDeviceOwner, d.Owner, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, inconsistent(name, fmt.Sprintf("claims owner %s, but %s never enrolled it or accepted it in a transfer (no owner index)", d.Owner, d.Owner))
	}
	return &d, nil
}

// deviceKey parses a device's current public key (once per transaction).
func (t *txn) deviceKey(d *api.Device) (*reading.PublicKey, error) {
	if k, ok := t.keys[d.ID]; ok {
		return k, nil
	}
	k, err := reading.ParsePublicKey(d.PublicKey)
	if err != nil {
		return nil, internal(fmt.Sprintf("enrolled key of device %q", d.ID), err)
	}
	t.keys[d.ID] = k
	return k, nil
}

// policies loads an org's policies (once per transaction), in ID order.
func (t *txn) policies(owner string) ([]api.Policy, error) {
	s, err := t.orgPolicySet(owner)
	if err != nil {
		return nil, err
	}
	return s.policies, nil
}

func deviceResource(d *api.Device) policy.Resource {
	return policy.ResourceOf(*d)
}

// orgResource stands for an org's own policy or rule set, for the
// policy:manage and rule:manage actions.
func orgResource(owner, kind, id string) policy.Resource {
	return policy.Resource{ID: id, Owner: owner, Type: kind}
}

func (t *txn) request(p api.Principal, action string, r policy.Resource, ctx map[string]any) policy.Request {
	return policy.Request{Principal: p, Action: action, Resource: r, Time: t.now, Context: ctx}
}

// decide evaluates an access request against the resource owner's policies.
func (t *txn) decide(p api.Principal, action string, r policy.Resource, ctx map[string]any) (api.Decision, error) {
	ps, err := t.policies(r.Owner)
	if err != nil {
		return api.Decision{}, err
	}
	return t.eng.policies.Decide(t.request(p, action, r, ctx), ps, t.budget)
}

// authorize refuses with ACCESS_DENIED unless the caller may do action on r.
func (t *txn) authorize(action string, r policy.Resource) error {
	if t.adminRecovery(action, r) {
		return nil
	}
	d, err := t.decide(t.caller, action, r, nil)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return api.Errorf(api.CodeAccessDenied, fmt.Sprintf("%s (%s) may not %s %q of %s: %s",
			t.callerName(), t.caller.MSPID, action, r.ID, r.Owner, d.Reason))
	}
	return nil
}

// adminRecovery is the way out of a lock-out: an org's policies can deny
// policy:manage or rule:manage to everyone, including the statement that
// does it, and then nobody could ever change them again. The org's MSP
// administrator — the identity that already controls the org's peers and
// its channel membership — may always manage its own org's policies and
// rules, whatever they say. It gives nothing over another org's documents
// or over devices.
func (t *txn) adminRecovery(action string, r policy.Resource) bool {
	return t.caller.Admin && r.Owner == t.caller.MSPID &&
		(action == api.ActionPolicyManage || action == api.ActionRuleManage)
}

func (t *txn) callerName() string {
	if t.caller.Role == "" {
		return "a caller without the " + api.RoleAttribute + " attribute"
	}
	return "role " + t.caller.Role
}

// decodeArg decodes one JSON transaction argument strictly (see
// decodeBytes), and the error says which argument.
func decodeArg(name, arg string, v any) error {
	if len(arg) > maxArgBytes {
		return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("%s is %d bytes, the limit is %d", name, len(arg), maxArgBytes))
	}
	if strings.TrimSpace(arg) == "" {
		return api.Errorf(api.CodeInvalidArgument, name+" is empty: pass a JSON object")
	}
	return decodeBytes(name, []byte(arg), v)
}

// decodeBytes is decodeArg for bytes already in hand. It decodes with
// reading.DecodeStrict, as every device input is decoded: duplicate keys,
// keys that are not exactly a field name (case variants included), unknown
// keys, invalid UTF-8 and trailing data are refused.
func decodeBytes(name string, b []byte, v any) error {
	err := reading.DecodeStrict(b, v)
	var de *reading.DecodeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de) && de.Problem == reading.ProblemTrailingData:
		return api.Errorf(api.CodeInvalidArgument, name+" has trailing data after the JSON object")
	}
	return api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("%s is not valid JSON for this transaction: %v", name, err))
}

func encodeResult(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", internal("encoding result", err)
	}
	return string(b), nil
}

func invalidArg(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*api.Error); ok { //nolint:errorlint // only our own unwrapped errors pass through
		return err
	}
	return api.Errorf(api.CodeInvalidArgument, err.Error())
}

// submit runs a transaction that changes the ledger and emits its event.
func submit[T any](e *engines, ctx contractapi.TransactionContextInterface, apply func(t *txn) (T, *api.Event, error)) (string, error) {
	t, err := e.begin(ctx)
	if err != nil {
		return "", err
	}
	res, ev, err := apply(t)
	if err != nil {
		return "", err
	}
	if ev != nil {
		if err := t.emit(*ev); err != nil {
			return "", err
		}
	}
	return encodeResult(res)
}

// evaluate runs a read-only transaction.
func evaluate[T any](e *engines, ctx contractapi.TransactionContextInterface, read func(t *txn) (T, error)) (string, error) {
	t, err := e.begin(ctx)
	if err != nil {
		return "", err
	}
	res, err := read(t)
	if err != nil {
		return "", err
	}
	return encodeResult(res)
}

// evaluateBytes runs a read-only transaction whose result is stored bytes,
// returned as they are stored (not re-encoded), so that a caller can hash
// them.
func evaluateBytes(e *engines, ctx contractapi.TransactionContextInterface, read func(t *txn) ([]byte, error)) (string, error) {
	t, err := e.begin(ctx)
	if err != nil {
		return "", err
	}
	b, err := read(t)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
