package chaincode

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy"
)

// peerCalls are the stub methods that are a message to the peer and its
// answer (a round trip on the chaincode's stream). The others — the
// transaction ID and timestamp, the creator, the transient data, the event,
// iterating results the peer already sent — are answered by the shim.
var peerCalls = []string{
	"GetState", "PutState", "DelState", "GetStateValidationParameter", "SetStateValidationParameter",
	"GetStateByRange", "GetStateByRangeWithPagination", "GetStateByPartialCompositeKey",
	"GetStateByPartialCompositeKeyWithPagination", "GetHistoryForKey", "Close",
	"GetPrivateData", "PutPrivateData", "GetPrivateDataByRange", "GetPrivateDataByPartialCompositeKey",
}

// roundTrips runs tx and counts its round trips to the peer, by stub method.
func (w *world) roundTrips(c caller, tx txFunc) (map[string]int, error) {
	w.t.Helper()
	w.calls = map[string]int{}
	_, err := w.invoke(c, tx)
	out := map[string]int{}
	for _, m := range peerCalls {
		if n := w.calls[m]; n > 0 {
			out[m] = n
		}
	}
	return out, err
}

// storedSet decodes an org's policy set from the committed state.
func (w *world) storedSet(owner string) (storedPolicySet, bool) {
	w.t.Helper()
	b, ok := w.state[ckey(w.t, kindPolicySet, owner)]
	if !ok {
		return storedPolicySet{}, false
	}
	var s storedPolicySet
	require.NoError(w.t, json.Unmarshal(b, &s))
	return s, true
}

// writePolicyIntoSet stores a policy in an org's set with no validation, as
// a member running a modified chaincode behind its own peer can.
func (w *world) writePolicyIntoSet(owner string, p api.Policy) {
	w.t.Helper()
	s, ok := w.storedSet(owner)
	if !ok {
		s = storedPolicySet{Owner: owner, Version: 1}
	}
	s.Policies = slices.DeleteFunc(s.Policies, func(q api.Policy) bool { return q.ID == p.ID })
	s.Policies = append(s.Policies, p)
	slices.SortFunc(s.Policies, func(a, b api.Policy) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.Marshal(s)
	require.NoError(w.t, err)
	w.state[ckey(w.t, kindPolicySet, owner)] = b
	w.sbe[ckey(w.t, kindPolicySet, owner)] = mustEndorsementPolicy(w.t, owner)
}

// toFirstLayout turns an org's policies into those of a ledger written
// before policy sets: one pol~<owner>~<id> key each, under the owner's
// endorsement, and no set.
func (w *world) toFirstLayout(owner string) {
	w.t.Helper()
	s, ok := w.storedSet(owner)
	require.True(w.t, ok)
	sk := ckey(w.t, kindPolicySet, owner)
	delete(w.state, sk)
	delete(w.sbe, sk)
	for _, p := range s.Policies {
		b, err := json.Marshal(p)
		require.NoError(w.t, err)
		k := ckey(w.t, kindPolicy, owner, p.ID)
		w.state[k] = b
		w.sbe[k] = mustEndorsementPolicy(w.t, owner)
	}
}

func mustEndorsementPolicy(t *testing.T, org string) []byte {
	t.Helper()
	ep, err := endorsementPolicy(org)
	require.NoError(t, err)
	return ep
}

func checkAccess(w *world, r api.AccessRequest) txFunc {
	return func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.CheckAccess(ctx, jsonArg(w.t, r))
	}
}

