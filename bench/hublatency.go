package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// LatReadingCommand is the whole automation round trip.
const LatReadingCommand = "hot reading accepted → command delivered"

// probeTimeout bounds each round trip of the latency probes.
const probeTimeout = 30 * time.Second

// ruleToCommand puts a rule that commands a device when its temperature
// exceeds 50, then publishes hot readings one at a time and times the
// command's arrival over MQTT from the commit (block event of the rule's
// transaction) and from the reading's PUBACK.
func (r *hubRun) ruleToCommand(ctx context.Context) (LatencyResult, error) {
	e := r.env
	out := LatencyResult{Name: LatRuleCommand}
	group := "bench-trigger-" + e.RunID
	d, req, err := e.Pool.NewDevice()
	if err != nil {
		return out, err
	}
	req.Groups = []string{group}
	if _, err := e.Operator.EnrollDevice(ctx, req); err != nil {
		return out, fmt.Errorf("enroll trigger device: %w", err)
	}
	rule := api.Rule{
		ID:          group,
		Description: "bench: cool a device whose temperature exceeds 50",
		Selector:    api.DeviceSelector{Groups: []string{group}},
		Condition:   "reading.values.temperature > 50",
		Actions:     []api.RuleAction{{Type: "command", Command: "cool", Params: json.RawMessage(`{"setpoint":4}`)}},
	}
	if _, err := e.Operator.PutRule(ctx, rule); err != nil {
		return out, fmt.Errorf("put rule: %w", err)
	}
	defer func() { _ = e.Operator.DeleteRule(context.WithoutCancel(ctx), rule.ID) }()

	m, err := newBenchDevice(r.deviceConfig(), d)
	if err != nil {
		return out, err
	}
	defer m.close()
	arrived := make(chan time.Time, 16)
	m.conn.OnCommand(func(context.Context, api.Command) (api.CommandStatus, string) {
		select {
		case arrived <- time.Now():
		default:
		}
		return "", "" // the probe times delivery only: no ack
	})
	if err := m.connect(ctx); err != nil {
		return out, err
	}
	issued := make(chan time.Time, 16)
	unwatch := r.obs.watch(func(ev *api.Event, at time.Time) {
		if issuesCommandTo(ev, d.ID) {
			select {
			case issued <- at:
			default:
			}
		}
	})
	defer unwatch()

	var fromCommit, fromReading []time.Duration
	for i := range r.cfg.Triggers {
		hot := 60.0 + float64(i)
		env, err := d.Signer.SignReading(reading.Payload{
			Device: d.ID, Seq: d.next, Timestamp: time.Now().UnixMilli(),
			Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &hot}},
		})
		if err != nil {
			return out, err
		}
		d.next++
		if err := m.publish(ctx, env); err != nil {
			return out, err
		}
		acked := time.Now()
		var commitAt, deliveredAt time.Time
		timeout := time.After(probeTimeout)
		for commitAt.IsZero() || deliveredAt.IsZero() {
			select {
			case commitAt = <-issued:
			case deliveredAt = <-arrived:
			case <-timeout:
				return out, fmt.Errorf("trigger %d: no command within %s (committed: %v)", i+1, probeTimeout, !commitAt.IsZero())
			case <-ctx.Done():
				return out, ctx.Err()
			}
		}
		fromCommit = append(fromCommit, deliveredAt.Sub(commitAt))
		fromReading = append(fromReading, deliveredAt.Sub(acked))
	}
	fill(&out, fromCommit)
	out.Note = "rule's block event seen by the bench → command message at the device"
	whole := LatencyResult{Name: LatReadingCommand, Note: "device PUBACK → command message (hub batching + commit + delivery)"}
	fill(&whole, fromReading)
	r.env.Report.Latencies = append(r.env.Report.Latencies, whole)
	return out, nil
}

// revocation connects devices, revokes them one at a time and times the
// hub's disconnect from the revocation's block event and from the submit.
func (r *hubRun) revocation(ctx context.Context) ([]LatencyResult, error) {
	e := r.env
	bt := e.Target.Info.BatchTimeoutMs
	fromCommit := LatencyResult{Name: LatRevokeCommit, Note: "revocation's block event seen by the bench → MQTT connection closed"}
	fromSubmit := LatencyResult{Name: LatRevokeSubmit, Target: fmt.Sprintf("p99 < %.0f ms", bt+revokeGoalMargin), Note: "operator submits → MQTT connection closed"}
	var commitLat, submitLat []time.Duration
	results := func() []LatencyResult {
		fill(&fromCommit, commitLat)
		fill(&fromSubmit, submitLat)
		return []LatencyResult{fromCommit, fromSubmit}
	}
	for i := range r.cfg.Revokes {
		d, req, err := e.Pool.NewDevice()
		if err != nil {
			return results(), err
		}
		if _, err := e.Operator.EnrollDevice(ctx, req); err != nil {
			return results(), fmt.Errorf("enroll device to revoke: %w", err)
		}
		m, err := dialDevice(ctx, r.deviceConfig(), d)
		if err != nil {
			return results(), err
		}
		committed := make(chan time.Time, 1)
		unwatch := r.obs.watch(func(ev *api.Event, at time.Time) {
			if slices.Contains(ev.Revocations, d.ID) {
				select {
				case committed <- at:
				default:
				}
			}
		})
		submitted := time.Now()
		_, err = e.Operator.SetDeviceStatus(ctx, d.ID, api.StatusRevoked, "bench revocation probe")
		if err != nil {
			unwatch()
			m.close()
			return results(), fmt.Errorf("revoke %s: %w", d.ID, err)
		}
		var commitAt, lostAt time.Time
		timeout := time.After(probeTimeout)
		for commitAt.IsZero() || lostAt.IsZero() {
			select {
			case commitAt = <-committed:
			case lostAt = <-m.lost:
			case <-timeout:
				unwatch()
				m.close()
				return results(), fmt.Errorf("revocation %d: device %s not disconnected within %s", i+1, d.ID, probeTimeout)
			case <-ctx.Done():
				unwatch()
				m.close()
				return results(), ctx.Err()
			}
		}
		unwatch()
		m.close()
		commitLat = append(commitLat, lostAt.Sub(commitAt))
		submitLat = append(submitLat, lostAt.Sub(submitted))
	}
	return results(), nil
}

func fill(l *LatencyResult, samples []time.Duration) {
	s := Summarize(samples)
	l.Count, l.P50Ms, l.P99Ms, l.MaxMs = s.Count, ms(s.P50), ms(s.P99), ms(s.Max)
}

// issuesCommandTo says whether ev issues a command to device. The hub's
// marking a command delivered commits a block later with the command in
// its event too; taken for the next trigger's issue, it made that trigger
// look a block slower.
func issuesCommandTo(ev *api.Event, device string) bool {
	for _, c := range ev.Commands {
		if c.Device == device && c.Status == api.CommandPending {
			return true
		}
	}
	return false
}
