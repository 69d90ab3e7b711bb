package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Limits on a policy.
const (
	MaxStatements     = 32
	MaxEntries        = 16 // principals, actions or resources per statement
	MaxDescription    = 512
	MaxClientIDLength = 1024
)

// Limits on the policies of one org, enforced by the chaincode when a policy
// is stored (see docs/decisions.md, "Bounded work per transaction").
const (
	// MaxPoliciesPerOrg is the most policies an org may have.
	MaxPoliciesPerOrg = 64
	// MaxDecisionCost bounds DecisionCost of an org's policies: the most
	// the conditions of one access decision on the org's devices may cost,
	// as much as a full rule set of an org at the per-condition limit.
	MaxDecisionCost = 64 * condition.MaxCost
)

// ValidationError says which field of a policy is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid policy: " + e.Reason
	}
	return fmt.Sprintf("invalid policy: %s: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// areas are the action namespaces; "<area>:*" grants every action of one.
var areas = map[string]bool{
	api.ContractDevice: true, api.ContractTelemetry: true, api.ContractCommand: true,
	api.ContractPolicy: true, api.ContractRule: true,
}

// knownActions lists every action a statement may name.
var knownActions = map[string]bool{
	api.ActionTelemetryWrite: true, api.ActionTelemetryRead: true, api.ActionDeviceRead: true,
	api.ActionDeviceManage: true, api.ActionDeviceCommand: true, api.ActionDeviceMessage: true,
	api.ActionCommandDeliver: true, api.ActionPolicyManage: true, api.ActionRuleManage: true,
}

var knownRoles = map[string]bool{api.RoleOperator: true, api.RoleHub: true, api.RoleAuditor: true}

// Validate checks a policy before it is stored. Owner, Version and UpdatedAt
// are set by the chaincode and not checked. The error is a *ValidationError.
func (e *Engine) Validate(p api.Policy) error {
	if err := checkID("id", p.ID); err != nil {
		return err
	}
	if utf8.RuneCountInString(p.Description) > MaxDescription || !printable(p.Description) {
		return invalid("description", "must be at most %d printable characters", MaxDescription)
	}
	if len(p.Statements) == 0 {
		return invalid("statements", "at least one statement is required")
	}
	if len(p.Statements) > MaxStatements {
		return invalid("statements", "%d statements, more than the limit of %d", len(p.Statements), MaxStatements)
	}
	if p.NotBefore != nil && p.NotAfter != nil && !p.NotBefore.Before(*p.NotAfter) {
		return invalid("notAfter", "must be after notBefore (%s)", p.NotBefore.UTC().Format(timeLayout))
	}
	sids := make(map[string]int, len(p.Statements))
	for i, st := range p.Statements {
		field := fmt.Sprintf("statements[%d]", i)
		if st.Sid != "" {
			if err := checkID(field+".sid", st.Sid); err != nil {
				return err
			}
			if j, dup := sids[st.Sid]; dup {
				return invalid(field+".sid", "%q is also the sid of statements[%d]", st.Sid, j)
			}
			sids[st.Sid] = i
		}
		if err := e.validateStatement(field, st); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) validateStatement(field string, st api.Statement) error {
	if st.Effect != api.Allow && st.Effect != api.Deny {
		return invalid(field+".effect", "%q must be %q or %q", st.Effect, api.Allow, api.Deny)
	}
	lists := []struct {
		name  string
		items []string
		check func(string) error
	}{
		{"principals", st.Principals, checkPrincipal},
		{"actions", st.Actions, checkAction},
		{"resources", st.Resources, checkResource},
	}
	for _, l := range lists {
		if len(l.items) == 0 {
			return invalid(field+"."+l.name, "at least one entry is required")
		}
		if len(l.items) > MaxEntries {
			return invalid(field+"."+l.name, "%d entries, more than the limit of %d", len(l.items), MaxEntries)
		}
		for j, item := range l.items {
			if err := l.check(item); err != nil {
				return invalid(fmt.Sprintf("%s.%s[%d]", field, l.name, j), "%s", err.Error())
			}
		}
	}
	if st.Condition != "" {
		if _, err := e.conditions.Check(st.Condition); err != nil {
			return invalid(field+".condition", "%s", err.Error())
		}
	}
	return nil
}

// checkPrincipal accepts "*", "msp:<MSP ID>", "role:<role>", "role:<role>@<MSP ID>",
// "client:<client identity ID>", "device:<id>" and "group:<group>".
func checkPrincipal(s string) error {
	if s == "*" {
		return nil
	}
	kind, val, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%q must be \"*\" or one of msp:, role:, client:, device:, group: followed by a value", s)
	}
	switch kind {
	case "msp", "device", "group":
		return idError(kind, val)
	case "role":
		role, msp, scoped := strings.Cut(val, "@")
		if !knownRoles[role] {
			return fmt.Errorf("role %q is not one of %s, %s, %s", role, api.RoleOperator, api.RoleHub, api.RoleAuditor)
		}
		if scoped {
			return idError("role MSP ID", msp)
		}
		return nil
	case "client":
		if val == "" || len(val) > MaxClientIDLength || !printable(val) {
			return fmt.Errorf("client identity ID must be 1-%d printable characters", MaxClientIDLength)
		}
		return nil
	default:
		return fmt.Errorf("%q: unknown principal kind %q (use msp, role, client, device or group)", s, kind)
	}
}

// checkAction accepts a known action, "<area>:*" or "*".
func checkAction(s string) error {
	if s == "*" || knownActions[s] {
		return nil
	}
	if area, rest, ok := strings.Cut(s, ":"); ok && rest == "*" && areas[area] {
		return nil
	}
	return fmt.Errorf("unknown action %q (use e.g. telemetry:read, device:*, or *)", s)
}

// checkResource accepts "*", "group:<g>", "type:<t>", "<prefix>*" and device ids.
func checkResource(s string) error {
	if s == "*" {
		return nil
	}
	if kind, val, ok := strings.Cut(s, ":"); ok && (kind == "group" || kind == "type") {
		return idError(kind, val)
	}
	id := s
	if prefix, ok := strings.CutSuffix(s, "*"); ok {
		id = prefix
	}
	if err := idError("device id", id); err != nil {
		return err
	}
	return nil
}

func idError(what, val string) error {
	if err := reading.ValidateID(what, val); err != nil {
		var ve *reading.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s: %s", what, ve.Reason)
		}
		return err
	}
	return nil
}

func checkID(field, id string) error {
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
