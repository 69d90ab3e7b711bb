// Package chaincode holds the iotledger contracts: the device registry,
// access policies, automation rules, telemetry and commands, served by
// fabric-contract-api-go as the contracts "device", "policy", "rule",
// "telemetry" and "command".
//
// Every transaction function is thin: it decodes its arguments, then a plain
// method of txn loads state through the small ledger interface, authorizes
// the caller with the policy engine, applies the change and returns the
// chaincode event it produced. Submitted transactions emit exactly one event
// named api.EventName; evaluations emit none.
//
// Determinism: time is the transaction timestamp, nothing iterates a map
// into a result or the ledger, and no transaction calls out of the process.
package chaincode

import (
	"fmt"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/automation"
	"github.com/iotledger/iotledger/chaincode/policy"
)

// Contracts are the iotledger contracts, sharing one policy engine and one
// rule evaluator.
type Contracts struct {
	Device    *DeviceContract
	Policy    *PolicyContract
	Rule      *RuleContract
	Telemetry *TelemetryContract
	Command   *CommandContract
}

// NewContracts builds the contracts with their names set.
func NewContracts() (*Contracts, error) {
	pe, err := policy.NewEngine()
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	re, err := automation.NewEvaluator()
	if err != nil {
		return nil, fmt.Errorf("rule evaluator: %w", err)
	}
	e := &engines{policies: pe, rules: re}
	c := &Contracts{
		Device:    &DeviceContract{e: e},
		Policy:    &PolicyContract{e: e},
		Rule:      &RuleContract{e: e},
		Telemetry: &TelemetryContract{e: e},
		Command:   &CommandContract{e: e},
	}
	c.Device.Name = api.ContractDevice
	c.Policy.Name = api.ContractPolicy
	c.Rule.Name = api.ContractRule
	c.Telemetry.Name = api.ContractTelemetry
	c.Command.Name = api.ContractCommand
	return c, nil
}

// NewChaincode builds the chaincode serving every contract.
func NewChaincode() (*contractapi.ContractChaincode, error) {
	c, err := NewContracts()
	if err != nil {
		return nil, err
	}
	cc, err := contractapi.NewChaincode(c.Device, c.Policy, c.Rule, c.Telemetry, c.Command)
	if err != nil {
		return nil, fmt.Errorf("building the chaincode: %w", err)
	}
	cc.Info.Title = "iotledger"
	cc.Info.Version = "1.0.0"
	return cc, nil
}
