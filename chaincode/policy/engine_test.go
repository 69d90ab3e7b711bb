package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

const (
	org1 = "Org1MSP"
	org2 = "Org2MSP"
)

var txTime = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

func newEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine()
	require.NoError(t, err)
	return e
}

// decide and explain run a request with no budget beyond each condition's
// limit, as a hub's local pre-check does.
func decide(t testing.TB, e *Engine, r Request, policies []api.Policy) api.Decision {
	t.Helper()
	d, err := e.Decide(r, policies, nil)
	require.NoError(t, err)
	return d
}

func explain(t testing.TB, e *Engine, r Request, policies []api.Policy) api.Explanation {
	t.Helper()
	x, err := e.Explain(r, policies, nil)
	require.NoError(t, err)
	return x
}

func client(msp, role string) api.Principal {
	return api.Principal{MSPID: msp, ClientID: "x509::CN=" + role + "@" + msp, Role: role}
}

func device(msp, id string, groups ...string) api.Principal {
	return api.Principal{MSPID: msp, Device: id, Groups: groups}
}

func coldRoom() Resource {
	return Resource{
		ID: "cold-1", Owner: org1, Type: "thermometer", Status: "active",
		Groups: []string{"warehouse-a", "cold-chain"}, Attributes: map[string]string{"zone": "a", "floor": "2"},
	}
}

func req(p api.Principal, action string) Request {
	return Request{Principal: p, Action: action, Resource: coldRoom(), Time: txTime}
}

func stmt(effect api.Effect, principals, actions, resources []string, cond string) api.Statement {
	return api.Statement{Effect: effect, Principals: principals, Actions: actions, Resources: resources, Condition: cond}
}

func pol(id, owner string, sts ...api.Statement) api.Policy {
	return api.Policy{ID: id, Owner: owner, Statements: sts}
}

func ss(s ...string) []string { return s }

func TestOwnerOrgRoleDefaults(t *testing.T) {
	e := newEngine(t)
	cases := []struct {
		role    string
		action  string
		allowed bool
	}{
		{api.RoleOperator, api.ActionDeviceManage, true},
		{api.RoleOperator, api.ActionDeviceRead, true},
		{api.RoleOperator, api.ActionDeviceCommand, true},
		{api.RoleOperator, api.ActionDeviceMessage, true},
		{api.RoleOperator, api.ActionPolicyManage, true},
		{api.RoleOperator, api.ActionRuleManage, true},
		{api.RoleOperator, api.ActionTelemetryRead, true},
		{api.RoleOperator, api.ActionTelemetryWrite, false},
		{api.RoleOperator, api.ActionCommandDeliver, false},
		{api.RoleHub, api.ActionTelemetryWrite, true},
		{api.RoleHub, api.ActionDeviceRead, true},
		{api.RoleHub, api.ActionCommandDeliver, true},
		{api.RoleHub, api.ActionDeviceMessage, true},
		{api.RoleHub, api.ActionTelemetryRead, false},
		{api.RoleHub, api.ActionDeviceManage, false},
		{api.RoleHub, api.ActionPolicyManage, false},
		{api.RoleAuditor, api.ActionDeviceRead, true},
		{api.RoleAuditor, api.ActionTelemetryRead, true},
		{api.RoleAuditor, api.ActionTelemetryWrite, false},
		{api.RoleAuditor, api.ActionDeviceManage, false},
		{"", api.ActionDeviceRead, false},
		{"admin", api.ActionDeviceRead, false},
	}
	for _, tc := range cases {
		t.Run(tc.role+"/"+tc.action, func(t *testing.T) {
			d := decide(t, e, req(client(org1, tc.role), tc.action), nil)
			require.Equal(t, tc.allowed, d.Allowed, d.Reason)
			if tc.allowed {
				require.Equal(t, api.Allow, d.Effect)
				require.Contains(t, d.Reason, "owner-org default")
			} else {
				require.Equal(t, api.Deny, d.Effect)
				require.Contains(t, d.Reason, "no statement allows "+tc.action)
			}
		})
	}
}

