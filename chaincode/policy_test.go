package chaincode

import (
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func grant(id string, principals, actions, resources []string) api.Policy {
	return api.Policy{ID: id, Statements: []api.Statement{{Sid: "s1", Effect: api.Allow, Principals: principals, Actions: actions, Resources: resources}}}
}

func (w *world) putPolicy(c caller, p api.Policy) (api.Policy, error) {
	out, err := w.invoke(c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Put(ctx, jsonArg(w.t, p))
	})
	if err != nil {
		return api.Policy{}, err
	}
	var got api.Policy
	require.NoError(w.t, jsonUnmarshal(out, &got))
	return got, nil
}

func TestPutPolicySetsOwnerAndVersionAndRestrictsEndorsement(t *testing.T) {
	w := newWorld(t)
	p := grant("hub2-writes", []string{"msp:Org2MSP"}, []string{api.ActionTelemetryWrite}, []string{"*"})
	p.Owner, p.Version = "Org2MSP", 41 // ignored: set by the chaincode
	got, err := w.putPolicy(org1Operator, p)
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", got.Owner)
	require.Equal(t, 1, got.Version)
	require.Equal(t, w.now, got.UpdatedAt)
	require.Equal(t, api.EventPolicyChanged, w.lastEvent.Type)
	require.Equal(t, "hub2-writes", w.lastEvent.PolicyID)
	k := ckey(t, kindPolicy, "Org1MSP", "hub2-writes")
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindPolicySet, "Org1MSP")), "the org's policy set holds its policies")

	got, err = w.putPolicy(org1Operator, p)
	require.NoError(t, err)
	require.Equal(t, 2, got.Version)

	for _, ref := range []string{"hub2-writes", "Org1MSP/hub2-writes"} {
		g := must[api.Policy](w, org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Policy.Get(ctx, ref) })
		require.Equal(t, 2, g.Version)
	}
	// Policies are readable by every member: Org2 reads Org1's grant by its full name.
	g := must[api.Policy](w, org2Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Get(ctx, "Org1MSP/hub2-writes")
	})
	require.Equal(t, "Org1MSP", g.Owner)

	page := must[api.PolicyPage](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.List(ctx, `{}`)
	})
	require.Len(t, page.Policies, 1)
	page = must[api.PolicyPage](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.List(ctx, `{"owner":"Org2MSP"}`)
	})
	require.Empty(t, page.Policies)

	_, err = w.invoke(org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return "", w.c.Policy.Delete(ctx, "hub2-writes")
	})
	require.NoError(t, err)
	require.NotContains(t, w.state, k)
	require.Equal(t, api.EventPolicyChanged, w.lastEvent.Type)
	refused(t, w, org1Operator, api.CodeNotFound, "does not exist", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Get(ctx, "hub2-writes")
	})
}

func TestPolicyTransactionsRefuseBadInputAndCallers(t *testing.T) {
	w := newWorld(t)
	_, err := w.putPolicy(org1Operator, grant("p1", []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"}))
	require.NoError(t, err)
	valid := jsonArg(t, grant("p2", []string{"*"}, []string{api.ActionDeviceRead}, []string{"*"}))
	cases := []struct {
		name     string
		who      caller
		tx       txFunc
		code     api.Code
		contains string
	}{
		{"bad JSON", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Policy.Put(ctx, "[") }, api.CodeInvalidArgument, "policy is not valid JSON"},
		{"no statements", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.Put(ctx, `{"id":"p3","statements":[]}`)
		}, api.CodeInvalidArgument, "statements"},
		{"bad effect", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.Put(ctx, `{"id":"p3","statements":[{"effect":"maybe","principals":["*"],"actions":["*"],"resources":["*"]}]}`)
		}, api.CodeInvalidArgument, "effect"},
		{"bad condition", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.Put(ctx, `{"id":"p3","statements":[{"effect":"allow","principals":["*"],"actions":["*"],"resources":["*"],"condition":"1 +"}]}`)
		}, api.CodeInvalidArgument, "condition"},
		{"hub may not manage policies", org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Policy.Put(ctx, valid) }, api.CodeAccessDenied, "policy:manage"},
		{"other org may not delete", org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return "", w.c.Policy.Delete(ctx, "Org1MSP/p1")
		}, api.CodeAccessDenied, "policy:manage"},
		{"delete missing", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return "", w.c.Policy.Delete(ctx, "nope")
		}, api.CodeNotFound, "does not exist"},
		{"bad ref owner", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.Get(ctx, "bad msp/p1")
		}, api.CodeInvalidArgument, "policy owner"},
		{"bad ref id", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.Get(ctx, "Org1MSP/")
		}, api.CodeInvalidArgument, "policy id"},
		{"list bad owner", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.List(ctx, `{"owner":"a b"}`)
		}, api.CodeInvalidArgument, "owner"},
		{"list bad page", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.List(ctx, `{"pageSize":1000}`)
		}, api.CodeInvalidArgument, "pageSize"},
		{"list bad JSON", org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.List(ctx, `{"x":1}`)
		}, api.CodeInvalidArgument, "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { refused(t, w, tc.who, tc.code, tc.contains, tc.tx) })
	}
}

