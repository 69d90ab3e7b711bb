package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// mqttDevice is one bench device connected to the hub over MQTT 3.1.1.
type mqttDevice struct {
	dev  *Device
	conn mqtt.Client
	lost chan time.Time // when the hub dropped the connection
}

// dialDevice connects a device to the hub with a fresh signed token.
func dialDevice(addr, hubID string, d *Device) (*mqttDevice, error) {
	token, err := wire.SignToken(d.Signer, hubID, d.ID, time.Now(), nonce())
	if err != nil {
		return nil, err
	}
	m := &mqttDevice{dev: d, lost: make(chan time.Time, 1)}
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(d.ID).SetUsername(d.ID).SetPassword(token).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(60 * time.Second).
		SetConnectTimeout(15 * time.Second).
		SetWriteTimeout(15 * time.Second).
		SetOrderMatters(false).
		SetConnectionLostHandler(func(mqtt.Client, error) {
			select {
			case m.lost <- time.Now():
			default:
			}
		})
	m.conn = mqtt.NewClient(opts)
	tok := m.conn.Connect()
	if !tok.WaitTimeout(20 * time.Second) {
		return nil, fmt.Errorf("device %s: connect timed out", d.ID)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("device %s: connect: %w", d.ID, err)
	}
	return m, nil
}

// publish sends one envelope with QoS 1 and waits for the PUBACK, which the
// hub sends once the reading is durable in its outbox.
func (m *mqttDevice) publish(env reading.Envelope) error {
	tok := m.conn.Publish(wire.Topic(m.dev.ID, wire.KindTelemetry), 1, false, env.Encode())
	if !tok.WaitTimeout(30 * time.Second) {
		return fmt.Errorf("device %s: no PUBACK within 30s", m.dev.ID)
	}
	return tok.Error()
}

func (m *mqttDevice) close() { m.conn.Disconnect(100) }

// fleet is the bench's devices connected to one hub.
type fleet struct{ devs []*mqttDevice }

// connectFleet connects every device, a few at a time.
func connectFleet(ctx context.Context, addr, hubID string, devs []*Device) (*fleet, error) {
	f := &fleet{devs: make([]*mqttDevice, len(devs))}
	errs := make([]error, len(devs))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, d := range devs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f.devs[i], errs[i] = dialDevice(addr, hubID, d)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.close()
		return nil, err
	}
	if ctx.Err() != nil {
		f.close()
		return nil, ctx.Err()
	}
	return f, nil
}

func (f *fleet) close() {
	var wg sync.WaitGroup
	for _, d := range f.devs {
		if d != nil {
			wg.Go(d.close)
		}
	}
	wg.Wait()
}

// sample is one reading whose PUBACK time was kept.
type sample struct {
	device string
	seq    uint64
	acked  time.Time
}

// publishResult is what the devices saw during one paced run.
type publishResult struct {
	accepted   int64
	errors     int64
	errorText  []string
	ackLatency Summary
	sampled    []sample
}

// publish paces the fleet at rate readings/s in all for d (open loop: each
// device publishes on its own schedule, catching up when a PUBACK was
// slow) and keeps every sampleEvery-th reading's PUBACK time (0: none).
func (f *fleet) publish(ctx context.Context, rate float64, d time.Duration, sampleEvery int) publishResult {
	var (
		mu  sync.Mutex
		res publishResult
		lat []time.Duration
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	n := len(f.devs)
	interval := time.Duration(float64(time.Second) * float64(n) / rate)
	for i, m := range f.devs {
		wg.Go(func() {
			next := start.Add(interval * time.Duration(i) / time.Duration(n))
			var count int64
			for {
				if wait := time.Until(next); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
				if !time.Now().Before(end) || ctx.Err() != nil {
					return
				}
				next = next.Add(interval)
				env, err := m.dev.Next(time.Now())
				if err != nil {
					return
				}
				sent := time.Now()
				err = m.publish(env)
				acked := time.Now()
				mu.Lock()
				if err != nil {
					res.errors++
					if len(res.errorText) < maxErrorTexts {
						res.errorText = append(res.errorText, err.Error())
					}
					mu.Unlock()
					continue
				}
				res.accepted++
				lat = append(lat, acked.Sub(sent))
				count++
				if sampleEvery > 0 && (count+int64(i))%int64(sampleEvery) == 0 {
					if r, derr := env.Decode(); derr == nil {
						res.sampled = append(res.sampled, sample{device: r.Device, seq: r.Seq, acked: acked})
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.ackLatency = Summarize(lat)
	return res
}