func TestRolesOfOtherOrgsGetNoDefaults(t *testing.T) {
	e := newEngine(t)
	for _, role := range []string{api.RoleOperator, api.RoleHub, api.RoleAuditor} {
		d := decide(t, e, req(client(org2, role), api.ActionDeviceRead), nil)
		require.False(t, d.Allowed)
		require.Equal(t, fmt.Sprintf("no statement allows device:read on cold-1 owned by Org1MSP for client x509::CN=%s@Org2MSP of Org2MSP with role %s; default deny outside the owner org", role, role), d.Reason)
	}
}

func TestResourceWithoutOwnerGetsNoDefaultsAndNoPolicies(t *testing.T) {
	e := newEngine(t)
	r := req(client(org1, api.RoleOperator), api.ActionDeviceRead)
	r.Resource.Owner = ""
	p := pol("p", "", stmt(api.Allow, ss("*"), ss("*"), ss("*"), ""))
	d := decide(t, e, r, []api.Policy{p})
	require.False(t, d.Allowed)
}

func TestDevicesMayMessageDevicesOfTheirOwnOrgByDefault(t *testing.T) {
	e := newEngine(t)
	require.True(t, decide(t, e, req(device(org1, "door-1"), api.ActionDeviceMessage), nil).Allowed)
	require.False(t, decide(t, e, req(device(org1, "door-1"), api.ActionDeviceRead), nil).Allowed)
	require.False(t, decide(t, e, req(device(org2, "door-9"), api.ActionDeviceMessage), nil).Allowed)
	// A device never gets a role default, even if a role is set on it.
	p := device(org1, "door-1")
	p.Role = api.RoleOperator
	require.False(t, decide(t, e, req(p, api.ActionDeviceManage), nil).Allowed)
}

func TestDenyOverridesAllowAndDefaults(t *testing.T) {
	e := newEngine(t)
	allow := pol("a-allow", org1, stmt(api.Allow, ss("msp:Org2MSP"), ss("telemetry:read"), ss("*"), ""))
	deny := pol("b-deny", org1, api.Statement{Sid: "no-zone-a", Effect: api.Deny, Principals: ss("*"), Actions: ss("telemetry:*"), Resources: ss("group:warehouse-a")})

	d := decide(t, e, req(client(org2, api.RoleAuditor), api.ActionTelemetryRead), []api.Policy{allow})
	require.True(t, d.Allowed)
	require.Equal(t, "a-allow", d.PolicyID)

	d = decide(t, e, req(client(org2, api.RoleAuditor), api.ActionTelemetryRead), []api.Policy{allow, deny})
	require.False(t, d.Allowed)
	require.Equal(t, api.Deny, d.Effect)
	require.Equal(t, "b-deny", d.PolicyID)
	require.Equal(t, "no-zone-a", d.Sid)
	require.Contains(t, d.Reason, "denied by policy b-deny statement no-zone-a")

	// The owner's own operator loses the default too.
	d = decide(t, e, req(client(org1, api.RoleOperator), api.ActionTelemetryRead), []api.Policy{deny})
	require.False(t, d.Allowed)
	require.Equal(t, "b-deny", d.PolicyID)

	// Deny in the same policy as the allow.
	both := pol("both", org1,
		stmt(api.Allow, ss("*"), ss("*"), ss("*"), ""),
		stmt(api.Deny, ss("role:hub"), ss("telemetry:write"), ss("cold-*"), ""))
	d = decide(t, e, req(client(org1, api.RoleHub), api.ActionTelemetryWrite), []api.Policy{both})
	require.False(t, d.Allowed)
	require.Equal(t, "denied by policy both statement #1: principal role:hub matched; action telemetry:write matched; resource cold-* matched", d.Reason)
}

func TestOtherOrgsPoliciesAreIgnored(t *testing.T) {
	e := newEngine(t)
	// Org2 tries to grant itself access to Org1's device, and to deny Org1's operator.
	grab := pol("grab", org2,
		stmt(api.Allow, ss("msp:Org2MSP"), ss("*"), ss("*"), ""),
		stmt(api.Deny, ss("*"), ss("*"), ss("*"), ""))
	d := decide(t, e, req(client(org2, api.RoleOperator), api.ActionTelemetryRead), []api.Policy{grab})
	require.False(t, d.Allowed)
	d = decide(t, e, req(client(org1, api.RoleOperator), api.ActionTelemetryRead), []api.Policy{grab})
	require.True(t, d.Allowed)

	x := explain(t, e, req(client(org2, api.RoleOperator), api.ActionTelemetryRead), []api.Policy{grab})
	require.Len(t, x.Statements, 2)
	for _, s := range x.Statements {
		require.False(t, s.Matched)
		require.Equal(t, "not the owner's policy: owned by Org2MSP, the resource is owned by Org1MSP", s.Why)
	}
}

