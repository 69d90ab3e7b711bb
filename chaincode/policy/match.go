package policy

import (
	"slices"
	"strings"

	"github.com/iotledger/iotledger/chaincode/api"
)

// ownerDefaults are the actions each role of the resource's owner org may
// perform without any policy.
var ownerDefaults = map[string][]string{
	api.RoleOperator: {"device:*", api.ActionPolicyManage, api.ActionRuleManage, api.ActionTelemetryRead},
	api.RoleHub:      {api.ActionTelemetryWrite, api.ActionDeviceRead, api.ActionCommandDeliver, api.ActionDeviceMessage},
	api.RoleAuditor:  {api.ActionDeviceRead, api.ActionTelemetryRead},
}

// deviceDefaults are the actions a device may perform on devices of its own
// owner org without any policy.
var deviceDefaults = []string{api.ActionDeviceMessage}

// defaultGrant describes the owner-org default that allows the action, or
// returns "" when none does.
func defaultGrant(p api.Principal, owner, action string) string {
	if owner == "" || p.MSPID != owner {
		return ""
	}
	if p.Device != "" {
		for _, a := range deviceDefaults {
			if actionMatches(a, action) {
				return "devices of the owner org may " + a
			}
		}
		return ""
	}
	for _, a := range ownerDefaults[p.Role] {
		if actionMatches(a, action) {
			return "role " + p.Role + " of the owner org may " + a
		}
	}
	return ""
}

// principalMatches reports whether a statement principal names the request
// principal. owner is the resource owner org, which is the policy's org.
//
//   - "*" matches every principal;
//   - "msp:X" matches clients of org X and devices owned by org X;
//   - "role:R" matches clients with role R in the policy's own org, and
//     "role:R@X" those with role R in org X (each org's CA issues its roles);
//   - "client:ID" matches the client identity ID;
//   - "device:ID" and "group:G" match only device principals.
func principalMatches(pattern string, p api.Principal, owner string) bool {
	if pattern == "*" {
		return true
	}
	kind, val, ok := strings.Cut(pattern, ":")
	if !ok {
		return false
	}
	isDevice := p.Device != ""
	switch kind {
	case "msp":
		return p.MSPID != "" && p.MSPID == val
	case "role":
		role, msp, scoped := strings.Cut(val, "@")
		if !scoped {
			msp = owner
		}
		return !isDevice && p.Role != "" && p.Role == role && msp != "" && p.MSPID == msp
	case "client":
		return !isDevice && p.ClientID != "" && p.ClientID == val
	case "device":
		return isDevice && p.Device == val
	case "group":
		return isDevice && slices.Contains(p.Groups, val)
	}
	return false
}

// actionMatches reports whether a statement action covers the request action:
// exactly, as "<area>:*", or as "*".
func actionMatches(pattern, action string) bool {
	if pattern == "*" {
		return action != ""
	}
	if area, ok := strings.CutSuffix(pattern, ":*"); ok {
		a, _, found := strings.Cut(action, ":")
		return found && a == area
	}
	return pattern == action
}

// resourceMatches reports whether a statement resource covers the resource:
// "*", "group:G" (the device is in G), "type:T", a "prefix*" of its id, or
// its exact id.
func resourceMatches(pattern string, r Resource) bool {
	if pattern == "*" {
		return true
	}
	if kind, val, ok := strings.Cut(pattern, ":"); ok {
		switch kind {
		case "group":
			return slices.Contains(r.Groups, val)
		case "type":
			return r.Type != "" && r.Type == val
		}
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return r.ID != "" && strings.HasPrefix(r.ID, prefix)
	}
	return r.ID != "" && r.ID == pattern
}
