// Package automation is the rule engine of iotledger: it validates automation
// rules, selects the rules that apply to a device, and evaluates a rule's CEL
// condition over a reading. Like the policy engine it is pure Go plus CEL, so
// the chaincode evaluates rules inside the telemetry transaction (every
// endorser agrees) and a hub may run the same code.
//
// Conditions see two variables:
//
//	reading: device (string), seq (int), ts (int, Unix ms), time (timestamp of ts),
//	         values (map name → double | string | bool), units (map name → unit)
//	device:  id, type, owner, status, firmware (strings), groups (list),
//	         attributes (map string → string)
//
// Numbers compare across int and double, so reading.values.temperature > 8
// and > 8.0 both work. Reading an absent value is an evaluation error; guard
// optional values with has(reading.values.name).
//
// Validate refuses a condition whose worst-case cost over the largest valid
// reading and device exceeds the per-condition limit (condition.MaxCost);
// Holds charges every evaluation to the transaction's condition.Budget.
package automation

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Limits on a rule.
const (
	MaxActions        = 8
	MaxSelectorItems  = 64
	MaxDescription    = 512
	MaxMessage        = 256
	MaxParamsBytes    = 4096
	MaxCooldown       = 365 * 24 * 3600 // seconds
	MaxCommandTTL     = 30 * 24 * 3600  // seconds
	maxCommandNameLen = 64
)

// MaxRulesPerOrg is the most rules an org may have, disabled ones included.
// One reading against a full rule set at the per-condition limit costs
// MaxRulesPerOrg × condition.MaxCost (see docs/decisions.md, "Bounded work
// per transaction").
const MaxRulesPerOrg = 64

