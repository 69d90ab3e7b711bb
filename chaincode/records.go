package chaincode

import (
	"fmt"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/iotledger/iotledger/chaincode/api"
)

// Where a transaction's new records go. A public transaction writes them to
// world state. A private telemetry batch (telemetry:SubmitPrivateBatch) is
// endorsed by the owner org of its devices alone, so that their readings
// never reach another org's peer: everything it creates or updates — the
// batch's readings (one key per batch), its record, its devices' replay
// states, rule cooldowns, commands its rules issue — goes to that
// org's implicit private data collection, whose writes Fabric validates
// against the org's own endorsement policy, with only their hashes on the
// channel. The one public key such a batch may change is the device record
// (a rule's status change), which is under the owner's key-level policy.

// putRecord writes a record where t's records go.
func (t *txn) putRecord(key string, value []byte) error {
	if t.private == "" {
		if err := t.l.PutState(key, value); err != nil {
			return internal("writing world state", err)
		}
		return nil
	}
	if err := t.l.PutPrivateData(implicitCollection(t.private), key, value); err != nil {
		return internal("writing private data", err)
	}
	return nil
}

// getRecord reads a record from where t's records go.
func (t *txn) getRecord(key string) ([]byte, error) {
	if t.private == "" {
		b, err := t.l.GetState(key)
		if err != nil {
			return nil, internal("reading world state", err)
		}
		return b, nil
	}
	b, err := t.l.GetPrivateData(implicitCollection(t.private), key)
	if err != nil {
		return nil, internal("reading private data", err)
	}
	return b, nil
}

// recordRange opens a range of plain keys where t's records are.
func (t *txn) recordRange(start, end string) (shim.StateQueryIteratorInterface, error) {
	if t.private == "" {
		it, err := t.l.GetStateByRange(start, end)
		if err != nil {
			return nil, internal("reading world state", err)
		}
		return it, nil
	}
	it, err := t.l.GetPrivateDataByRange(implicitCollection(t.private), start, end)
	if err != nil {
		return nil, internal("reading private data", err)
	}
	return it, nil
}

// ownPrivate reads a record from the caller's org's implicit collection,
// which only that org's peers hold. A peer of another org refuses the read;
// the error then says where to ask.
func (t *txn) ownPrivate(key, what string) ([]byte, error) {
	org := t.caller.MSPID
	b, err := t.l.GetPrivateData(implicitCollection(org), key)
	if err != nil {
		return nil, api.Errorf(api.CodeFailedPrecondition, fmt.Sprintf("%s is in the private data of %s, which this peer cannot read (%v): evaluate on a peer of %s",
			what, org, err, org))
	}
	return b, nil
}
