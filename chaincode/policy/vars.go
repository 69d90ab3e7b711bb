package policy

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Limits of a device record, as device enrolment and update enforce them
// (chaincode/device.go; a test there keeps the two in step). Conditions of
// policies and rules are checked against them for their worst-case cost.
const (
	MaxDeviceGroups     = 16
	MaxDeviceAttributes = 32
	MaxAttributeValue   = 256 // bytes
	MaxFirmware         = 64  // bytes
	maxStatusLength     = len(api.StatusDecommissioned)
)

// Limits of the request context a caller supplies (policy:CheckAccess,
// policy:Explain). CheckContext enforces them; a condition over a larger
// context fails to evaluate. A context is normally a handful of claims; these
// limits are far above that and keep building a context's CEL value under a
// tenth of a millisecond.
const (
	MaxContextEntries = 128 // entries of each map or list
	MaxContextValues  = 512 // values in all, at every depth
	MaxContextDepth   = 4   // request.context.a.b.c.d
	MaxContextString  = 256 // bytes of a string value
	MaxContextKey     = reading.MaxNameLength
)

// DeviceBound is the largest device record a condition sees, as the device
// of a reading.
func DeviceBound() *condition.Bound { return condition.RecordBound(deviceFields()) }

func deviceFields() map[string]*condition.Bound {
	id := condition.StringBound(reading.MaxIDLength)
	return map[string]*condition.Bound{
		"id": id, "owner": id, "type": id,
		"status":     condition.StringBound(uint64(maxStatusLength)),
		"firmware":   condition.StringBound(MaxFirmware),
		"groups":     condition.ListBound(MaxDeviceGroups, id),
		"attributes": condition.MapBound(MaxDeviceAttributes, id, condition.StringBound(MaxAttributeValue)),
	}
}

// variables are the inputs of policy conditions with their bounds. A client
// identity's attributes come from its org's CA, which nothing here limits:
// they are bounded like a device's (and a larger set can only make a
// condition stop at its cost limit, that is, fail closed).
func variables() []condition.Variable {
	id := condition.StringBound(reading.MaxIDLength)
	principal := condition.RecordBound(map[string]*condition.Bound{
		"mspId": id, "device": id,
		"clientId": condition.StringBound(MaxClientIDLength),
		"role":     condition.StringBound(reading.MaxNameLength),
		"groups":   condition.ListBound(MaxDeviceGroups, id),
		"attrs":    condition.MapBound(MaxDeviceAttributes, id, condition.StringBound(MaxAttributeValue)),
	})
	resourceFields := deviceFields() // a resource is a device without its firmware
	delete(resourceFields, "firmware")
	resource := condition.RecordBound(resourceFields)
	// Every value of the context may be a string or a container, and the
	// estimator cannot tell which: bound both by the larger size.
	context := &condition.Bound{Size: max(MaxContextEntries, MaxContextString), Key: condition.StringBound(MaxContextKey)}
	context.Elem = context
	request := condition.RecordBound(map[string]*condition.Bound{
		"action":  condition.StringBound(reading.MaxNameLength),
		"time":    condition.ScalarBound(),
		"context": context,
	})
	return []condition.Variable{
		{Name: "principal", Bound: principal},
		{Name: "resource", Bound: resource},
		{Name: "request", Bound: request},
	}
}

// CheckContext refuses a request context beyond the limits the worst-case
// cost of conditions is estimated with. It accepts what encoding/json
// decodes into map[string]any (and Go integers).
func CheckContext(ctx map[string]any) error {
	values := 0
	var walk func(path string, v any, depth int) error
	walk = func(path string, v any, depth int) error {
		values++
		if values > MaxContextValues {
			return fmt.Errorf("request context: more than %d values", MaxContextValues)
		}
		switch x := v.(type) {
		case string:
			if len(x) > MaxContextString || !utf8.ValidString(x) {
				return fmt.Errorf("request context: %s must be UTF-8 of at most %d bytes", path, MaxContextString)
			}
		case map[string]any:
			if depth >= MaxContextDepth {
				return fmt.Errorf("request context: %s nests deeper than %d levels", path, MaxContextDepth)
			}
			if len(x) > MaxContextEntries {
				return fmt.Errorf("request context: %s has %d entries, the limit is %d", path, len(x), MaxContextEntries)
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys) // the first problem reported is the same on every peer
			for _, k := range keys {
				if len(k) > MaxContextKey || !utf8.ValidString(k) {
					return fmt.Errorf("request context: a key of %s is longer than %d bytes", path, MaxContextKey)
				}
				if err := walk(path+"."+k, x[k], depth+1); err != nil {
					return err
				}
			}
		case []any:
			if depth >= MaxContextDepth {
				return fmt.Errorf("request context: %s nests deeper than %d levels", path, MaxContextDepth)
			}
			if len(x) > MaxContextEntries {
				return fmt.Errorf("request context: %s has %d entries, the limit is %d", path, len(x), MaxContextEntries)
			}
			for i, e := range x {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if ctx == nil {
		return nil
	}
	values-- // the context map itself is not a value
	return walk("context", ctx, 0)
}

// conditionVars builds the CEL variables of a request once, when the first
// condition needs them.
type conditionVars struct {
	req   Request
	built bool
	vars  map[string]any
	err   error
}

func (c *conditionVars) activation() (map[string]any, error) {
	if !c.built {
		c.built = true
		c.vars, c.err = buildVars(c.req)
	}
	return c.vars, c.err
}

func buildVars(req Request) (map[string]any, error) {
	p := req.Principal
	principal := condition.Map(map[string]ref.Val{
		"mspId":    types.String(p.MSPID),
		"clientId": types.String(p.ClientID),
		"role":     types.String(p.Role),
		"device":   types.String(p.Device),
		"groups":   condition.Strings(p.Groups),
		"attrs":    condition.StringMap(p.Attrs),
	})
	r := req.Resource
	resource := condition.Map(map[string]ref.Val{
		"id":         types.String(r.ID),
		"owner":      types.String(r.Owner),
		"type":       types.String(r.Type),
		"status":     types.String(r.Status),
		"groups":     condition.Strings(r.Groups),
		"attributes": condition.StringMap(r.Attributes),
	})
	ctx := req.Context
	if ctx == nil {
		ctx = map[string]any{}
	}
	if err := CheckContext(ctx); err != nil {
		return nil, err
	}
	context, err := condition.Value(ctx)
	if err != nil {
		return nil, fmt.Errorf("request context: %w", err)
	}
	request := condition.Map(map[string]ref.Val{
		"action":  types.String(req.Action),
		"time":    types.Timestamp{Time: req.Time.UTC()},
		"context": context,
	})
	return map[string]any{"principal": principal, "resource": resource, "request": request}, nil
}