// A CheckAccess is point reads only: the device record, its key-level
// policy, its owner index, and the owner org's policy set. No range query
// (which costs the peer several point reads) and no iterator to close. Were
// a read added, this test says so.
func TestCheckAccessRoundTripsToThePeer(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge", "g1")
	w.enroll(org1Operator, "s1", "sensor")
	for i := range 3 {
		_, err := w.putPolicy(org1Operator, grant(fmt.Sprintf("p%d", i), []string{"msp:Org2MSP"}, []string{api.ActionDeviceRead}, []string{"group:g1"}))
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		name   string
		caller caller
		req    api.AccessRequest
		want   map[string]int
	}{
		{"the caller", org2Operator, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "d1"},
			map[string]int{"GetState": 3, "GetStateValidationParameter": 1}},
		{"a device principal", org1Operator, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "d1", Device: "s1"},
			map[string]int{"GetState": 5, "GetStateValidationParameter": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.roundTrips(tc.caller, checkAccess(w, tc.req))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// A ledger written before policy sets keeps its policies in force, and the
// org's first write moves them into its set: decisions, Get and List
// answer the same before and after, and the old keys are gone.
func TestFirstLayoutPoliciesKeepWorkingAndMoveIntoTheSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, w *world)
	}{
		{"a policy put", func(t *testing.T, w *world) {
			_, err := w.putPolicy(org1Operator, grant("c-new", []string{"msp:Org2MSP"}, []string{api.ActionTelemetryRead}, []string{"*"}))
			require.NoError(t, err)
		}},
		{"a policy delete", func(t *testing.T, w *world) {
			_, err := w.invoke(org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return "", w.c.Policy.Delete(ctx, "c-unused")
			})
			require.NoError(t, err)
		}},
		{"an enrolment", func(t *testing.T, w *world) {
			w.enroll(org1Operator, "d2", "fridge")
			require.NotContains(t, w.lastTx.sbe, ckey(t, kindPolicySet, "Org1MSP"),
				"an enrolment leaves the set's endorsement policy alone: concurrent first enrolments then conflict as MVCC, which is retried")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.enroll(org1Operator, "d1", "fridge")
			for _, p := range []api.Policy{
				grant("a-read", []string{"msp:Org2MSP"}, []string{api.ActionDeviceRead, api.ActionTelemetryRead}, []string{"*"}),
				{ID: "b-deny", Statements: []api.Statement{{Sid: "no", Effect: api.Deny, Principals: []string{"msp:Org2MSP"}, Actions: []string{api.ActionTelemetryRead}, Resources: []string{"d1"}}}},
				grant("c-unused", []string{"msp:Org2MSP"}, []string{api.ActionDeviceCommand}, []string{"group:none"}),
			} {
				_, err := w.putPolicy(org1Operator, p)
				require.NoError(t, err)
			}
			w.toFirstLayout("Org1MSP")

			decide := func(action string) api.Decision {
				return must[api.Decision](w, org2Operator, checkAccess(w, api.AccessRequest{Action: action, Resource: "d1"}))
			}
			requireAnswers := func(t *testing.T) {
				t.Helper()
				require.True(t, decide(api.ActionDeviceRead).Allowed)
				d := decide(api.ActionTelemetryRead)
				require.False(t, d.Allowed, "the deny stays in force")
				require.Equal(t, "b-deny", d.PolicyID)
				p := must[api.Policy](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
					return w.c.Policy.Get(ctx, "Org1MSP/b-deny")
				})
				require.Equal(t, "Org1MSP", p.Owner)
				page := must[api.PolicyPage](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
					return w.c.Policy.List(ctx, `{"owner":"Org1MSP","pageSize":2}`)
				})
				require.Equal(t, []string{"a-read", "b-deny"}, policyIDs(page.Policies))
			}
			requireAnswers(t)
			calls, err := w.roundTrips(org2Operator, checkAccess(w, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "d1"}))
			require.NoError(t, err)
			require.Equal(t, 1, calls["GetStateByPartialCompositeKey"], "without a set, the first layout's keys are read")

			tc.write(t, w)
			require.Contains(t, w.lastTx.required, chaincodePolicy, "creating the set needs the channel's endorsement")
			s, ok := w.storedSet("Org1MSP")
			require.True(t, ok)
			require.Equal(t, 1, s.Version)
			require.Contains(t, policyIDs(s.Policies), "b-deny")
			for k := range maps.Keys(w.state) {
				require.False(t, strings.HasPrefix(k, ckey(t, kindPolicy, "Org1MSP")), "first-layout key %q is left", readableKey(k))
			}
			requireAnswers(t)
			calls, err = w.roundTrips(org2Operator, checkAccess(w, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "d1"}))
			require.NoError(t, err)
			require.Zero(t, calls["GetStateByPartialCompositeKey"])

			for range 2 {
				_, err = w.putPolicy(org1Operator, grant("d-later", []string{"msp:Org2MSP"}, []string{api.ActionDeviceRead}, []string{"*"}))
				require.NoError(t, err)
			}
			require.Equal(t, []string{"Org1MSP"}, w.lastTx.required, "once the owner changed a policy in it, the set is its owner's alone to change")
			require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindPolicySet, "Org1MSP")))
			s, _ = w.storedSet("Org1MSP")
			require.Equal(t, 3, s.Version)
		})
	}
}

