// Package sim simulates IoT devices for iotledger: each device has its own
// key pair (enrolled on the ledger when asked) and is a client/device
// Device: it connects to a hub over MQTT 5 and TLS with a signed token,
// publishes signed readings of a scenario at a rate, and acknowledges
// (signed) the commands it receives. Run is used by the CLI and the demo.
package sim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Enroller enrolls devices on the ledger (the SDK's *client.Client, as an
// operator, satisfies it).
type Enroller interface {
	EnrollDevice(ctx context.Context, req api.EnrollRequest) (*api.Device, error)
	Device(ctx context.Context, id string) (*api.Device, error)
}

// Config configures a simulation.
type Config struct {
	Hub   string // broker address host:port
	HubID string // the hub's id, signed into connect tokens
	// RootCAs pins the CAs the hub's TLS certificate must chain to (for a
	// hub of `iotledger network up`, the org's CA). Required unless
	// InsecurePlaintext.
	RootCAs *x509.CertPool
	// InsecurePlaintext connects without TLS, to a hub run with
	// --insecure-plaintext.
	InsecurePlaintext bool

	Devices   int               // number of devices
	Rate      float64           // readings per second per device
	Scenario  string            // see Scenarios
	Duration  time.Duration     // 0: until ctx ends
	Seed      uint64            // makes values reproducible
	KeysDir   string            // device keys <id>.key (PKCS#8 PEM): loaded if present, else generated and saved
	Prefix    string            // device ids are <prefix>-<nnn>; default: the scenario name
	Groups    []string          // extra groups for enrolled devices
	Algorithm reading.Algorithm // key type for new keys (default ECDSA P-256)
	// Enroller, if set, enrolls (and activates) devices not yet on the ledger.
	Enroller Enroller
	// FirstSeq numbers the first reading; default: the run's start time in
	// Unix ms, so consecutive runs never reuse a sequence number (as long as
	// a device sends fewer than 1000 readings a second).
	FirstSeq uint64
	// RecordAccepted keeps the sequence numbers the hub acknowledged, per device.
	RecordAccepted bool
	// OnCommand, if set, decides the ack of each command (default: acked, "ok").
	OnCommand func(c api.Command) (api.CommandStatus, string)
	Logger    *slog.Logger
}

// Report counts what happened.
type Report struct {
	Scenario         string              `json:"scenario"`
	Devices          int                 `json:"devices"`
	Sent             int64               `json:"sent"`            // readings published
	Accepted         int64               `json:"accepted"`        // acknowledged by the hub (PUBACK success)
	Refused          map[string]int64    `json:"refused"`         // refused by the hub, by reason
	ErrorMessages    map[string]int64    `json:"errorMessages"`   // messages on the devices' errors topics, by reason
	Reconnects       int64               `json:"reconnects"`      // connections re-established after a loss
	ConnectFailures  int64               `json:"connectFailures"` // connection attempts refused or failed
	LastConnectError string              `json:"lastConnectError,omitempty"`
	CommandsReceived int64               `json:"commandsReceived"` // commands delivered to devices
	CommandsAcked    int64               `json:"commandsAcked"`    // acks published and acknowledged by the hub
	Elapsed          time.Duration       `json:"elapsed"`
	AcceptedSeqs     map[string][]uint64 `json:"acceptedSeqs,omitempty"`
}

// ConfigError says which setting is wrong.
type ConfigError struct{ Field, Reason string }

func (e *ConfigError) Error() string { return "sim: " + e.Field + ": " + e.Reason }

// Validate checks the configuration as Run does, without running it.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

func (c *Config) validate() (Scenario, error) {
	sc, err := LookupScenario(c.Scenario)
	if err != nil {
		return sc, &ConfigError{"Scenario", err.Error()}
	}
	switch {
	case c.Hub == "":
		return sc, &ConfigError{"Hub", "required (host:port of the hub's MQTT listener)"}
	case c.HubID == "":
		return sc, &ConfigError{"HubID", "required (the hub's --hub-id)"}
	case c.RootCAs == nil && !c.InsecurePlaintext:
		return sc, &ConfigError{"RootCAs", "required: the CA the hub's TLS certificate must chain to (or InsecurePlaintext for a plaintext hub)"}
	case c.RootCAs != nil && c.InsecurePlaintext:
		return sc, &ConfigError{"InsecurePlaintext", "conflicts with RootCAs: choose TLS or plaintext"}
	case c.Devices < 1 || c.Devices > 10000:
		return sc, &ConfigError{"Devices", fmt.Sprintf("%d: want 1-10000", c.Devices)}
	case c.Rate <= 0 || c.Rate > 1000:
		return sc, &ConfigError{"Rate", fmt.Sprintf("%g/s: want more than 0 and at most 1000 per device", c.Rate)}
	case c.KeysDir == "":
		return sc, &ConfigError{"KeysDir", "required (device keys are kept there)"}
	case c.Duration < 0:
		return sc, &ConfigError{"Duration", "must not be negative"}
	}
	if c.Prefix == "" {
		c.Prefix = sc.Name
	}
	if err := reading.ValidateID("prefix", c.Prefix+"-0000"); err != nil {
		return sc, &ConfigError{"Prefix", err.Error()}
	}
	if c.Algorithm == "" {
		c.Algorithm = reading.ECDSAP256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnCommand == nil {
		c.OnCommand = func(api.Command) (api.CommandStatus, string) { return api.CommandAcked, "ok" }
	}
	return sc, nil
}

// ParseRate reads "2/s", "30/m", "0.5/s" or a bare number (per second).
func ParseRate(s string) (float64, error) {
	num, unit, found := strings.Cut(strings.TrimSpace(s), "/")
	per := 1.0
	if found {
		switch unit {
		case "s", "sec":
		case "m", "min":
			per = 60
		case "h":
			per = 3600
		default:
			return 0, fmt.Errorf("rate %q: unit must be /s, /m or /h", s)
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || v != v {
		return 0, fmt.Errorf("rate %q: want a positive number of readings, e.g. 2/s", s)
	}
	return v / per, nil
}

// DeviceID names device number i.
func DeviceID(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }

// LoadOrCreateKey reads <dir>/<id>.key or creates it.
func LoadOrCreateKey(dir, id string, alg reading.Algorithm) (*reading.Signer, bool, error) {
	path := filepath.Join(dir, id+".key")
	if b, err := os.ReadFile(path); err == nil {
		s, err := reading.ParsePrivateKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("device key %s: %w", path, err)
		}
		return s, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("device key %s: %w", path, err)
	}
	s, err := reading.GenerateKey(alg)
	if err != nil {
		return nil, false, err
	}
	pemBytes, err := s.PrivateKeyPEM()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keys dir: %w", err)
	}
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		return nil, false, fmt.Errorf("device key %s: %w", path, err)
	}
	return s, true, nil
}

// Run simulates the devices until Duration elapses or ctx ends, and
// reports what happened. An error means the simulation could not start
// (bad config, keys, enrollment); hub refusals are counted in the report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	sc, err := cfg.validate()
	if err != nil {
		return Report{}, err
	}
	rep := &tally{Report: Report{Scenario: sc.Name, Devices: cfg.Devices, Refused: map[string]int64{}, ErrorMessages: map[string]int64{}}}
	if cfg.RecordAccepted {
		rep.AcceptedSeqs = map[string][]uint64{}
	}
	devs := make([]*simDevice, cfg.Devices)
	for i := range devs {
		id := DeviceID(cfg.Prefix, i+1)
		s, _, err := LoadOrCreateKey(cfg.KeysDir, id, cfg.Algorithm)
		if err != nil {
			return Report{}, err
		}
		devs[i] = &simDevice{id: id, signer: s, gen: sc.NewGenerator(cfg.Seed, i), cfg: &cfg, rep: rep, log: cfg.Logger.With("device", id)}
	}
	if cfg.Enroller != nil {
		for _, d := range devs {
			if err := enroll(ctx, cfg.Enroller, sc, cfg.Groups, d); err != nil {
				return Report{}, err
			}
		}
	}
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	first := cfg.FirstSeq
	if first == 0 {
		first = uint64(time.Now().UnixMilli())
	}
	start := time.Now()
	for _, d := range devs {
		if err := d.open(first); err != nil {
			for _, o := range devs {
				if o.dev != nil {
					o.close()
				}
			}
			return Report{}, err
		}
	}
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() {
			d.run(runCtx)
			d.close()
		})
	}
	wg.Wait()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rep.Elapsed = time.Since(start)
	out := rep.Report
	return out, nil
}

