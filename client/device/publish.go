package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// reasonWait bounds how long a refusal whose PUBACK named no reason waits
// for the hub's message on the errors topic.
const reasonWait = time.Second

// Publish signs a reading and publishes it with QoS 1, returning once the
// hub acknowledged it: a nil error means the reading is durable in the
// hub's outbox and will reach the ledger. Empty fields of p are filled in:
// Device (the device id), Seq (the device's next sequence number, from
// Config.FirstSeq on) and Timestamp (now). A refusal is a *RefusedError
// (its Reason is the hub's, e.g. "bad_signature"); an invalid payload, a
// *reading.ValidationError. With Config.Reconnect, a reading whose PUBACK
// did not come is sent again, in the same envelope, after reconnecting, and
// one refused as temporary (RefusedError.Temporary) is sent again after a
// back-off delay, until ctx ends.
func (d *Device) Publish(ctx context.Context, p reading.Payload) (uint64, error) {
	switch p.Device {
	case "":
		p.Device = d.cfg.ID
	case d.cfg.ID:
	default:
		return 0, fmt.Errorf("device %s cannot publish a reading of device %q", d.cfg.ID, p.Device)
	}
	if p.Seq == 0 {
		p.Seq = d.seq.Add(1) - 1
	}
	if p.Timestamp == 0 {
		p.Timestamp = d.cfg.Now().UnixMilli()
	}
	env, err := d.cfg.Signer.SignReading(p)
	if err != nil {
		return 0, err
	}
	return p.Seq, d.sendReading(ctx, env, p.Seq)
}

// PublishEnvelope publishes a reading signed beforehand (a benchmark's, or
// one kept across a restart) as Publish does. Resending an envelope the hub
// already accepted is answered with success.
func (d *Device) PublishEnvelope(ctx context.Context, env reading.Envelope) error {
	r, err := env.Decode()
	if err != nil {
		return err
	}
	if r.Device != d.cfg.ID {
		return fmt.Errorf("device %s cannot publish a reading of device %q", d.cfg.ID, r.Device)
	}
	return d.sendReading(ctx, env, r.Seq)
}

func (d *Device) sendReading(ctx context.Context, env reading.Envelope, seq uint64) error {
	return d.send(ctx, outgoing{topic: d.topics.telemetry, payload: env.Encode(), seq: seq,
		key: refusalKey(d.topics.telemetry, seq, "")})
}

// Ack signs and publishes the ack of a command (status api.CommandAcked or
// api.CommandFailed, result at most 1024 bytes) and returns once the hub
// acknowledged it; the hub then records it on the ledger, which may still
// refuse it later (an errors-topic message, see OnError). An invalid ack is
// a *reading.AckError; a refusal, a *RefusedError.
func (d *Device) Ack(ctx context.Context, command string, status api.CommandStatus, result string) error {
	payload, err := json.Marshal(api.AckPayload{Device: d.cfg.ID, Command: command, Status: status, Result: result, Ts: d.cfg.Now().UnixMilli()})
	if err != nil {
		return err
	}
	sig, err := d.cfg.Signer.Sign(reading.DomainAck, payload)
	if err != nil {
		return err
	}
	env := reading.Envelope{Payload: payload, Signature: sig}
	if _, err := reading.ParseAck(env); err != nil {
		return err
	}
	d.mu.Lock()
	rec, ok := d.commands.get(command)
	if !ok {
		rec = d.commands.add(command)
	}
	rec.status, rec.result, rec.sending = status, result, true
	d.mu.Unlock()
	err = d.send(ctx, outgoing{topic: d.topics.acks, payload: env.Encode(), command: command,
		key: refusalKey(d.topics.acks, 0, command)})
	d.mu.Lock()
	rec.sending = false
	if err == nil {
		rec.acked = true
		d.stats.CommandsAcked++
	}
	d.mu.Unlock()
	return err
}

// SendTo publishes a device-to-device message (any bytes, at most 4 KiB)
// to another device's inbox, with QoS 1. The hub relays it only if the
// ledger grants this device device:message on the target; otherwise the
// error is a *RefusedError with Reason "not_authorized".
func (d *Device) SendTo(ctx context.Context, to string, payload []byte) error {
	if err := reading.ValidateID("device", to); err != nil {
		return err
	}
	if len(payload) > wire.MaxInboxBytes {
		return fmt.Errorf("inbox message of %d bytes: at most %d", len(payload), wire.MaxInboxBytes)
	}
	topic := wire.Topic(to, wire.KindInbox)
	return d.send(ctx, outgoing{topic: topic, payload: payload, key: refusalKey(topic, 0, "")})
}

// outgoing is one message the device sends and what identifies its
// refusal on the errors topic.
type outgoing struct {
	topic   string
	payload []byte
	seq     uint64 // telemetry
	command string // acks
	key     string
}

// refusalKey matches a message with the hub's errors-topic report of it:
// a reading by its sequence, an ack by its command, anything else by topic.
func refusalKey(topic string, seq uint64, command string) string {
	switch {
	case seq != 0:
		return topic + "#" + strconv.FormatUint(seq, 10)
	case command != "":
		return topic + "#" + command
	}
	return topic
}

