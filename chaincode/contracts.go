// Package chaincode holds the iotledger contracts: the device registry,
// access policies, automation rules, telemetry, commands and device-to-device
// messages, served by fabric-contract-api-go as the contracts "device",
// "policy", "rule", "telemetry", "command" and "message".
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
	"time"

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
	Message   *MessageContract
}

// DefaultMaxClockSkew is how far a proposal's timestamp may be from the
// endorsing peer's clock unless the server is told otherwise.
const DefaultMaxClockSkew = 5 * time.Minute

// Option configures the contracts.
type Option func(*settings)

type settings struct {
	maxSkew time.Duration
	clock   func() time.Time
}

// WithMaxClockSkew bounds how far a proposal's timestamp may be from this
// endorser's clock (default DefaultMaxClockSkew); d must be positive.
func WithMaxClockSkew(d time.Duration) Option { return func(s *settings) { s.maxSkew = d } }

// WithClock replaces the endorser's clock (tests). The clock is only ever
// compared with the proposal's timestamp: nothing written depends on it.
func WithClock(now func() time.Time) Option { return func(s *settings) { s.clock = now } }

// EnvMaxClockSkew names the chaincode server's setting of the clock bound,
// a Go duration such as "2m".
const EnvMaxClockSkew = "IOTLEDGER_MAX_CLOCK_SKEW"

// OptionsFromEnv reads the chaincode server's settings from its
// environment (getenv is os.Getenv outside tests).
func OptionsFromEnv(getenv func(string) string) ([]Option, error) {
	var opts []Option
	if v := getenv(EnvMaxClockSkew); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 5m", EnvMaxClockSkew, v)
		}
		opts = append(opts, WithMaxClockSkew(d))
	}
	return opts, nil
}

// NewContracts builds the contracts with their names set.
func NewContracts(opts ...Option) (*Contracts, error) {
	cfg := settings{maxSkew: DefaultMaxClockSkew, clock: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxSkew <= 0 {
		return nil, fmt.Errorf("maximum clock skew %s: must be positive", cfg.maxSkew)
	}
	pe, err := policy.NewEngine()
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	re, err := automation.NewEvaluator()
	if err != nil {
		return nil, fmt.Errorf("rule evaluator: %w", err)
	}
	e := &engines{policies: pe, rules: re, clock: cfg.clock, maxSkew: cfg.maxSkew}
	c := &Contracts{
		Device:    &DeviceContract{e: e},
		Policy:    &PolicyContract{e: e},
		Rule:      &RuleContract{e: e},
		Telemetry: &TelemetryContract{e: e},
		Command:   &CommandContract{e: e},
		Message:   &MessageContract{e: e},
	}
	c.Device.Name = api.ContractDevice
	c.Policy.Name = api.ContractPolicy
	c.Rule.Name = api.ContractRule
	c.Telemetry.Name = api.ContractTelemetry
	c.Command.Name = api.ContractCommand
	c.Message.Name = api.ContractMessage
	return c, nil
}

// NewChaincode builds the chaincode serving every contract.
func NewChaincode(opts ...Option) (*Chaincode, error) {
	c, err := NewContracts(opts...)
	if err != nil {
		return nil, err
	}
	cc, err := contractapi.NewChaincode(c.Device, c.Policy, c.Rule, c.Telemetry, c.Command, c.Message)
	if err != nil {
		return nil, fmt.Errorf("building the chaincode: %w", err)
	}
	cc.Info.Title = "iotledger"
	cc.Info.Version = "1.0.0"
	return newDispatcher(cc, c.Device, c.Policy, c.Rule, c.Telemetry, c.Command, c.Message), nil
}
