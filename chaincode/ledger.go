package chaincode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/statebased"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iotledger/iotledger/chaincode/api"
)

// ledger is the part of Fabric's chaincode stub the contracts use. The real
// stub satisfies it; unit tests drive the same code with a fake.
type ledger interface {
	GetTxID() string
	GetTxTimestamp() (*timestamppb.Timestamp, error)
	GetState(key string) ([]byte, error)
	PutState(key string, value []byte) error
	DelState(key string) error
	GetStateValidationParameter(key string) ([]byte, error)
	SetStateValidationParameter(key string, ep []byte) error
	GetStateByRange(startKey, endKey string) (shim.StateQueryIteratorInterface, error)
	GetStateByRangeWithPagination(startKey, endKey string, pageSize int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error)
	GetStateByPartialCompositeKey(objectType string, keys []string) (shim.StateQueryIteratorInterface, error)
	GetStateByPartialCompositeKeyWithPagination(objectType string, keys []string, pageSize int32, bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error)
	GetHistoryForKey(key string) (shim.HistoryQueryIteratorInterface, error)
	SetEvent(name string, payload []byte) error
	GetTransient() (map[string][]byte, error)
	PutPrivateData(collection, key string, value []byte) error
	GetPrivateData(collection, key string) ([]byte, error)
	GetPrivateDataByRange(collection, startKey, endKey string) (shim.StateQueryIteratorInterface, error)
	GetPrivateDataByPartialCompositeKey(collection, objectType string, keys []string) (shim.StateQueryIteratorInterface, error)
}

// Object types of the composite keys. Every world-state key of the chaincode
// is one of these (see docs/chaincode.md, "Key layout").
const (
	kindDevice      = "dev"       // dev~<id> → api.Device
	kindDeviceOwner = "dev-owner" // dev-owner~<msp>~<id> → 0x00
	kindDeviceType  = "dev-type"  // dev-type~<owner msp>~<type>~<id> → 0x00
	kindDeviceGroup = "dev-group" // dev-group~<owner msp>~<group>~<id> → 0x00
	kindDeviceKey   = "key"       // key~<device>~<keyId> → PEM of a key the device has held
	kindPolicy      = "pol"       // pol~<owner msp>~<id> → api.Policy (first layout: read until the org has a policy set)
	kindPolicySet   = "pol-set"   // pol-set~<owner msp> → storedPolicySet: all of the org's policies (policyset.go)
	kindRule        = "rule"      // rule~<owner msp>~<id> → api.Rule
	kindBatch       = "batch"     // batch~<txid> → api.BatchRecord
	kindReplay      = "rs"        // rs~<device> → replay state (replay.go)
	kindReplayNew   = "rs-new"    // rs-new~<device> → 0x00: a private device enrolled with replay states (no first-layout readings)
	kindPrivBatch   = "pbatch"    // pbatch~<txid> → a private batch's api.BatchRequest (owner's collection only)
	kindCooldown    = "cool"      // cool~<owner>~<rule>~<device> → last firing (Unix ns)
	kindCommand     = "cmd"       // cmd~<device>~<id> → api.Command
	kindCommandID   = "cmdid"     // cmdid~<id> → device id

	// Readings of the first layout used plain keys
	// "rd~<device>~<seq, 20 digits>", so that a listing could start at a
	// sequence number with a key range (range queries over composite keys
	// cannot start in the middle of a partial key). None is written any
	// more; they are read only to make a device's first replay state
	// (legacy.go).
	readingPrefix = "rd~"
)

// indexValue is the value of index keys: Fabric deletes keys with empty values.
var indexValue = []byte{0}

func compositeKey(kind string, attrs ...string) (string, error) {
	k, err := shim.CreateCompositeKey(kind, attrs)
	if err != nil {
		return "", api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("cannot build a %s key from %q: %v", kind, attrs, err))
	}
	return k, nil
}

// readingKey is the key of one reading of the first layout. Device ids
// never contain "~" (reading.ValidateID), so keys of different devices never
// interleave.
func readingKey(device string, seq uint64) string {
	return readingPrefix + device + "~" + fmt.Sprintf("%020d", seq)
}

