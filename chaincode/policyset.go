package chaincode

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy"
)

// An org's policies are one document, its policy set, under
// pol-set~<owner MSP>: every access decision on the org's devices reads
// them all, and a point read costs the peer a fraction of the range query
// over pol~<owner>~<id> keys that the first layout needed (see
// docs/decisions.md, "Policies in one key per org"). The set is versioned,
// endorsed by its owner only once the owner changed a policy in it, and
// readable by every member.
//
// Ledgers of the first layout keep working: an org without a set has its
// policies read from its pol~ keys, and the org's first transaction that
// writes — a policy change, an enrolment, an accepted transfer — moves them
// into its set and deletes them. An org with a set never has its pol~ keys
// read again.

// storedPolicySet is the document under pol-set~<owner>.
type storedPolicySet struct {
	Owner string `json:"owner"`
	// Version counts the changes of the set (1 for the first).
	Version int `json:"version"`
	// Policies are in ID order, each ID once.
	Policies []api.Policy `json:"policies"`
}

// orgPolicies is an org's policies as a transaction loaded them.
type orgPolicies struct {
	owner    string
	policies []api.Policy // in ID order
	// version is that of the org's set; 0 when it has none yet.
	version int
	// legacy are the first-layout keys the policies came from when the org
	// has no set.
	legacy []string
}

func policySetKey(owner string) (string, error) {
	return compositeKey(kindPolicySet, owner)
}

// orgPolicySet loads an org's policies (once per transaction): from its
// set, or from the keys of the first layout when it has none.
func (t *txn) orgPolicySet(owner string) (*orgPolicies, error) {
	if s, ok := t.policyOf[owner]; ok {
		return s, nil
	}
	s, ok, err := t.storedPolicySet(owner)
	if err != nil {
		return nil, err
	}
	if !ok {
		if s, err = t.legacyPolicies(owner); err != nil {
			return nil, err
		}
	}
	t.policyOf[owner] = s
	return s, nil
}

// storedPolicySet reads an org's policy set; false if it has none.
func (t *txn) storedPolicySet(owner string) (*orgPolicies, bool, error) {
	if s, ok := t.policyOf[owner]; ok && s.version > 0 {
		return s, true, nil
	}
	k, err := policySetKey(owner)
	if err != nil {
		return nil, false, err
	}
	b, err := t.l.GetState(k)
	if err != nil {
		return nil, false, internal("reading world state", err)
	}
	if b == nil {
		return nil, false, nil
	}
	s, err := decodePolicySet(owner, k, b)
	if err != nil {
		return nil, false, err
	}
	t.policyOf[owner] = s
	return s, true, nil
}

// decodePolicySet decodes a stored policy set and checks what this
// chaincode guarantees of one it wrote: it is of the org its key names, and
// so is each policy; its policies are in ID order, each once, at most
// MaxPoliciesPerOrg of them. The key is under its owner's endorsement, the
// fields are whatever that owner wrote (see decodeOrgDocs).
func decodePolicySet(owner, key string, b []byte) (*orgPolicies, error) {
	name := "stored policy set " + readableKey(key)
	var s storedPolicySet
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, inconsistent(name, "cannot be decoded: "+err.Error())
	}
	if s.Owner != owner {
		return nil, inconsistent(name, fmt.Sprintf("says it is the policy set of %s", s.Owner))
	}
	if s.Version < 1 {
		return nil, inconsistent(name, fmt.Sprintf("has version %d", s.Version))
	}
	if len(s.Policies) > policy.MaxPoliciesPerOrg {
		return nil, api.Errorf(api.CodeResourceExhausted, fmt.Sprintf(
			"%s has more than %d policies, the limit per org: this chaincode did not store them all", owner, policy.MaxPoliciesPerOrg))
	}
	for i, p := range s.Policies {
		if p.Owner != owner {
			return nil, inconsistent(name, fmt.Sprintf("holds policy %q of %s", p.ID, p.Owner))
		}
		if i > 0 && strings.Compare(s.Policies[i-1].ID, p.ID) >= 0 {
			return nil, inconsistent(name, fmt.Sprintf("does not hold its policies in ID order, each once (%q after %q)", p.ID, s.Policies[i-1].ID))
		}
	}
	if s.Policies == nil {
		s.Policies = []api.Policy{}
	}
	return &orgPolicies{owner: owner, policies: s.Policies, version: s.Version}, nil
}

// legacyPolicies reads an org's policies from the keys of the first layout,
// pol~<owner>~<id>.
func (t *txn) legacyPolicies(owner string) (*orgPolicies, error) {
	kvs, err := scanOrgSet(t.l, kindPolicy, "policies", owner, policy.MaxPoliciesPerOrg)
	if err != nil {
		return nil, err
	}
	ps, err := decodeOrgDocs[api.Policy](kvs, "policy")
	if err != nil {
		return nil, err
	}
	s := &orgPolicies{owner: owner, policies: ps}
	for _, e := range kvs {
		s.legacy = append(s.legacy, e.Key)
	}
	return s, nil
}

// find returns the org's policy id, if it has one.
func (s *orgPolicies) find(id string) (api.Policy, bool) {
	i, ok := slices.BinarySearchFunc(s.policies, id, func(p api.Policy, id string) int { return strings.Compare(p.ID, id) })
	if !ok {
		return api.Policy{}, false
	}
	return s.policies[i], true
}

// savePolicySet writes an org's policies as its set, the next version, and
// deletes the first-layout keys they were read from. With restrict, the set
// is put under its owner's endorsement alone (creating it needs the
// channel's endorsement policy, like any new key).
func (t *txn) savePolicySet(s *orgPolicies, policies []api.Policy, restrict bool) error {
	k, err := policySetKey(s.owner)
	if err != nil {
		return err
	}
	next := storedPolicySet{Owner: s.owner, Version: s.version + 1, Policies: policies}
	if err := putJSON(t.l, k, next); err != nil {
		return err
	}
	if restrict {
		if err := restrictTo(t.l, []string{s.owner}, k); err != nil {
			return err
		}
	}
	for _, lk := range s.legacy {
		if err := del(t.l, lk); err != nil {
			return err
		}
	}
	t.policyOf[s.owner] = &orgPolicies{owner: s.owner, policies: policies, version: next.Version}
	return nil
}

// ensurePolicySet gives the org a policy set if it has none yet, made from
// its first-layout keys (or empty). Transactions that already need the
// channel's endorsement call it for the caller's org (enrolment, an
// accepted transfer), so that every org that has devices under this
// chaincode has its set, and a decision on its devices one point read.
//
// The set is left under the channel's endorsement policy here; the org's
// next policy change restricts it to the org. An org's first enrolments
// often come many at once, and every one of them finds no set and creates
// it: had the first in a block also set the key's endorsement policy,
// Fabric would invalidate the others as ENDORSEMENT_POLICY_FAILURE, which
// clients do not retry; as it is, they fail as MVCC_READ_CONFLICT and are
// retried as new transactions, which find the set.
func (t *txn) ensurePolicySet(owner string) error {
	s, err := t.orgPolicySet(owner)
	if err != nil {
		return err
	}
	if s.version > 0 {
		return nil
	}
	return t.savePolicySet(s, slices.Clone(s.policies), false)
}
