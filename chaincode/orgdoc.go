package chaincode

import (
	"encoding/json"
	"fmt"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Policies and rules are documents an org owns, stored under
// <kind>~<owner MSP>~<id>, versioned, endorsed by their owner only, and
// readable by every member. The storage is the same for both; what differs
// (validation, the action that authorizes a change, the event) stays with
// each kind.

// orgDoc is a document an org owns: api.Policy or api.Rule.
type orgDoc interface {
	OwnerAndID() (owner, id string)
}

// putOrgDoc stores doc under kind/owner/id, bumping the version found there,
// and makes the owner org's peer the key's endorser. version points into doc.
func putOrgDoc[T any](t *txn, kind, owner, id string, doc *T, version func(*T) *int) error {
	k, err := compositeKey(kind, owner, id)
	if err != nil {
		return err
	}
	var old T
	if _, err := getJSON(t.l, k, &old); err != nil {
		return err
	}
	*version(doc) = *version(&old) + 1
	if err := putJSON(t.l, k, doc); err != nil {
		return err
	}
	return restrictTo(t.l, []string{owner}, k)
}

// loadOrgDoc reads the document a reference ("<id>" or "<owner>/<id>")
// names, and its key.
func loadOrgDoc[T orgDoc](t *txn, kind, what, ref string) (*T, string, error) {
	owner, id, err := t.splitRef(what, ref)
	if err != nil {
		return nil, "", err
	}
	k, err := compositeKey(kind, owner, id)
	if err != nil {
		return nil, "", err
	}
	b, err := t.l.GetState(k)
	if err != nil {
		return nil, "", internal("reading world state", err)
	}
	if b == nil {
		return nil, "", api.Errorf(api.CodeNotFound, fmt.Sprintf("%s %q of %s does not exist", what, id, owner))
	}
	docs, err := decodeOrgDocs[T]([]kv{{Key: k, Value: b}}, what)
	if err != nil {
		return nil, "", err
	}
	return &docs[0], k, nil
}

// listOrgDocs reads one page of an org's documents (the caller's org when
// owner is empty), in key order.
func listOrgDocs[T orgDoc](t *txn, kind, what, owner string, pageSizeArg int32, bookmark string) ([]T, string, error) {
	size, err := pageSize(pageSizeArg)
	if err != nil {
		return nil, "", err
	}
	if owner == "" {
		owner = t.caller.MSPID
	}
	if err := reading.ValidateID("owner", owner); err != nil {
		return nil, "", invalidArg(err)
	}
	kvs, next, err := scanPage(t.l, kind, []string{owner}, size, bookmark)
	if err != nil {
		return nil, "", err
	}
	docs, err := decodeOrgDocs[T](kvs, what)
	return docs, next, err
}

// decodeOrgDocs decodes stored documents. A document is believed to be of
// the org and id its key names, never of those its fields claim: the key
// <kind>~<owner>~<id> is under its owner's endorsement, whereas the fields
// are whatever that owner wrote. A document whose fields disagree with its
// key, or that does not decode, is an INCONSISTENT_RECORD naming the key.
func decodeOrgDocs[T orgDoc](kvs []kv, what string) ([]T, error) {
	docs := make([]T, 0, len(kvs))
	for _, e := range kvs {
		name := "stored " + what + " " + readableKey(e.Key)
		var doc T
		if err := json.Unmarshal(e.Value, &doc); err != nil {
			return nil, inconsistent(name, "cannot be decoded: "+err.Error())
		}
		_, attrs, err := splitKey(e.Key)
		if err != nil || len(attrs) != 2 {
			return nil, inconsistent(name, "is not under a <kind>~<owner>~<id> key")
		}
		if owner, id := doc.OwnerAndID(); owner != attrs[0] || id != attrs[1] {
			return nil, inconsistent(name, fmt.Sprintf("says it is %s %q of %s", what, id, owner))
		}
		docs = append(docs, doc)
	}
	return docs, nil
}