// ValidationError says which field of a rule is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid rule: " + e.Reason
	}
	return fmt.Sprintf("invalid rule: %s: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// settableStatuses are the device states a rule may move a device to.
// Decommissioning is a physical act and stays with people.
var settableStatuses = []api.DeviceStatus{api.StatusSuspended, api.StatusActive, api.StatusRevoked}

var severities = []string{api.SeverityInfo, api.SeverityWarning, api.SeverityCritical}

// Evaluator validates rules and evaluates their conditions. It holds the CEL
// environment and a bounded cache of compiled conditions, and is safe for
// concurrent use.
type Evaluator struct {
	conditions *condition.Compiler
}

// NewEvaluator builds an evaluator.
func NewEvaluator() (*Evaluator, error) {
	c, err := condition.NewCompiler(variables()...)
	if err != nil {
		return nil, err
	}
	return &Evaluator{conditions: c}, nil
}

// Validate checks a rule before it is stored. Owner, Version and UpdatedAt are
// set by the chaincode and not checked. The error is a *ValidationError.
func (e *Evaluator) Validate(r api.Rule) error {
	if err := checkID("id", r.ID); err != nil {
		return err
	}
	if utf8.RuneCountInString(r.Description) > MaxDescription || !printable(r.Description) {
		return invalid("description", "must be at most %d printable characters", MaxDescription)
	}
	sel := []struct {
		name  string
		items []string
	}{{"selector.devices", r.Selector.Devices}, {"selector.groups", r.Selector.Groups}, {"selector.types", r.Selector.Types}}
	for _, s := range sel {
		if len(s.items) > MaxSelectorItems {
			return invalid(s.name, "%d entries, more than the limit of %d", len(s.items), MaxSelectorItems)
		}
		for i, item := range s.items {
			if err := checkID(fmt.Sprintf("%s[%d]", s.name, i), item); err != nil {
				return err
			}
		}
	}
	if strings.TrimSpace(r.Condition) == "" {
		return invalid("condition", "is required (use \"true\" to fire on every reading)")
	}
	if _, err := e.conditions.Check(r.Condition); err != nil {
		return invalid("condition", "%s", err.Error())
	}
	if len(r.Actions) == 0 {
		return invalid("actions", "at least one action is required")
	}
	if len(r.Actions) > MaxActions {
		return invalid("actions", "%d actions, more than the limit of %d", len(r.Actions), MaxActions)
	}
	for i, a := range r.Actions {
		if err := validateAction(fmt.Sprintf("actions[%d]", i), a); err != nil {
			return err
		}
	}
	if r.CooldownSeconds < 0 || r.CooldownSeconds > MaxCooldown {
		return invalid("cooldownSeconds", "%d must be between 0 and %d", r.CooldownSeconds, MaxCooldown)
	}
	return nil
}

func validateAction(field string, a api.RuleAction) *ValidationError {
	// unused reports the first field set that the action type does not use.
	unused := func(allowed ...string) *ValidationError {
		set := []struct {
			name string
			on   bool
		}{
			{"severity", a.Severity != ""}, {"message", a.Message != ""}, {"status", a.Status != ""},
			{"command", a.Command != ""}, {"params", len(a.Params) > 0}, {"target", a.Target != ""},
			{"ttlSeconds", a.TTL != 0},
		}
		for _, f := range set {
			if f.on && !slices.Contains(allowed, f.name) {
				return invalid(field+"."+f.name, "is not used by a %s action", a.Type)
			}
		}
		return nil
	}
	switch a.Type {
	case api.ActionTypeAlert:
		if !slices.Contains(severities, a.Severity) {
			return invalid(field+".severity", "%q must be one of %s", a.Severity, strings.Join(severities, ", "))
		}
		if utf8.RuneCountInString(a.Message) > MaxMessage || !printable(a.Message) {
			return invalid(field+".message", "must be at most %d printable characters", MaxMessage)
		}
		return unused("severity", "message")
	case api.ActionTypeSetStatus:
		if !slices.Contains(settableStatuses, a.Status) {
			return invalid(field+".status", "%q must be one of suspended, active, revoked", a.Status)
		}
		if utf8.RuneCountInString(a.Message) > MaxMessage || !printable(a.Message) {
			return invalid(field+".message", "must be at most %d printable characters", MaxMessage)
		}
		return unused("status", "message")
	case api.ActionTypeCommand:
		if a.Command == "" || len(a.Command) > maxCommandNameLen {
			return invalid(field+".command", "a command name of 1-%d characters is required", maxCommandNameLen)
		}
		if err := checkID(field+".command", a.Command); err != nil {
			return err
		}
		if len(a.Params) > 0 {
			if len(a.Params) > MaxParamsBytes {
				return invalid(field+".params", "%d bytes, more than the limit of %d", len(a.Params), MaxParamsBytes)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(a.Params, &obj); err != nil || obj == nil {
				return invalid(field+".params", "must be a JSON object")
			}
		}
		if err := checkTarget(field+".target", a.Target); err != nil {
			return err
		}
		if a.TTL < 0 || a.TTL > MaxCommandTTL {
			return invalid(field+".ttlSeconds", "%d must be between 0 (default) and %d", a.TTL, MaxCommandTTL)
		}
		return unused("command", "params", "target", "ttlSeconds")
	default:
		return invalid(field+".type", "%q must be one of %s, %s, %s", a.Type, api.ActionTypeAlert, api.ActionTypeSetStatus, api.ActionTypeCommand)
	}
}

// checkTarget accepts "" (the device that sent the reading), "device:<id>"
// and "group:<g>".
func checkTarget(field, t string) *ValidationError {
	if t == "" {
		return nil
	}
	kind, val, ok := strings.Cut(t, ":")
	if !ok || (kind != "device" && kind != "group") {
		return invalid(field, "%q must be empty (the reading's device), device:<id> or group:<group>", t)
	}
	return checkID(field, val)
}

// Selects reports whether a rule applies to a device: the rule is enabled,
// belongs to the device's owner org, and its selector matches (an empty
// selector matches every device of the owner; otherwise any listed id, group
// or type matches).
func Selects(r api.Rule, d api.Device) bool {
	if r.Disabled || r.Owner == "" || r.Owner != d.Owner {
		return false
	}
	s := r.Selector
	if len(s.Devices) == 0 && len(s.Groups) == 0 && len(s.Types) == 0 {
		return true
	}
	if slices.Contains(s.Devices, d.ID) || (d.Type != "" && slices.Contains(s.Types, d.Type)) {
		return true
	}
	for _, g := range d.Groups {
		if slices.Contains(s.Groups, g) {
			return true
		}
	}
	return false
}

// Input is what a rule condition is evaluated over.
type Input struct {
	Reading reading.Payload
	Device  api.Device
}

// Holds evaluates the rule's condition over a reading, charging budget (nil:
// no budget beyond the condition's limit). An error matching
// condition.ErrBudgetExhausted (errors.Is) means the budget could not pay
// for the evaluation: there is no result, and the caller must not carry on
// as if the rule did not fire. Any other error (the condition does not
// compile, fails to evaluate, exceeds the cost limit or is not boolean)
// means the rule does not fire; callers treat it as false.
func (e *Evaluator) Holds(r api.Rule, in Input, budget *condition.Budget) (bool, error) {
	prg, err := e.conditions.Compile(r.Condition)
	if err != nil {
		return false, fmt.Errorf("rule %s: condition does not compile: %w", r.ID, err)
	}
	ok, err := prg.Eval(inputVars(in), budget)
	if err != nil {
		return false, fmt.Errorf("rule %s: %w", r.ID, err)
	}
	return ok, nil
}

// variables are the inputs of rule conditions with their bounds: the limits
// of package reading for the reading, and those of a device record.
func variables() []condition.Variable {
	name := condition.StringBound(reading.MaxNameLength)
	return []condition.Variable{
		{Name: "reading", Bound: condition.RecordBound(map[string]*condition.Bound{
			"device": condition.StringBound(reading.MaxIDLength),
			"seq":    condition.ScalarBound(),
			"ts":     condition.ScalarBound(),
			"time":   condition.ScalarBound(),
			"values": condition.MapBound(reading.MaxValues, name, condition.StringBound(reading.MaxStringValue)),
			"units":  condition.MapBound(reading.MaxValues, name, condition.StringBound(reading.MaxUnitLength)),
		})},
		{Name: "device", Bound: policy.DeviceBound()},
	}
}

func inputVars(in Input) map[string]any {
	p := in.Reading
	values := make(map[string]ref.Val, len(p.Values))
	units := make(map[string]ref.Val, len(p.Values))
	for _, v := range p.Values {
		switch {
		case v.Number != nil:
			values[v.Name] = types.Double(*v.Number)
		case v.String != nil:
			values[v.Name] = types.String(*v.String)
		case v.Bool != nil:
			values[v.Name] = types.Bool(*v.Bool)
		default:
			continue
		}
		if v.Unit != "" {
			units[v.Name] = types.String(v.Unit)
		}
	}
	var seq ref.Val = types.Int(int64(p.Seq)) //nolint:gosec // checked below
	if p.Seq > math.MaxInt64 {
		seq = types.Uint(p.Seq)
	}
	rd := condition.Map(map[string]ref.Val{
		"device": types.String(p.Device),
		"seq":    seq,
		"ts":     types.Int(p.Timestamp),
		"time":   types.Timestamp{Time: time.UnixMilli(p.Timestamp).UTC()},
		"values": condition.Map(values),
		"units":  condition.Map(units),
	})
	d := in.Device
	dev := condition.Map(map[string]ref.Val{
		"id":         types.String(d.ID),
		"type":       types.String(d.Type),
		"owner":      types.String(d.Owner),
		"status":     types.String(string(d.Status)),
		"firmware":   types.String(d.Firmware),
		"groups":     condition.Strings(d.Groups),
		"attributes": condition.StringMap(d.Attributes),
	})
	return map[string]any{"reading": rd, "device": dev}
}

func checkID(field, id string) *ValidationError {
	if err := reading.ValidateID(field, id); err != nil {
		var ve *reading.ValidationError
		if errors.As(err, &ve) {
			return invalid(field, "%s", ve.Reason)
		}
		return invalid(field, "%s", err.Error())
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
