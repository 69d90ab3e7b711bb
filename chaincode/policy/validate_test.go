package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

func validPolicy() api.Policy {
	from := txTime
	until := txTime.Add(24 * time.Hour)
	return api.Policy{
		ID:          "share-cold-chain",
		Description: "Org2 may read cold-chain telemetry during the day",
		Statements: []api.Statement{
			{Sid: "read", Effect: api.Allow, Principals: ss("msp:Org2MSP", "role:auditor@Org2MSP", "client:x509::CN=Jo, OU=client::CN=ca"), Actions: ss("telemetry:read", "device:*"), Resources: ss("group:cold-chain", "type:thermometer", "cold-*", "dev-1"), Condition: `request.time.getHours("+01:00") >= 8`},
			{Sid: "devices", Effect: api.Deny, Principals: ss("device:tag-1", "group:forklifts", "role:hub", "*"), Actions: ss("*"), Resources: ss("*")},
		},
		NotBefore: &from,
		NotAfter:  &until,
	}
}

func TestValidatePolicy(t *testing.T) {
	e := newEngine(t)
	require.NoError(t, e.Validate(validPolicy()))

	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cases := []struct {
		name   string
		mutate func(p *api.Policy)
		field  string
		reason string
	}{
		{"missing id", func(p *api.Policy) { p.ID = "" }, "id", "is required"},
		{"bad id", func(p *api.Policy) { p.ID = "a b" }, "id", "contains"},
		{"long description", func(p *api.Policy) { p.Description = strings.Repeat("x", MaxDescription+1) }, "description", "printable"},
		{"control character in description", func(p *api.Policy) { p.Description = "a\x00b" }, "description", "printable"},
		{"no statements", func(p *api.Policy) { p.Statements = nil }, "statements", "at least one"},
		{"too many statements", func(p *api.Policy) {
			p.Statements = make([]api.Statement, MaxStatements+1)
			for i := range p.Statements {
				p.Statements[i] = validPolicy().Statements[1]
				p.Statements[i].Sid = ""
			}
		}, "statements", "more than the limit of 32"},
		{"window reversed", func(p *api.Policy) { p.NotBefore, p.NotAfter = p.NotAfter, p.NotBefore }, "notAfter", "must be after notBefore"},
		{"empty window", func(p *api.Policy) { p.NotAfter = p.NotBefore }, "notAfter", "must be after notBefore"},
		{"duplicate sid", func(p *api.Policy) { p.Statements[1].Sid = "read" }, "statements[1].sid", "also the sid of statements[0]"},
		{"bad sid", func(p *api.Policy) { p.Statements[1].Sid = "no spaces" }, "statements[1].sid", "contains"},
		{"bad effect", func(p *api.Policy) { p.Statements[0].Effect = "Allow" }, "statements[0].effect", `"Allow" must be "allow" or "deny"`},
		{"no principals", func(p *api.Policy) { p.Statements[0].Principals = nil }, "statements[0].principals", "at least one"},
		{"too many principals", func(p *api.Policy) { p.Statements[0].Principals = many(MaxEntries+1, "*") }, "statements[0].principals", "more than the limit"},
		{"principal without kind", func(p *api.Policy) { p.Statements[0].Principals = ss("Org2MSP") }, "statements[0].principals[0]", "must be \"*\" or one of"},
		{"unknown principal kind", func(p *api.Policy) { p.Statements[0].Principals = ss("user:bob") }, "statements[0].principals[0]", "unknown principal kind"},
		{"empty msp", func(p *api.Policy) { p.Statements[0].Principals = ss("msp:") }, "statements[0].principals[0]", "msp: is required"},
		{"unknown role", func(p *api.Policy) { p.Statements[0].Principals = ss("role:hubs") }, "statements[0].principals[0]", `role "hubs" is not one of`},
		{"role with empty msp", func(p *api.Policy) { p.Statements[0].Principals = ss("role:hub@") }, "statements[0].principals[0]", "role MSP ID: is required"},
		{"empty client", func(p *api.Policy) { p.Statements[0].Principals = ss("client:") }, "statements[0].principals[0]", "client identity ID"},
		{"bad device principal", func(p *api.Policy) { p.Statements[0].Principals = ss("device:a/b") }, "statements[0].principals[0]", "contains"},
		{"no actions", func(p *api.Policy) { p.Statements[0].Actions = nil }, "statements[0].actions", "at least one"},
		{"unknown action", func(p *api.Policy) { p.Statements[0].Actions = ss("telemetry:delete") }, "statements[0].actions[0]", `unknown action "telemetry:delete"`},
		{"unknown area", func(p *api.Policy) { p.Statements[0].Actions = ss("ledger:*") }, "statements[0].actions[0]", "unknown action"},
		{"no resources", func(p *api.Policy) { p.Statements[0].Resources = nil }, "statements[0].resources", "at least one"},
		{"bad group resource", func(p *api.Policy) { p.Statements[0].Resources = ss("group:") }, "statements[0].resources[0]", "group: is required"},
		{"star inside resource", func(p *api.Policy) { p.Statements[0].Resources = ss("co*ld") }, "statements[0].resources[0]", "contains"},
		{"bare prefix star twice", func(p *api.Policy) { p.Statements[0].Resources = ss("**") }, "statements[0].resources[0]", "contains"},
		{"condition syntax", func(p *api.Policy) { p.Statements[0].Condition = "resource.id ==" }, "statements[0].condition", "Syntax error"},
		{"condition unknown variable", func(p *api.Policy) { p.Statements[0].Condition = "device.id == 'x'" }, "statements[0].condition", "undeclared reference to 'device'"},
		{"condition not bool", func(p *api.Policy) { p.Statements[0].Condition = "resource.id" }, "statements[0].condition", "yields dyn, not bool"},
		{"condition too long", func(p *api.Policy) { p.Statements[0].Condition = "true" + strings.Repeat(" ", 1100) }, "statements[0].condition", "more than the limit of 1024"},
		{"condition map literal", func(p *api.Policy) { p.Statements[0].Condition = `{"a": 1}.size() == 1` }, "statements[0].condition", "map literals are not allowed"},
		{"condition zone name", func(p *api.Policy) { p.Statements[0].Condition = `request.time.getHours("Europe/Berlin") > 8` }, "statements[0].condition", "fixed UTC offset"},
		{"condition certainly too costly", func(p *api.Policy) {
			l := "[" + strings.Repeat("1,", 29) + "1]"
			p.Statements[0].Condition = l + ".map(a, " + l + ".map(b, " + l + ".map(c, a + b + c))).size() > 0"
		}, "statements[0].condition", "costs at least"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validPolicy()
			tc.mutate(&p)
			err := e.Validate(p)
			require.Error(t, err)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "%T", err)
			require.Equal(t, tc.field, ve.Field, err.Error())
			require.Contains(t, ve.Reason, tc.reason)
			require.Contains(t, err.Error(), "invalid policy: "+tc.field+": ")
		})
	}
}

