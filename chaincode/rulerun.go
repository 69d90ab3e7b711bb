package chaincode

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/automation"
	"github.com/iotledger/iotledger/chaincode/policy/condition"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// What happens when telemetry arrives and a rule fires: rule selection and
// conditions (package automation decides them), cooldowns, and the actions —
// alerts, status changes and commands to the rule owner's devices.

// ruleOutcome is what the rules did during one batch.
type ruleOutcome struct {
	alerts      []api.Alert
	commands    []api.Command
	changes     []api.StatusChange
	revocations []string
	touched     []string
}

// runRules evaluates the rules of each reading's device owner, reading by
// reading in batch order, rules in key order. A rule sees the device as
// earlier readings' rules left it. A rule whose condition cannot be
// evaluated does not fire; it never refuses telemetry that is valid. But
// when the transaction's evaluation budget runs out, the batch is refused
// (RESOURCE_EXHAUSTED, naming the reading and the rules' org) rather than
// the remaining rules skipped: a skipped alert is worse than a refused
// batch, which the hub splits and resubmits.
func (t *txn) runRules(batch []*reading.Reading) (ruleOutcome, error) {
	var out ruleOutcome
	cache := map[string][]api.Rule{}
	fired := map[string]time.Time{}
	for i, r := range batch {
		d := t.devices[r.Device]
		rules, err := t.rulesOf(d.Owner, cache)
		if err != nil {
			return out, err
		}
		for _, rule := range rules {
			d = t.devices[r.Device]
			if !automation.Selects(rule, *d) {
				continue
			}
			holds, err := t.eng.rules.Holds(rule, automation.Input{Reading: r.Payload, Device: *d}, t.budget)
			var spent *condition.BudgetError
			if errors.As(err, &spent) {
				return out, readingError(i, r, api.Errorf(api.CodeResourceExhausted, fmt.Sprintf(
					"the rules of %s exhausted the transaction's evaluation budget at rule %s (%v); submit fewer readings per batch",
					rule.Owner, rule.ID, spent)))
			}
			if err != nil {
				slog.Warn("rule condition failed to evaluate; the rule does not fire", "rule", rule.ID, "owner", rule.Owner, "device", d.ID, "err", err)
				continue
			}
			if !holds {
				continue
			}
			cool, err := t.coolingDown(rule, d, fired)
			if err != nil {
				return out, err
			}
			if cool {
				continue
			}
			if err := t.fire(rule, r, &out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// coolingDown reports whether the rule fired for the device less than its
// cooldown ago (by transaction time) and otherwise records this firing.
func (t *txn) coolingDown(rule api.Rule, d *api.Device, fired map[string]time.Time) (bool, error) {
	if rule.CooldownSeconds <= 0 {
		return false, nil
	}
	k, err := compositeKey(kindCooldown, rule.Owner, rule.ID, d.ID)
	if err != nil {
		return false, err
	}
	last, ok := fired[k]
	if !ok {
		b, err := t.getRecord(k)
		if err != nil {
			return false, err
		}
		if b != nil {
			ns, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return false, internal("decoding rule cooldown", err)
			}
			last, ok = time.Unix(0, ns).UTC(), true
		}
	}
	if ok && t.now.Before(last.Add(time.Duration(rule.CooldownSeconds)*time.Second)) {
		return true, nil
	}
	fired[k] = t.now
	if err := t.putRecord(k, []byte(strconv.FormatInt(t.now.UnixNano(), 10))); err != nil {
		return false, err
	}
	return false, nil
}

// fire applies a rule's actions for one reading.
func (t *txn) fire(rule api.Rule, r *reading.Reading, out *ruleOutcome) error {
	cause := "rule:" + rule.ID
	for _, act := range rule.Actions {
		d := t.devices[r.Device]
		switch act.Type {
		case api.ActionTypeAlert:
			out.alerts = append(out.alerts, api.Alert{Rule: rule.ID, Device: d.ID, Seq: r.Seq, Severity: act.Severity, Message: act.Message})
		case api.ActionTypeSetStatus:
			if !transitionAllowed(d.Status, act.Status) {
				continue // already there, or not reachable: nothing to do
			}
			reason := act.Message
			if reason == "" {
				reason = fmt.Sprintf("rule %s on reading %d", rule.ID, r.Seq)
			}
			_, change, err := t.applyStatus(d, act.Status, reason, cause)
			if err != nil {
				return err
			}
			out.changes = append(out.changes, change)
			if final(act.Status) {
				out.revocations = append(out.revocations, d.ID)
			}
		case api.ActionTypeCommand:
			targets, err := t.ruleTargets(rule, d, act.Target)
			if err != nil {
				return err
			}
			ttl, err := commandTTL(act.TTL)
			if err != nil {
				ttl = defaultCommandTTL
			}
			for _, target := range targets {
				cmd, err := t.newCommand(target, act.Command, act.Params, ttl, cause)
				if err != nil {
					return err
				}
				out.commands = append(out.commands, cmd)
				out.touched = append(out.touched, target.ID)
			}
		}
	}
	return nil
}

// ruleTargets resolves a command action's target: the reading's device,
// "device:<id>" or "group:<g>" — only devices of the rule's owner that are
// not retired. A group is the rule owner's group: another org's records are
// never read. Inconsistent records are skipped, never fatal to the batch.
func (t *txn) ruleTargets(rule api.Rule, d *api.Device, target string) ([]*api.Device, error) {
	eligible := func(x *api.Device) bool { return x.Owner == rule.Owner && !final(x.Status) }
	switch {
	case target == "":
		if eligible(d) {
			return []*api.Device{d}, nil
		}
		return nil, nil
	case strings.HasPrefix(target, "device:"):
		id := strings.TrimPrefix(target, "device:")
		if !validID(id) {
			return nil, nil
		}
		x, err := t.findDevice(id)
		if api.CodeOf(err) == api.CodeInconsistentRecord {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if x != nil && eligible(x) {
			return []*api.Device{x}, nil
		}
		return nil, nil
	case strings.HasPrefix(target, "group:"):
		group := strings.TrimPrefix(target, "group:")
		if !validID(group) {
			return nil, nil
		}
		kvs, err := scanAll(t.l, kindDeviceGroup, rule.Owner, group)
		if err != nil {
			return nil, err
		}
		var out []*api.Device
		for _, e := range kvs {
			x, skip, err := t.indexedDevice(e.Key, rule.Owner)
			if err != nil {
				return nil, err
			}
			if skip == nil && eligible(x) && len(out) < maxGroupTargets {
				out = append(out, x)
			}
		}
		return out, nil
	}
	return nil, nil
}

// validID reports whether id is a well-formed identifier. Rule targets were
// validated when the rule was stored; this guards keys all the same.
func validID(id string) bool {
	return reading.ValidateID("id", id) == nil
}
