package automation

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

const org1 = "Org1MSP"

func newEvaluator(t testing.TB) *Evaluator {
	t.Helper()
	e, err := NewEvaluator()
	require.NoError(t, err)
	return e
}

func num(n string, v float64, unit string) reading.Value {
	return reading.Value{Name: n, Number: &v, Unit: unit}
}

func str(n, v string) reading.Value { return reading.Value{Name: n, String: &v} }

func flag(n string, v bool) reading.Value { return reading.Value{Name: n, Bool: &v} }

func fridge() api.Device {
	return api.Device{
		ID: "fridge-7", Owner: org1, Type: "fridge", Status: api.StatusActive, Firmware: "1.4.2",
		Groups: []string{"pharmacy", "ward-3"}, Attributes: map[string]string{"zone": "icu", "vendor": "acme"},
	}
}

func input(values ...reading.Value) Input {
	return Input{
		Reading: reading.Payload{Device: "fridge-7", Seq: 42, Timestamp: time.Date(2025, 6, 1, 22, 15, 0, 0, time.UTC).UnixMilli(), Values: values},
		Device:  fridge(),
	}
}

func rule(cond string) api.Rule {
	return api.Rule{
		ID: "cold-chain-breach", Owner: org1, Condition: cond,
		Actions: []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "too warm"}},
	}
}