func TestValidityWindow(t *testing.T) {
	e := newEngine(t)
	from := txTime.Add(-time.Hour)
	until := txTime.Add(time.Hour)
	grant := stmt(api.Allow, ss("msp:Org2MSP"), ss("telemetry:read"), ss("*"), "")
	cases := []struct {
		name      string
		notBefore *time.Time
		notAfter  *time.Time
		at        time.Time
		allowed   bool
		why       string
	}{
		{"inside", &from, &until, txTime, true, "condition"},
		{"at notBefore (inclusive)", &from, &until, from, true, ""},
		{"before notBefore", &from, &until, from.Add(-time.Nanosecond), false, "policy not yet in force at 2025-03-14T08:29:59.999999999Z: valid from 2025-03-14T08:30:00Z"},
		{"at notAfter (exclusive)", &from, &until, until, false, "policy no longer in force at 2025-03-14T10:30:00Z: valid until 2025-03-14T10:30:00Z"},
		{"open start", nil, &until, time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), true, ""},
		{"open end", &from, nil, time.Date(2990, 1, 1, 0, 0, 0, 0, time.UTC), true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pol("window", org1, grant)
			p.NotBefore, p.NotAfter = tc.notBefore, tc.notAfter
			r := req(client(org2, api.RoleAuditor), api.ActionTelemetryRead)
			r.Time = tc.at
			x := explain(t, e, r, []api.Policy{p})
			require.Equal(t, tc.allowed, x.Decision.Allowed, x.Decision.Reason)
			if !tc.allowed {
				require.Equal(t, tc.why, x.Statements[0].Why)
			}
		})
	}
}