// readingRange is the key range [from, end) of a device's readings from seq on.
func readingRange(device string, fromSeq uint64) (string, string) {
	return readingKey(device, fromSeq), readingPrefix + device + "~~"
}

func seqFromReadingKey(device, key string) (uint64, error) {
	prefix := readingPrefix + device + "~"
	if len(key) <= len(prefix) {
		return 0, api.Errorf(api.CodeInternal, "malformed reading key "+strconv.Quote(key))
	}
	seq, err := strconv.ParseUint(key[len(prefix):], 10, 64)
	if err != nil {
		return 0, api.Errorf(api.CodeInternal, "malformed reading key "+strconv.Quote(key))
	}
	return seq, nil
}

// implicitCollection is the name of an org's implicit private data
// collection. Fabric gives every org one per chaincode without any
// collection configuration: only that org's peers store its values, the
// channel keeps the hashes of keys and values.
func implicitCollection(mspID string) string {
	return "_implicit_org_" + mspID
}

func internal(what string, err error) error {
	return api.Errorf(api.CodeInternal, fmt.Sprintf("%s: %v", what, err))
}

// inconsistent refuses a stored record that is not what the ledger
// enforces for it, or that cannot be decoded.
func inconsistent(record, why string) error {
	return api.Errorf(api.CodeInconsistentRecord, record+" "+why)
}

// readableKey renders a composite key as kind~attr~attr for messages.
func readableKey(key string) string {
	kind, attrs, err := splitKey(key)
	if err != nil {
		return strconv.Quote(key)
	}
	return strings.Join(append([]string{kind}, attrs...), "~")
}

// describeEndorsers names the orgs of a key-level endorsement policy.
func describeEndorsers(ep []byte) string {
	if len(ep) == 0 {
		return "no org (the channel's endorsement policy applies)"
	}
	p, err := statebased.NewStateEP(ep)
	if err != nil {
		return "an undecodable policy"
	}
	orgs := p.ListOrgs()
	slices.Sort(orgs)
	return strings.Join(orgs, " and ")
}

// exists reports whether a composite key is in world state.
func exists(l ledger, kind string, attrs ...string) (bool, error) {
	k, err := compositeKey(kind, attrs...)
	if err != nil {
		return false, err
	}
	b, err := l.GetState(k)
	if err != nil {
		return false, internal("reading world state", err)
	}
	return b != nil, nil
}

// getJSON loads key into v; it reports false if the key does not exist. A
// value that does not decode is an INCONSISTENT_RECORD naming the key.
func getJSON(l ledger, key string, v any) (bool, error) {
	b, err := l.GetState(key)
	if err != nil {
		return false, internal("reading world state", err)
	}
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, inconsistent("stored record "+readableKey(key), "cannot be decoded: "+err.Error())
	}
	return true, nil
}

func putJSON(l ledger, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return internal("encoding record", err)
	}
	if err := l.PutState(key, b); err != nil {
		return internal("writing world state", err)
	}
	return nil
}

func putIndex(l ledger, key string) error {
	if err := l.PutState(key, indexValue); err != nil {
		return internal("writing index", err)
	}
	return nil
}

func del(l ledger, key string) error {
	if err := l.DelState(key); err != nil {
		return internal("deleting from world state", err)
	}
	return nil
}

// endorsementPolicy is a key-level endorsement policy that needs a peer of
// every listed org.
func endorsementPolicy(orgs ...string) ([]byte, error) {
	ep, err := statebased.NewStateEP(nil)
	if err != nil {
		return nil, internal("creating key endorsement policy", err)
	}
	if err := ep.AddOrgs(statebased.RoleTypePeer, orgs...); err != nil {
		return nil, internal("creating key endorsement policy", err)
	}
	b, err := ep.Policy()
	if err != nil {
		return nil, internal("encoding key endorsement policy", err)
	}
	return b, nil
}