func TestConditionsOverReadingsAndDevices(t *testing.T) {
	e := newEvaluator(t)
	in := input(num("temperature", 9.5, "Cel"), num("spo2", 88, "%"), str("state", "open"), flag("door", true))
	cases := []struct {
		cond string
		want bool
	}{
		{`reading.values.temperature > 8.0`, true},
		{`reading.values.temperature > 8`, true}, // int literal against a double value
		{`reading.values.temperature > 10`, false},
		{`reading.values.temperature >= 9.5 && reading.values.temperature < 10u`, true},
		{`has(reading.values.heart_rate) && reading.values.heart_rate > 140`, false},
		{`!has(reading.values.heart_rate) || reading.values.heart_rate > 140`, true},
		{`device.attributes.zone == "icu" && reading.values.spo2 < 90.0`, true},
		{`device.attributes.zone == "ward" && reading.values.spo2 < 90.0`, false},
		{`reading.values.state == "open" && reading.values.door`, true},
		{`reading.units.temperature == "Cel" && !has(reading.units.state)`, true},
		{`reading.device == device.id && reading.seq == 42 && reading.seq > 41u`, true},
		{`reading.ts == 1748816100000 && reading.time.getHours() == 22 && reading.time.getHours("+02:00") == 0`, true},
		{`"pharmacy" in device.groups && device.type == "fridge" && device.status == "active" && device.owner == "Org1MSP" && device.firmware.startsWith("1.4")`, true},
		{`reading.values.exists(n, reading.values[n] == true)`, true},
		{`reading.values.map(n, n) == ["door", "spo2", "state", "temperature"]`, true},
		{`size(reading.values) == 4`, true},
	}
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			r := rule(tc.cond)
			require.NoError(t, e.Validate(r))
			got, err := e.Holds(r, in, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestConditionsThatCannotBeEvaluatedDoNotHold(t *testing.T) {
	e := newEvaluator(t)
	many := make([]reading.Value, reading.MaxValues)
	for i := range many {
		many[i] = num(fmt.Sprintf("v%02d", i), float64(i), "")
	}
	cases := []struct {
		name, cond, err string
		in              Input
	}{
		{"absent value", `reading.values.heart_rate > 140`, "rule cold-chain-breach: no such key: heart_rate", input(num("temperature", 3, ""))},
		{"string compared to number", `reading.values.state > 3`, "no such overload", input(str("state", "x"))},
		{"does not compile", `reading.values.temperature >`, "rule cold-chain-breach: condition does not compile:", input()},
		{"cost exceeded", `reading.values.all(a, reading.values.all(b, reading.values.all(c, a + b + c != "")))`, "cost limit exceeded", input(many...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Holds(rule(tc.cond), tc.in, nil)
			require.False(t, got)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestHugeSequenceNumbersStayComparable(t *testing.T) {
	e := newEvaluator(t)
	in := input()
	in.Reading.Seq = 1 << 63
	got, err := e.Holds(rule(`reading.seq > 5`), in, nil)
	require.NoError(t, err)
	require.True(t, got)
}

func TestRepeatedEvaluationIsDeterministic(t *testing.T) {
	e := newEvaluator(t)
	values := make([]reading.Value, 0, reading.MaxValues)
	for i := range reading.MaxValues {
		values = append(values, num(fmt.Sprintf("sensor-%02d", i), float64(i%5), "V"))
	}
	in := input(values...)
	in.Device.Attributes = map[string]string{}
	for i := range 100 {
		in.Device.Attributes[fmt.Sprintf("a%03d", i)] = fmt.Sprint(i)
	}
	r := rule(`reading.values.filter(n, reading.values[n] == 4.0).map(n, n)[0] == "sensor-04" && device.attributes.map(k, k)[7] == "a007"`)
	for range 200 {
		got, err := e.Holds(r, in, nil)
		require.NoError(t, err)
		require.True(t, got)
	}
}

func TestSelects(t *testing.T) {
	d := fridge()
	cases := []struct {
		name   string
		mutate func(r *api.Rule)
		want   bool
	}{
		{"empty selector matches every device of the owner", func(*api.Rule) {}, true},
		{"other owner", func(r *api.Rule) { r.Owner = "Org2MSP" }, false},
		{"no owner", func(r *api.Rule) { r.Owner = "" }, false},
		{"disabled", func(r *api.Rule) { r.Disabled = true }, false},
		{"device id", func(r *api.Rule) { r.Selector.Devices = []string{"x", "fridge-7"} }, true},
		{"other device id", func(r *api.Rule) { r.Selector.Devices = []string{"fridge-8"} }, false},
		{"group", func(r *api.Rule) { r.Selector.Groups = []string{"ward-3"} }, true},
		{"other group", func(r *api.Rule) { r.Selector.Groups = []string{"ward-4"} }, false},
		{"type", func(r *api.Rule) { r.Selector.Types = []string{"fridge"} }, true},
		{"other type", func(r *api.Rule) { r.Selector.Types = []string{"freezer"} }, false},
		{"any of id, group, type", func(r *api.Rule) {
			r.Selector = api.DeviceSelector{Devices: []string{"x"}, Groups: []string{"y"}, Types: []string{"fridge"}}
		}, true},
		{"disabled even when selected", func(r *api.Rule) { r.Selector.Devices = []string{"fridge-7"}; r.Disabled = true }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rule("true")
			tc.mutate(&r)
			require.Equal(t, tc.want, Selects(r, d))
		})
	}
}

func validRule() api.Rule {
	return api.Rule{
		ID: "icu-desaturation", Description: "Quarantine ICU monitors reporting low SpO2",
		Selector:  api.DeviceSelector{Devices: []string{"mon-1"}, Groups: []string{"icu"}, Types: []string{"monitor"}},
		Condition: `device.attributes.zone == "icu" && reading.values.spo2 < 90.0`,
		Actions: []api.RuleAction{
			{Type: api.ActionTypeAlert, Severity: api.SeverityWarning, Message: "SpO2 below 90%"},
			{Type: api.ActionTypeSetStatus, Status: api.StatusSuspended, Message: "quarantine"},
			{Type: api.ActionTypeCommand, Command: "beep", Params: json.RawMessage(`{"times": 3}`), Target: "group:icu-nurses", TTL: 600},
			{Type: api.ActionTypeCommand, Command: "reboot", Target: "device:mon-1"},
			{Type: api.ActionTypeCommand, Command: "calibrate"},
		},
		CooldownSeconds: 300,
	}
}

func TestValidateRule(t *testing.T) {
	e := newEvaluator(t)
	require.NoError(t, e.Validate(validRule()))

	cases := []struct {
		name   string
		mutate func(r *api.Rule)
		field  string
		reason string
	}{
		{"missing id", func(r *api.Rule) { r.ID = "" }, "id", "is required"},
		{"bad id", func(r *api.Rule) { r.ID = "a/b" }, "id", "contains"},
		{"long description", func(r *api.Rule) { r.Description = strings.Repeat("d", MaxDescription+1) }, "description", "printable"},
		{"bad selector device", func(r *api.Rule) { r.Selector.Devices = []string{"ok", "not ok"} }, "selector.devices[1]", "contains"},
		{"bad selector group", func(r *api.Rule) { r.Selector.Groups = []string{""} }, "selector.groups[0]", "is required"},
		{"too many selector types", func(r *api.Rule) { r.Selector.Types = make([]string, MaxSelectorItems+1) }, "selector.types", "more than the limit"},
		{"missing condition", func(r *api.Rule) { r.Condition = " " }, "condition", "is required"},
		{"condition syntax", func(r *api.Rule) { r.Condition = "reading.values.x >" }, "condition", "Syntax error"},
		{"condition not bool", func(r *api.Rule) { r.Condition = "reading.values.x" }, "condition", "not bool"},
		{"condition unknown variable", func(r *api.Rule) { r.Condition = "principal.role == 'hub'" }, "condition", "undeclared reference"},
		{"condition map literal", func(r *api.Rule) { r.Condition = `{"x": 1}.exists(k, k == "x")` }, "condition", "map literals"},
		{"no actions", func(r *api.Rule) { r.Actions = nil }, "actions", "at least one"},
		{"too many actions", func(r *api.Rule) {
			r.Actions = nil
			for range MaxActions + 1 {
				r.Actions = append(r.Actions, api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo})
			}
		}, "actions", "more than the limit of 8"},
		{"unknown action type", func(r *api.Rule) { r.Actions[0].Type = "email" }, "actions[0].type", `"email" must be one of alert, set_status, command`},
		{"bad severity", func(r *api.Rule) { r.Actions[0].Severity = "fatal" }, "actions[0].severity", "must be one of info, warning, critical"},
		{"alert message too long", func(r *api.Rule) { r.Actions[0].Message = strings.Repeat("m", MaxMessage+1) }, "actions[0].message", "printable"},
		{"alert with a status", func(r *api.Rule) { r.Actions[0].Status = api.StatusSuspended }, "actions[0].status", "is not used by a alert action"},
		{"status not settable", func(r *api.Rule) { r.Actions[1].Status = api.StatusDecommissioned }, "actions[1].status", "must be one of suspended, active, revoked"},
		{"status missing", func(r *api.Rule) { r.Actions[1].Status = "" }, "actions[1].status", "must be one of"},
		{"status message with control chars", func(r *api.Rule) { r.Actions[1].Message = "a\nb" }, "actions[1].message", "printable"},
		{"set_status with a command", func(r *api.Rule) { r.Actions[1].Command = "x" }, "actions[1].command", "is not used by a set_status action"},
		{"command without name", func(r *api.Rule) { r.Actions[2].Command = "" }, "actions[2].command", "is required"},
		{"command name too long", func(r *api.Rule) { r.Actions[2].Command = strings.Repeat("c", 65) }, "actions[2].command", "1-64 characters"},
		{"command name with spaces", func(r *api.Rule) { r.Actions[2].Command = "do it" }, "actions[2].command", "contains"},
		{"params not an object", func(r *api.Rule) { r.Actions[2].Params = json.RawMessage(`[1,2]`) }, "actions[2].params", "must be a JSON object"},
		{"params null", func(r *api.Rule) { r.Actions[2].Params = json.RawMessage(`null`) }, "actions[2].params", "must be a JSON object"},
		{"params not JSON", func(r *api.Rule) { r.Actions[2].Params = json.RawMessage(`{oops`) }, "actions[2].params", "must be a JSON object"},
		{"params too large", func(r *api.Rule) {
			r.Actions[2].Params = json.RawMessage(`{"x":"` + strings.Repeat("p", MaxParamsBytes) + `"}`)
		}, "actions[2].params", "more than the limit"},
		{"bad target kind", func(r *api.Rule) { r.Actions[2].Target = "org:Org2MSP" }, "actions[2].target", "must be empty"},
		{"target without kind", func(r *api.Rule) { r.Actions[2].Target = "mon-2" }, "actions[2].target", "must be empty"},
		{"bad target id", func(r *api.Rule) { r.Actions[2].Target = "device:" }, "actions[2].target", "is required"},
		{"negative ttl", func(r *api.Rule) { r.Actions[2].TTL = -1 }, "actions[2].ttlSeconds", "between 0"},
		{"ttl too long", func(r *api.Rule) { r.Actions[2].TTL = MaxCommandTTL + 1 }, "actions[2].ttlSeconds", "between 0"},
		{"command with severity", func(r *api.Rule) { r.Actions[2].Severity = api.SeverityInfo }, "actions[2].severity", "is not used by a command action"},
		{"negative cooldown", func(r *api.Rule) { r.CooldownSeconds = -1 }, "cooldownSeconds", "between 0"},
		{"cooldown too long", func(r *api.Rule) { r.CooldownSeconds = MaxCooldown + 1 }, "cooldownSeconds", "between 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := validRule()
			tc.mutate(&r)
			err := e.Validate(r)
			require.Error(t, err)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "%T", err)
			require.Equal(t, tc.field, ve.Field, err.Error())
			require.Contains(t, ve.Reason, tc.reason)
			require.Contains(t, err.Error(), "invalid rule: "+tc.field+": ")
		})
	}
	require.Equal(t, "invalid rule: broken", (&ValidationError{Reason: "broken"}).Error())
}

func FuzzRuleCondition(f *testing.F) {
	for _, seed := range []string{
		`reading.values.temperature > 8.0`,
		`has(reading.values.heart_rate) && reading.values.heart_rate > 140`,
		`device.attributes.zone == "icu" && reading.values.spo2 < 90.0`,
		`reading.values.exists(n, reading.values[n] == true)`,
		`reading.time.getDayOfWeek("+05:30") == 1 || reading.seq % 2u == 0u`,
		`size(device.groups) > 0 && device.groups.all(g, g.matches("^[a-z]+$"))`,
		`reading.values.temperature >`,
	} {
		f.Add(seed, 4.5, "open", true)
	}
	e := newEvaluator(f)
	f.Fuzz(func(t *testing.T, cond string, temperature float64, state string, door bool) {
		r := rule(cond)
		valid := e.Validate(r) == nil
		in := input(num("temperature", temperature, "Cel"), str("state", state), flag("door", door))
		holds, err := e.Holds(r, in, nil)
		if err != nil && holds {
			t.Fatalf("condition %q both failed (%v) and held", cond, err)
		}
		if !valid && err == nil {
			t.Fatalf("condition %q was refused by Validate but evaluated", cond)
		}
		// Evaluating again gives the same answer.
		again, err2 := e.Holds(r, in, nil)
		if again != holds || (err == nil) != (err2 == nil) {
			t.Fatalf("condition %q: %v/%v then %v/%v", cond, holds, err, again, err2)
		}
	})
}

func BenchmarkHolds(b *testing.B) {
	e := newEvaluator(b)
	r := rule(`device.attributes.zone == "icu" && has(reading.values.spo2) && reading.values.spo2 < 90.0`)
	in := input(num("temperature", 9.5, "Cel"), num("spo2", 88, "%"), str("state", "open"))
	for b.Loop() {
		ok, err := e.Holds(r, in, nil)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
