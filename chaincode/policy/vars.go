package policy

import (
	"fmt"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/iotledger/iotledger/chaincode/policy/condition"
)

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