func TestStatementMatching(t *testing.T) {
	e := newEngine(t)
	org2Auditor := client(org2, api.RoleAuditor)
	cases := []struct {
		name      string
		principal api.Principal
		action    string
		st        api.Statement
		matched   bool
	}{
		// actions
		{"action exact", org2Auditor, "telemetry:read", stmt(api.Allow, ss("*"), ss("telemetry:read"), ss("*"), ""), true},
		{"action other", org2Auditor, "telemetry:write", stmt(api.Allow, ss("*"), ss("telemetry:read"), ss("*"), ""), false},
		{"action area wildcard", org2Auditor, "telemetry:write", stmt(api.Allow, ss("*"), ss("telemetry:*"), ss("*"), ""), true},
		{"action other area", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("telemetry:*"), ss("*"), ""), false},
		{"action star", org2Auditor, "command:deliver", stmt(api.Allow, ss("*"), ss("*"), ss("*"), ""), true},
		{"action any of list", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("telemetry:read", "device:read"), ss("*"), ""), true},
		// resources
		{"resource exact", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("cold-1"), ""), true},
		{"resource other id", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("cold-2"), ""), false},
		{"resource prefix", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("cold-*"), ""), true},
		{"resource other prefix", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("hot-*"), ""), false},
		{"resource exact is not a prefix", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("cold-"), ""), false},
		{"resource group", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("group:cold-chain"), ""), true},
		{"resource other group", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("group:pharmacy"), ""), false},
		{"resource type", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("type:thermometer"), ""), true},
		{"resource other type", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("type:camera"), ""), false},
		// principals
		{"principal star", org2Auditor, "device:read", stmt(api.Allow, ss("*"), ss("*"), ss("*"), ""), true},
		{"principal msp", org2Auditor, "device:read", stmt(api.Allow, ss("msp:Org2MSP"), ss("*"), ss("*"), ""), true},
		{"principal other msp", org2Auditor, "device:read", stmt(api.Allow, ss("msp:Org3MSP"), ss("*"), ss("*"), ""), false},
		{"principal msp matches devices of that org", device(org2, "tag-7"), "device:message", stmt(api.Allow, ss("msp:Org2MSP"), ss("*"), ss("*"), ""), true},
		{"role in owner org", client(org1, api.RoleAuditor), "device:command", stmt(api.Allow, ss("role:auditor"), ss("*"), ss("*"), ""), true},
		{"role of another org needs @msp", org2Auditor, "device:read", stmt(api.Allow, ss("role:auditor"), ss("*"), ss("*"), ""), false},
		{"role@msp", org2Auditor, "device:read", stmt(api.Allow, ss("role:auditor@Org2MSP"), ss("*"), ss("*"), ""), true},
		{"role@msp other role", org2Auditor, "device:read", stmt(api.Allow, ss("role:hub@Org2MSP"), ss("*"), ss("*"), ""), false},
		{"role never matches a device", device(org1, "tag-7"), "device:read", stmt(api.Allow, ss("role:operator"), ss("*"), ss("*"), ""), false},
		{"client id", org2Auditor, "device:read", stmt(api.Allow, ss("client:x509::CN=auditor@Org2MSP"), ss("*"), ss("*"), ""), true},
		{"other client id", org2Auditor, "device:read", stmt(api.Allow, ss("client:x509::CN=someone"), ss("*"), ss("*"), ""), false},
		{"device principal", device(org2, "tag-7"), "device:message", stmt(api.Allow, ss("device:tag-7"), ss("*"), ss("*"), ""), true},
		{"other device", device(org2, "tag-8"), "device:message", stmt(api.Allow, ss("device:tag-7"), ss("*"), ss("*"), ""), false},
		{"device principal does not match a client", org2Auditor, "device:message", stmt(api.Allow, ss("device:tag-7"), ss("*"), ss("*"), ""), false},
		{"group principal", device(org2, "tag-7", "forklifts"), "device:message", stmt(api.Allow, ss("group:forklifts"), ss("*"), ss("*"), ""), true},
		{"group principal needs the group", device(org2, "tag-7", "pallets"), "device:message", stmt(api.Allow, ss("group:forklifts"), ss("*"), ss("*"), ""), false},
		{"group principal does not match a client", api.Principal{MSPID: org2, Groups: ss("forklifts")}, "device:message", stmt(api.Allow, ss("group:forklifts"), ss("*"), ss("*"), ""), false},
		{"any of several principals", org2Auditor, "device:read", stmt(api.Allow, ss("device:x", "msp:Org2MSP"), ss("*"), ss("*"), ""), true},
		{"malformed principal never matches", org2Auditor, "device:read", stmt(api.Allow, ss("Org2MSP"), ss("*"), ss("*"), ""), false},
		{"unknown principal kind never matches", org2Auditor, "device:read", stmt(api.Allow, ss("org:Org2MSP"), ss("*"), ss("*"), ""), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pol("p", org1, tc.st)
			x := explain(t, e, req(tc.principal, tc.action), []api.Policy{p})
			require.Len(t, x.Statements, 1)
			require.Equal(t, tc.matched, x.Statements[0].Matched, x.Statements[0].Why)
			require.Equal(t, tc.matched, x.Decision.Allowed, x.Decision.Reason)
		})
	}
}

func TestConditionOutcomesFailClosed(t *testing.T) {
	e := newEngine(t)
	huge := `principal.groups.all(a, principal.groups.all(b, principal.groups.all(c, a + b + c != "")))`
	cases := []struct {
		name    string
		cond    string
		context map[string]any
		holds   bool   // the condition's value for an allow statement
		why     string // substring of the statement's Why
	}{
		{"true", `resource.attributes.zone == "a" && request.time.getHours() == 9`, nil, true, "condition true"},
		{"false", `resource.attributes.zone == "b"`, nil, false, "condition false"},
		{"context value", `request.context.purpose == "audit" && request.context.level >= 2`, map[string]any{"purpose": "audit", "level": 2.0}, true, "condition true"},
		{"missing key is an error", `request.context.purpose == "audit"`, nil, false, "condition failed to evaluate (no such key: purpose)"},
		{"does not compile", `resource.nonsense(`, nil, false, "condition failed to evaluate (does not compile:"},
		{"not bool", `resource.id`, nil, false, "not bool"},
		{"cost exceeded", huge, nil, false, "cost limit exceeded"},
		{"unsupported context value", `true`, map[string]any{"x": struct{}{}}, false, "request context: unsupported value"},
	}
	p := client(org2, api.RoleAuditor)
	p.Groups = make([]string, 200)
	for i := range p.Groups {
		p.Groups[i] = fmt.Sprintf("g%03d", i)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req(p, api.ActionTelemetryRead)
			r.Context = tc.context
			allow := pol("p", org1, stmt(api.Allow, ss("*"), ss("*"), ss("*"), tc.cond))
			x := explain(t, e, r, []api.Policy{allow})
			require.Equal(t, tc.holds, x.Decision.Allowed, x.Decision.Reason)
			require.Contains(t, x.Statements[0].Why, tc.why)

			// The same condition on a deny statement, next to an allow-all:
			// an evaluation failure makes the deny apply.
			deny := pol("p", org1,
				stmt(api.Allow, ss("*"), ss("*"), ss("*"), ""),
				stmt(api.Deny, ss("*"), ss("*"), ss("*"), tc.cond))
			x = explain(t, e, r, []api.Policy{deny})
			failed := strings.Contains(x.Statements[1].Why, "failed to evaluate")
			require.Equal(t, tc.holds || failed, x.Statements[1].Matched, x.Statements[1].Why)
			require.Equal(t, !tc.holds && !failed, x.Decision.Allowed, x.Decision.Reason)
			if failed {
				require.Contains(t, x.Statements[1].Why, "a deny statement fails closed, so it applies")
			}
		})
	}
}

