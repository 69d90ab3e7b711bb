package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/device"
)

// benchDevice is one bench device: its key and sequence (Device) and its
// connection to the hub (a client/device Device).
type benchDevice struct {
	dev  *Device
	conn *device.Device
	lost chan time.Time // when the hub dropped the connection
}

// newBenchDevice prepares a device's connection; set its handlers, then
// connect it. A bench device does not reconnect on its own: a lost
// connection is something the bench measures.
func newBenchDevice(cfg device.Config, d *Device) (*benchDevice, error) {
	cfg.ID, cfg.Signer = d.ID, d.Signer
	cfg.KeepAlive, cfg.ConnectTimeout, cfg.AckTimeout = 60*time.Second, 20*time.Second, 30*time.Second
	conn, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	m := &benchDevice{dev: d, conn: conn, lost: make(chan time.Time, 1)}
	conn.OnConnectionLost(func(error) {
		select {
		case m.lost <- time.Now():
		default:
		}
	})
	return m, nil
}

func (m *benchDevice) connect(ctx context.Context) error {
	if err := m.conn.Connect(ctx); err != nil {
		return fmt.Errorf("device %s: %w", m.dev.ID, err)
	}
	return nil
}

// dialDevice connects a device to the hub with a fresh signed token.
func dialDevice(ctx context.Context, cfg device.Config, d *Device) (*benchDevice, error) {
	m, err := newBenchDevice(cfg, d)
	if err != nil {
		return nil, err
	}
	if err := m.connect(ctx); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// publish sends one envelope with QoS 1 and waits for the PUBACK, which the
// hub sends once the reading is durable in its outbox.
func (m *benchDevice) publish(ctx context.Context, env reading.Envelope) error {
	if err := m.conn.PublishEnvelope(ctx, env); err != nil {
		return fmt.Errorf("device %s: %w", m.dev.ID, err)
	}
	return nil
}

func (m *benchDevice) close() { _ = m.conn.Close() }

// fleet is the bench's devices connected to one hub.
type fleet struct{ devs []*benchDevice }

// connectFleet connects every device, a few at a time; cfg says how to
// reach the hub.
func connectFleet(ctx context.Context, cfg device.Config, devs []*Device) (*fleet, error) {
	f := &fleet{devs: make([]*benchDevice, len(devs))}
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
			f.devs[i], errs[i] = dialDevice(ctx, cfg, d)
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
				err = m.publish(ctx, env)
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