func TestCrossOrgGrantAllowsOnlyInsideItsWindowAndDenyOverrides(t *testing.T) {
	w := newWorld(t)
	dev := w.enroll(org1Operator, "d1", "fridge")
	check := func(c caller, action string) api.Decision {
		return must[api.Decision](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.CheckAccess(ctx, jsonArg(t, api.AccessRequest{Action: action, Resource: "d1"}))
		})
	}
	require.False(t, check(org2Hub, api.ActionTelemetryWrite).Allowed)
	refused(t, w, org2Hub, api.CodeAccessDenied, "reading 0 (device d1 seq 1)", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{dev.reading(t, 3)}}))
	})

	past := w.now.Add(-time.Hour)
	longAgo := w.now.Add(-48 * time.Hour)
	expired := grant("org2-hubs", []string{"role:hub@Org2MSP"}, []string{api.ActionTelemetryWrite}, []string{"*"})
	expired.NotBefore, expired.NotAfter = &longAgo, &past
	_, err := w.putPolicy(org1Operator, expired)
	require.NoError(t, err)
	require.False(t, check(org2Hub, api.ActionTelemetryWrite).Allowed, "a grant whose window ended does not apply")
	refused(t, w, org2Hub, api.CodeAccessDenied, "telemetry:write", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{dev.reading(t, 3)}}))
	})

	future := w.now.Add(time.Hour)
	current := expired
	current.NotAfter = &future
	_, err = w.putPolicy(org1Operator, current)
	require.NoError(t, err)
	require.True(t, check(org2Hub, api.ActionTelemetryWrite).Allowed)
	must[api.BatchReceipt](w, org2Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{dev.reading(t, 3)}}))
	})

	deny := api.Policy{ID: "no-writes", Statements: []api.Statement{{Sid: "stop", Effect: api.Deny, Principals: []string{"*"}, Actions: []string{api.ActionTelemetryWrite}, Resources: []string{"d1"}}}}
	_, err = w.putPolicy(org1Operator, deny)
	require.NoError(t, err)
	d := check(org1Hub, api.ActionTelemetryWrite)
	require.False(t, d.Allowed, "an explicit deny overrides the owner's hub default")
	require.Equal(t, "no-writes", d.PolicyID)

	x := must[api.Explanation](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Explain(ctx, jsonArg(t, api.AccessRequest{Action: api.ActionTelemetryWrite, Resource: "d1"}))
	})
	require.Equal(t, d, x.Decision)
	require.Equal(t, "Org1MSP", x.Owner)
	require.Equal(t, "Org1MSP", x.Principal.MSPID)
	require.NotEmpty(t, x.Statements)
	require.Nil(t, w.lastEvent)
}

func TestCheckAccessForDevicePrincipalAndBadRequests(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "a", "sensor", "line")
	w.enroll(org1Operator, "b", "actuator", "line")
	d := must[api.Decision](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.CheckAccess(ctx, `{"device":"a","action":"device:message","resource":"b"}`)
	})
	x := must[api.Explanation](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Policy.Explain(ctx, `{"device":"a","action":"device:message","resource":"b"}`)
	})
	require.Equal(t, "a", x.Principal.Device)
	require.Equal(t, d, x.Decision)

	for _, tc := range []struct {
		arg      string
		code     api.Code
		contains string
	}{
		{`{"resource":"a"}`, api.CodeInvalidArgument, "action is required"},
		{`{"action":"` + string(make([]byte, 0)) + `x` + `","resource":""}`, api.CodeInvalidArgument, "resource"},
		{`{"action":"device:read","resource":"zzz"}`, api.CodeNotFound, "not enrolled"},
		{`{"device":"zzz","action":"device:read","resource":"a"}`, api.CodeNotFound, "not enrolled"},
		{`{"action":"device:read","resource":"a","extra":1}`, api.CodeInvalidArgument, "unknown field"},
		{`{"action":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","resource":"a"}`, api.CodeInvalidArgument, "longer than"},
	} {
		refused(t, w, org1Hub, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.CheckAccess(ctx, tc.arg)
		})
		refused(t, w, org1Hub, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Policy.Explain(ctx, tc.arg)
		})
	}
}