func TestInvalidEffectIsIgnored(t *testing.T) {
	e := newEngine(t)
	p := pol("p", org1, stmt("permit", ss("*"), ss("*"), ss("*"), ""))
	x := explain(t, e, req(client(org2, api.RoleHub), api.ActionDeviceRead), []api.Policy{p})
	require.False(t, x.Decision.Allowed)
	require.Equal(t, `effect "permit" is neither allow nor deny; statement ignored`, x.Statements[0].Why)
}

func TestExplainContents(t *testing.T) {
	e := newEngine(t)
	policies := []api.Policy{
		pol("zz-other", org2, stmt(api.Allow, ss("*"), ss("*"), ss("*"), "")),
		pol("aa-share", org1,
			api.Statement{Sid: "partners-read", Effect: api.Allow, Principals: ss("msp:Org2MSP"), Actions: ss("telemetry:read"), Resources: ss("group:cold-chain"), Condition: `request.time.getHours() >= 8`},
			api.Statement{Sid: "partners-no-write", Effect: api.Deny, Principals: ss("msp:Org2MSP"), Actions: ss("telemetry:write"), Resources: ss("*")},
			api.Statement{Sid: "hubs", Effect: api.Allow, Principals: ss("role:hub"), Actions: ss("*"), Resources: ss("*")},
		),
	}
	x := explain(t, e, req(client(org2, api.RoleAuditor), api.ActionTelemetryRead), policies)
	want := api.Explanation{
		Decision: api.Decision{
			Allowed: true, Effect: api.Allow, PolicyID: "aa-share", Sid: "partners-read",
			Reason: "allowed by policy aa-share statement partners-read: principal msp:Org2MSP matched; action telemetry:read matched; resource group:cold-chain matched; condition true",
		},
		Principal: client(org2, api.RoleAuditor),
		Owner:     org1,
		Default:   "",
		Statements: []api.StatementResult{
			{PolicyID: "aa-share", Sid: "partners-read", Index: 0, Effect: api.Allow, Matched: true, Why: "principal msp:Org2MSP matched; action telemetry:read matched; resource group:cold-chain matched; condition true"},
			{PolicyID: "aa-share", Sid: "partners-no-write", Index: 1, Effect: api.Deny, Matched: false, Why: "principal msp:Org2MSP matched; no action matched telemetry:read"},
			{PolicyID: "aa-share", Sid: "hubs", Index: 2, Effect: api.Allow, Matched: false, Why: "no principal matched client x509::CN=auditor@Org2MSP of Org2MSP with role auditor"},
			{PolicyID: "zz-other", Index: 0, Effect: api.Allow, Matched: false, Why: "not the owner's policy: owned by Org2MSP, the resource is owned by Org1MSP"},
		},
	}
	require.Equal(t, want, x)

	// With a default, Explain names it and the decision rests on it.
	x = explain(t, e, req(client(org1, api.RoleHub), api.ActionTelemetryWrite), policies)
	require.Equal(t, "role hub of the owner org may telemetry:write", x.Default)
	require.Equal(t, api.Decision{Allowed: true, Effect: api.Allow, Reason: "allowed by the owner-org default: role hub of the owner org may telemetry:write"}, x.Decision)
	require.True(t, x.Statements[2].Matched)

	// No match at all: the reason names action, resource and principal.
	x = explain(t, e, req(device(org2, "tag-1"), api.ActionDeviceMessage), nil)
	require.Equal(t, "no statement allows device:message on cold-1 owned by Org1MSP for device tag-1 of Org2MSP; default deny outside the owner org", x.Decision.Reason)
	require.NotNil(t, x.Statements)
}