func errorMessageKey(m wire.ErrorMessage) string {
	if m.Seq != 0 {
		return refusalKey(m.Topic, m.Seq, "")
	}
	return refusalKey(m.Topic, 0, m.Command)
}

// waiter receives the errors-topic report of one message in flight.
type waiter struct {
	mu     sync.Mutex
	msg    *wire.ErrorMessage
	got    chan struct{} // closed when msg is set
	cancel context.CancelFunc
}

func (w *waiter) arm(cancel context.CancelFunc) {
	w.mu.Lock()
	w.cancel = cancel
	w.mu.Unlock()
}

func (w *waiter) report() (wire.ErrorMessage, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.msg == nil {
		return wire.ErrorMessage{}, false
	}
	return *w.msg, true
}

// refusalArrived hands an errors-topic message to the message it reports
// on. "unavailable" comes without a PUBACK: it ends the wait for one.
func (d *Device) refusalArrived(m wire.ErrorMessage) {
	d.mu.Lock()
	w := d.waiters[errorMessageKey(m)]
	d.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.msg != nil {
		return
	}
	w.msg = &m
	close(w.got)
	if m.Reason == wire.ReasonUnavailable && w.cancel != nil {
		w.cancel()
	}
}

// send publishes m with QoS 1 and waits for its PUBACK, sending it again
// after a reconnection when the device reconnects on its own.
func (d *Device) send(ctx context.Context, m outgoing) error {
	w := &waiter{got: make(chan struct{})}
	d.mu.Lock()
	d.waiters[m.key] = w
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.waiters[m.key] == w {
			delete(d.waiters, m.key)
		}
		d.mu.Unlock()
	}()
	for refusals := 0; ; {
		cn, err := d.waitConn(ctx)
		if err != nil {
			return err
		}
		attempt, cancel := context.WithCancel(ctx)
		w.arm(cancel)
		pr, err := cn.c.Publish(attempt, &paho.Publish{Topic: m.topic, QoS: 1, Payload: m.payload})
		cancel()
		switch {
		case err == nil:
			return nil
		case pr != nil && pr.ReasonCode >= 0x80:
			r := d.refused(ctx, m, pr, w)
			if !r.Temporary() || d.cfg.Reconnect == nil {
				return r
			}
			// Over its rate: a device that keeps itself connected waits
			// and sends the same bytes again, as the hub asks.
			d.log.Debug("hub asked to send again later", "topic", m.topic, "seq", m.seq, "reason", r.Reason)
			if !sleep(ctx, d.cfg.Reconnect.Delay(refusals)) {
				return ctx.Err()
			}
			refusals++
			w.reset()
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case d.isClosed():
			return ErrClosed
		}
		var why error
		if rep, ok := w.report(); ok && rep.Reason == wire.ReasonUnavailable {
			why = refusedByMessage(m, rep)
		} else if errors.Is(err, context.DeadlineExceeded) {
			why = fmt.Errorf("%w within %s", ErrNoPuback, d.cfg.AckTimeout)
		} else if lostErr := d.lostErr(cn); lostErr != nil {
			why = lostErr
		} else {
			why = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		}
		d.mu.Lock()
		reconnect := d.reconnecting
		d.mu.Unlock()
		if !reconnect {
			return why
		}
		// A fresh connection (and clean session) gets the same bytes: the
		// hub answers an identical resend of a stored message with success.
		d.log.Debug("sending again after reconnecting", "topic", m.topic, "seq", m.seq, "why", why)
		d.drop(cn, why)
		w.reset()
	}
}

func (w *waiter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.msg != nil {
		w.msg, w.got = nil, make(chan struct{})
	}
}

// lostErr is why cn ended, if it did.
func (d *Device) lostErr(cn *conn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return cn.err
}

// refused builds the error of a negative PUBACK: its reason string
// "<reason>: <detail>", or else the hub's errors-topic message, or else the
// bare code.
func (d *Device) refused(ctx context.Context, m outgoing, pr *paho.PublishResponse, w *waiter) *RefusedError {
	e := &RefusedError{Topic: m.topic, Seq: m.seq, Command: m.command, Code: pr.ReasonCode}
	if pr.Properties != nil {
		e.Reason, e.Message = splitReasonString(pr.Properties.ReasonString)
	}
	if e.Reason == "" {
		t := time.NewTimer(reasonWait)
		defer t.Stop()
		select {
		case <-w.got:
		case <-t.C:
		case <-ctx.Done():
		}
		if rep, ok := w.report(); ok {
			e.Reason, e.Message = rep.Reason, rep.Message
		}
	}
	if e.Reason == "" {
		e.Reason = fmt.Sprintf("code_0x%02x", pr.ReasonCode)
	}
	return e
}

func refusedByMessage(m outgoing, rep wire.ErrorMessage) *RefusedError {
	return &RefusedError{Topic: m.topic, Seq: m.seq, Command: m.command, Reason: rep.Reason, Message: rep.Message}
}