func enroll(ctx context.Context, e Enroller, sc Scenario, groups []string, d *simDevice) error {
	existing, err := e.Device(ctx, d.id)
	if err == nil {
		if existing.PublicKey != d.signer.Public().PEM() {
			k, perr := reading.ParsePublicKey(existing.PublicKey)
			if perr != nil || !k.Equal(d.signer.Public()) {
				return fmt.Errorf("device %s is enrolled with another key than %s.key: rotate its key or use another --keys dir", d.id, d.id)
			}
		}
		return nil
	}
	if api.CodeOf(err) != api.CodeNotFound {
		return fmt.Errorf("looking up device %s: %w", d.id, err)
	}
	_, err = e.EnrollDevice(ctx, api.EnrollRequest{
		ID: d.id, Type: sc.DeviceType, Groups: append([]string{sc.Name}, groups...),
		PublicKey: d.signer.Public().PEM(), Firmware: "sim-1.0", Activate: true,
		Attributes: map[string]string{"scenario": sc.Name},
	})
	if err != nil && api.CodeOf(err) != api.CodeAlreadyExists {
		return fmt.Errorf("enrolling device %s: %w", d.id, err)
	}
	return nil
}

// tally is the report under a lock.
type tally struct {
	mu sync.Mutex
	Report
}