func decisionCases() ([]Request, [][]api.Policy) {
	share := pol("share", org1,
		api.Statement{Sid: "read", Effect: api.Allow, Principals: ss("msp:Org2MSP"), Actions: ss("telemetry:read", "device:read"), Resources: ss("cold-*")},
		api.Statement{Sid: "night", Effect: api.Deny, Principals: ss("*"), Actions: ss("telemetry:*"), Resources: ss("*"), Condition: `request.time.getHours() < 6`},
		api.Statement{Sid: "broken", Effect: api.Deny, Principals: ss("device:tag-9"), Actions: ss("*"), Resources: ss("*"), Condition: `request.context.x > 1`},
		api.Statement{Sid: "devices", Effect: api.Allow, Principals: ss("group:forklifts"), Actions: ss("device:message"), Resources: ss("type:thermometer")},
	)
	other := pol("other", org2, stmt(api.Allow, ss("*"), ss("*"), ss("*"), ""))
	sets := [][]api.Policy{nil, {share}, {share, other}, {other}}
	principals := []api.Principal{
		client(org1, api.RoleOperator), client(org1, api.RoleHub), client(org1, api.RoleAuditor), client(org1, ""),
		client(org2, api.RoleOperator), client(org2, api.RoleAuditor),
		device(org1, "tag-1"), device(org2, "tag-2", "forklifts"), device(org2, "tag-9"),
	}
	actions := []string{api.ActionTelemetryRead, api.ActionTelemetryWrite, api.ActionDeviceRead, api.ActionDeviceManage, api.ActionDeviceMessage, api.ActionPolicyManage, api.ActionCommandDeliver}
	times := []time.Time{txTime, txTime.Add(-6 * time.Hour)}
	var reqs []Request
	for _, p := range principals {
		for _, a := range actions {
			for _, at := range times {
				r := req(p, a)
				r.Time = at
				reqs = append(reqs, r)
			}
		}
	}
	return reqs, sets
}

func TestDecideAgreesWithExplain(t *testing.T) {
	e := newEngine(t)
	reqs, sets := decisionCases()
	allowed, denied := 0, 0
	for _, set := range sets {
		for _, r := range reqs {
			d := decide(t, e, r, set)
			x := explain(t, e, r, set)
			require.Equal(t, x.Decision, d)
			err := e.Authorize(r, set, nil)
			if d.Allowed {
				allowed++
				require.NoError(t, err)
			} else {
				denied++
				require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
				require.Contains(t, err.Error(), d.Reason)
			}
		}
	}
	require.Positive(t, allowed)
	require.Positive(t, denied)
}