// restrictTo sets the key-level endorsement policy of keys to the peers of
// orgs, so that only those orgs' peers can endorse later changes of them.
// A key that already has this policy is left alone: a transaction that
// rewrites a key's validation parameter invalidates every later transaction
// of the same block touching that key with ENDORSEMENT_POLICY_FAILURE,
// whereas an unchanged parameter lets them fail as MVCC_READ_CONFLICT, which
// clients retry.
func restrictTo(l ledger, orgs []string, keys ...string) error {
	ep, err := endorsementPolicy(orgs...)
	if err != nil {
		return err
	}
	for _, k := range keys {
		cur, err := l.GetStateValidationParameter(k)
		if err != nil {
			return internal("reading key endorsement policy", err)
		}
		if bytes.Equal(cur, ep) {
			continue
		}
		if err := l.SetStateValidationParameter(k, ep); err != nil {
			return internal("setting key endorsement policy", err)
		}
	}
	return nil
}

// Page sizes of list transactions.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

func pageSize(n int32) (int32, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0 || n > maxPageSize:
		return 0, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("pageSize %d is out of range: use 1..%d (0 means %d)", n, maxPageSize, defaultPageSize))
	}
	return n, nil
}

// kv is one world-state entry of a range query.
type kv struct {
	Key   string
	Value []byte
}

// closeQuery ends a range, partial-key or history query. A Fabric 2.5 peer
// ends a query itself when it sends the last of its results (a response
// without HasMore: core/chaincode/query_response_generator.go), so Close
// after the end is one more round trip to the peer that does nothing; only
// a query left before its end is closed.
func closeQuery(it interface {
	HasNext() bool
	Close() error
}) {
	if it.HasNext() {
		_ = it.Close()
	}
}

func drain(it shim.StateQueryIteratorInterface) ([]kv, error) {
	defer closeQuery(it)
	var out []kv
	for it.HasNext() {
		r, err := it.Next()
		if err != nil {
			return nil, internal("iterating world state", err)
		}
		out = append(out, kv{Key: r.GetKey(), Value: r.GetValue()})
	}
	return out, nil
}

// scanPage reads one page of a partial composite key range.
func scanPage(l ledger, kind string, attrs []string, size int32, bookmark string) ([]kv, string, error) {
	it, meta, err := l.GetStateByPartialCompositeKeyWithPagination(kind, attrs, size, bookmark)
	if err != nil {
		return nil, "", api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("cannot list %s: %v (is the bookmark from an earlier page of the same listing?)", kind, err))
	}
	kvs, err := drain(it)
	if err != nil {
		return nil, "", err
	}
	return kvs, nextBookmark(len(kvs), size, meta), nil
}

func nextBookmark(n int, size int32, meta *peer.QueryResponseMetadata) string {
	if n < int(size) || meta == nil {
		return ""
	}
	return meta.GetBookmark()
}

// scanAll reads a whole partial composite key range, in key order.
func scanAll(l ledger, kind string, attrs ...string) ([]kv, error) {
	it, err := l.GetStateByPartialCompositeKey(kind, attrs)
	if err != nil {
		return nil, internal("querying "+kind, err)
	}
	return drain(it)
}

// lastAttr is the last attribute of a composite key (the id in index keys).
func lastAttr(key string) (string, error) {
	_, attrs, err := splitKey(key)
	if err != nil {
		return "", err
	}
	if len(attrs) == 0 {
		return "", api.Errorf(api.CodeInternal, "malformed index key "+strconv.Quote(key))
	}
	return attrs[len(attrs)-1], nil
}

func splitKey(key string) (string, []string, error) {
	// Composite keys are "\x00" kind "\x00" (attr "\x00")*.
	if len(key) < 2 || key[0] != 0 {
		return "", nil, api.Errorf(api.CodeInternal, "malformed composite key "+strconv.Quote(key))
	}
	var parts []string
	start := 1
	for i := 1; i < len(key); i++ {
		if key[i] == 0 {
			parts = append(parts, key[start:i])
			start = i + 1
		}
	}
	if len(parts) == 0 {
		return "", nil, api.Errorf(api.CodeInternal, "malformed composite key "+strconv.Quote(key))
	}
	return parts[0], parts[1:], nil
}