func policyIDs(ps []api.Policy) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// A policy set is the owner's claim about its own policies only: a set
// that this chaincode cannot have written refuses every decision on the
// owner's devices, naming the key, rather than be believed in part.
func TestPolicySetThatTheChaincodeDidNotWriteIsRefused(t *testing.T) {
	p := func(id, owner string) api.Policy {
		q := grant(id, []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"})
		q.Owner = owner
		return q
	}
	full := make([]api.Policy, policy.MaxPoliciesPerOrg+1)
	for i := range full {
		full[i] = p(fmt.Sprintf("p%02d", i), "Org1MSP")
	}
	for _, tc := range []struct {
		name, value string
		code        api.Code
		contains    string
	}{
		{"undecodable", `{"owner":`, api.CodeInconsistentRecord, "stored policy set pol-set~Org1MSP cannot be decoded"},
		{"another org's", jsonOf(t, storedPolicySet{Owner: "Org2MSP", Version: 1}), api.CodeInconsistentRecord, "says it is the policy set of Org2MSP"},
		{"holding another org's policy", jsonOf(t, storedPolicySet{Owner: "Org1MSP", Version: 1, Policies: []api.Policy{p("x", "Org2MSP")}}),
			api.CodeInconsistentRecord, `holds policy "x" of Org2MSP`},
		{"out of order", jsonOf(t, storedPolicySet{Owner: "Org1MSP", Version: 1, Policies: []api.Policy{p("b", "Org1MSP"), p("a", "Org1MSP")}}),
			api.CodeInconsistentRecord, `("a" after "b")`},
		{"twice the same policy", jsonOf(t, storedPolicySet{Owner: "Org1MSP", Version: 1, Policies: []api.Policy{p("a", "Org1MSP"), p("a", "Org1MSP")}}),
			api.CodeInconsistentRecord, `("a" after "a")`},
		{"version 0", jsonOf(t, storedPolicySet{Owner: "Org1MSP"}), api.CodeInconsistentRecord, "has version 0"},
		{"beyond the limit", jsonOf(t, storedPolicySet{Owner: "Org1MSP", Version: 1, Policies: full}),
			api.CodeResourceExhausted, "Org1MSP has more than 64 policies, the limit per org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.enroll(org1Operator, "d1", "fridge")
			w.rewrite(ckey(t, kindPolicySet, "Org1MSP"), []byte(tc.value))
			refused(t, w, org2Operator, tc.code, tc.contains, checkAccess(w, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "d1"}))
			refused(t, w, org1Operator, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Policy.Put(ctx, jsonArg(t, grant("new", []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"})))
			})
			// Another org's decisions on its own devices are not touched.
			w.enroll(org2Operator, "e1", "fridge")
			require.True(t, must[api.Decision](w, org2Operator, checkAccess(w, api.AccessRequest{Action: api.ActionDeviceRead, Resource: "e1"})).Allowed)
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// A set's listing pages in ID order; the bookmark is the next page's
// first ID, and a bookmark that is no ID is refused.
func TestPolicySetListsInPagesOfIDOrder(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge")
	for _, id := range []string{"e", "a", "d", "b", "c"} {
		_, err := w.putPolicy(org1Operator, grant(id, []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"}))
		require.NoError(t, err)
	}
	var got []string
	bookmark := ""
	for range 3 {
		page := must[api.PolicyPage](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.List(ctx, jsonArg(t, api.PolicyQuery{Owner: "Org1MSP", PageSize: 2, Bookmark: bookmark}))
		})
		require.LessOrEqual(t, len(page.Policies), 2)
		got = append(got, policyIDs(page.Policies)...)
		bookmark = page.Bookmark
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, got)
	require.Empty(t, bookmark)
	refused(t, w, org2Operator, api.CodeInvalidArgument, "is the bookmark from an earlier page", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.List(ctx, `{"owner":"Org1MSP","bookmark":"\u0000pol\u0000"}`)
	})
}