func TestDecisionsAreDeterministic(t *testing.T) {
	e := newEngine(t)
	attrs := make(map[string]string, 200)
	for i := range 200 {
		attrs[fmt.Sprintf("k%03d", i)] = fmt.Sprintf("v%d", i%7)
	}
	ctx := map[string]any{}
	for i := range 100 {
		ctx[fmt.Sprintf("c%03d", i)] = map[string]any{"n": float64(i), "tags": []any{"a", fmt.Sprint(i)}}
	}
	policies := []api.Policy{
		pol("order", org1,
			// Comprehensions over maps see keys in sorted order on every peer.
			api.Statement{Sid: "first-key", Effect: api.Allow, Principals: ss("*"), Actions: ss("*"), Resources: ss("*"),
				Condition: `resource.attributes.map(k, k)[0] == "k000" && request.context.map(k, k)[99] == "c099"`},
			api.Statement{Sid: "filter", Effect: api.Deny, Principals: ss("*"), Actions: ss("device:manage"), Resources: ss("*"),
				Condition: `resource.attributes.filter(k, resource.attributes[k] == "v3").map(k, k)[1] == "k010"`},
			api.Statement{Sid: "exists-one", Effect: api.Deny, Principals: ss("*"), Actions: ss("device:read"), Resources: ss("*"),
				Condition: `request.context.exists_one(k, request.context[k].n == 42.0)`},
		),
		pol("b", org1, stmt(api.Allow, ss("msp:Org2MSP"), ss("telemetry:read"), ss("*"), "")),
		pol("a", org1, stmt(api.Deny, ss("msp:Org2MSP"), ss("telemetry:read"), ss("*"), "")),
	}
	for _, action := range []string{api.ActionTelemetryRead, api.ActionDeviceManage, api.ActionDeviceRead, api.ActionRuleManage} {
		r := req(client(org2, api.RoleAuditor), action)
		r.Resource.Attributes = attrs
		r.Context = ctx
		first, err := json.Marshal(explain(t, e, r, policies))
		require.NoError(t, err)
		// Reverse the policy order too: the outcome must not depend on it.
		reversed := []api.Policy{policies[2], policies[1], policies[0]}
		for i := range 100 {
			set := policies
			if i%2 == 1 {
				set = reversed
			}
			again, err := json.Marshal(explain(t, e, r, set))
			require.NoError(t, err)
			require.Equal(t, string(first), string(again))
		}
		if action == api.ActionTelemetryRead {
			require.Contains(t, string(first), `"policyId":"a"`)
		}
		if action == api.ActionDeviceManage || action == api.ActionDeviceRead {
			require.Contains(t, string(first), `"allowed":false`)
		}
		if action == api.ActionRuleManage {
			require.Contains(t, string(first), `"sid":"first-key","index":0,"effect":"allow","matched":true`)
		}
	}
}

func TestEngineIsSafeForConcurrentUse(t *testing.T) {
	e := newEngine(t)
	reqs, sets := decisionCases()
	want := make([]api.Decision, len(reqs))
	for i, r := range reqs {
		want[i] = decide(t, e, r, sets[1])
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, r := range reqs {
				if got, err := e.Decide(r, sets[1], nil); err != nil || got != want[i] {
					errs <- fmt.Sprintf("request %d: %+v (%v) != %+v", i, got, err, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

func TestResourceOfAndDevicePrincipal(t *testing.T) {
	d := api.Device{ID: "cold-1", Owner: org1, Type: "thermometer", Status: api.StatusActive,
		Groups: ss("g"), Attributes: map[string]string{"zone": "a"}}
	require.Equal(t, Resource{ID: "cold-1", Owner: org1, Type: "thermometer", Status: "active", Groups: ss("g"), Attributes: map[string]string{"zone": "a"}}, ResourceOf(d))
	require.Equal(t, api.Principal{MSPID: org1, Device: "cold-1", Groups: ss("g"), Attrs: map[string]string{"zone": "a"}}, DevicePrincipal(d))

	e := newEngine(t)
	p := pol("p", org1, stmt(api.Allow, ss("group:g"), ss("device:message"), ss("*"), `principal.attrs.zone == resource.attributes.zone && resource.status == "active"`))
	other := d
	other.Owner = org2
	dec := decide(t, e, Request{Principal: DevicePrincipal(other), Action: api.ActionDeviceMessage, Resource: ResourceOf(d), Time: txTime}, []api.Policy{p})
	require.True(t, dec.Allowed, dec.Reason)
}

func BenchmarkDecide(b *testing.B) {
	e := newEngine(b)
	policies := []api.Policy{
		pol("share", org1,
			api.Statement{Sid: "read", Effect: api.Allow, Principals: ss("msp:Org2MSP"), Actions: ss("telemetry:read"), Resources: ss("cold-*"),
				Condition: `request.time.getHours() >= 8 && resource.attributes.zone == "a"`},
			api.Statement{Sid: "night", Effect: api.Deny, Principals: ss("*"), Actions: ss("telemetry:*"), Resources: ss("group:quarantine")},
		),
	}
	r := req(client(org2, api.RoleAuditor), api.ActionTelemetryRead)
	for b.Loop() {
		if !decide(b, e, r, policies).Allowed {
			b.Fatal("expected allow")
		}
	}
}