func (t *tally) add(f func(r *Report)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.Report)
}

// simBackoff paces a simulated device's connection attempts: quicker than
// a real device's (device.DefaultBackoff), for short runs.
var simBackoff = device.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}

// drainGrace is how long a reading in flight when the run ends may wait
// for its PUBACK, so that what was sent is accounted for.
const drainGrace = 5 * time.Second

// simDevice is one simulated device: a scenario's generator driving a
// device.Device.
type simDevice struct {
	id     string
	signer *reading.Signer
	dev    *device.Device
	gen    *Generator
	cfg    *Config
	rep    *tally
	log    *slog.Logger
}

func (d *simDevice) open(first uint64) error {
	dev, err := device.New(device.Config{
		ID: d.id, Signer: d.signer, Hub: d.cfg.Hub, HubID: d.cfg.HubID,
		RootCAs: d.cfg.RootCAs, InsecurePlaintext: d.cfg.InsecurePlaintext,
		Reconnect: &simBackoff, FirstSeq: first, Logger: d.cfg.Logger,
	})
	if err != nil {
		return err
	}
	dev.OnError(func(e wire.ErrorMessage) {
		d.rep.add(func(r *Report) { r.ErrorMessages[e.Reason]++ })
		d.log.Debug("hub refused a message", "reason", e.Reason, "message", e.Message)
	})
	dev.OnCommand(func(_ context.Context, c api.Command) (api.CommandStatus, string) {
		return d.cfg.OnCommand(c)
	})
	d.dev = dev
	return nil
}

// run connects the device (retrying until ctx ends) and publishes a reading
// per interval; the device resends one whose PUBACK was lost.
func (d *simDevice) run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		if err := d.dev.Connect(ctx); err == nil {
			break
		}
		if !sleep(ctx, simBackoff.Delay(attempt)) {
			return
		}
	}
	interval := time.Duration(float64(time.Second) / d.cfg.Rate)
	next := time.Now()
	for sleepUntil(ctx, next) {
		next = next.Add(time.Duration(float64(interval) * d.gen.Jitter()))
		d.rep.add(func(r *Report) { r.Sent++ })
		pctx, done := drainCtx(ctx)
		seq, err := d.dev.Publish(pctx, reading.Payload{Values: d.gen.Next()})
		done()
		var refused *device.RefusedError
		switch {
		case err == nil:
			d.rep.add(func(r *Report) {
				r.Accepted++
				if r.AcceptedSeqs != nil {
					r.AcceptedSeqs[d.id] = append(r.AcceptedSeqs[d.id], seq)
				}
			})
		case errors.As(err, &refused):
			d.rep.add(func(r *Report) { r.Refused[refused.Reason]++ })
		default: // the run ended, or the reading cannot be signed
			d.log.Debug("publish ended", "err", err)
			return
		}
	}
}

// drainCtx outlives ctx by drainGrace, so that a reading in flight when the
// run ends still gets its PUBACK.
func drainCtx(ctx context.Context) (context.Context, func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drainGrace, cancel) })
	return pctx, func() { stop(); cancel() }
}

// close disconnects the device and adds its connection and command counts
// to the report.
func (d *simDevice) close() {
	_ = d.dev.Close()
	st := d.dev.Stats()
	d.rep.add(func(r *Report) {
		r.Reconnects += st.Reconnects
		r.ConnectFailures += st.ConnectFailures
		if st.LastConnectError != "" {
			r.LastConnectError = st.LastConnectError
		}
		r.CommandsReceived += st.CommandsReceived
		r.CommandsAcked += st.CommandsAcked
	})
}
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	return sleep(ctx, d)
}

// Reasons returns a report's refusal reasons sorted by name.
func (r Report) Reasons() []string {
	out := make([]string, 0, len(r.Refused))
	for k := range r.Refused {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