func TestValidationErrorWithoutField(t *testing.T) {
	require.Equal(t, "invalid policy: broken", (&ValidationError{Reason: "broken"}).Error())
}

func FuzzValidatePolicy(f *testing.F) {
	seed, err := json.Marshal(validPolicy())
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte(`{"id":"p","statements":[{"effect":"deny","principals":["*"],"actions":["*"],"resources":["*"],"condition":"request.context.a.b > 1"}]}`))
	f.Add([]byte(`{"id":"p","statements":[{"effect":"allow","principals":["group:g"],"actions":["device:*"],"resources":["type:t"],"condition":"principal.groups.exists(g, g in resource.groups)"}]}`))
	f.Add([]byte(`{"id":"","statements":[]}`))
	f.Add([]byte(`not json`))
	e := newEngine(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p api.Policy
		if json.Unmarshal(data, &p) != nil {
			return
		}
		if e.Validate(p) != nil {
			return
		}
		p.Owner = org1
		for _, r := range []Request{
			req(client(org2, api.RoleAuditor), api.ActionTelemetryRead),
			req(device(org2, "tag-1", "g"), api.ActionDeviceMessage),
			{Principal: client(org1, api.RoleHub), Action: api.ActionTelemetryWrite, Resource: coldRoom(), Time: txTime,
				Context: map[string]any{"a": map[string]any{"b": 2.0}, "n": nil, "l": []any{true, "x"}}},
		} {
			d := decide(t, e, r, []api.Policy{p})
			x := explain(t, e, r, []api.Policy{p})
			if d != x.Decision {
				t.Fatalf("Decide %+v != Explain %+v", d, x.Decision)
			}
			if d.Reason == "" {
				t.Fatal("decision without a reason")
			}
		}
	})
}
