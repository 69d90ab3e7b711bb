// Package sim simulates IoT devices for iotledger: each device has its own
// key pair (enrolled on the ledger when asked), connects to a hub over MQTT 5
// with a signed token, publishes signed readings of a scenario at a rate,
// and acknowledges (signed) the commands it receives. Run is used by the
// CLI, the demo and the benchmarks.
package sim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
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
	Hub       string            // broker address host:port
	HubID     string            // the hub's id, signed into connect tokens
	TLS       *tls.Config       // optional
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
	var wg sync.WaitGroup
	for _, d := range devs {
		d.seq = first
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run(runCtx)
		}()
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

// simDevice is one simulated device.
type simDevice struct {
	id     string
	signer *reading.Signer
	gen    *Generator
	cfg    *Config
	rep    *tally
	log    *slog.Logger
	seq    uint64
}

// reason extracts the hub's refusal reason from a PUBACK reason string
// ("bad_signature: ...").
func reason(pr *paho.PublishResponse) string {
	if pr != nil && pr.Properties != nil && pr.Properties.ReasonString != "" {
		r, _, _ := strings.Cut(pr.Properties.ReasonString, ":")
		return r
	}
	if pr != nil {
		return fmt.Sprintf("code_0x%02x", pr.ReasonCode)
	}
	return "unknown"
}

// run keeps the device connected and publishing until ctx ends. A reading
// whose PUBACK did not arrive is sent again after reconnecting.
func (d *simDevice) run(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / d.cfg.Rate)
	var pending []byte // envelope waiting for its PUBACK
	var pendingSeq uint64
	backoff := 200 * time.Millisecond
	connected := false
	for ctx.Err() == nil {
		c, err := d.connect(ctx)
		if err != nil {
			d.log.Debug("connect failed", "err", err)
			msg := err.Error()
			d.rep.add(func(r *Report) { r.ConnectFailures++; r.LastConnectError = msg })
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if connected {
			d.rep.add(func(r *Report) { r.Reconnects++ })
		}
		connected, backoff = true, 200*time.Millisecond
		next := time.Now()
		for ctx.Err() == nil {
			if pending == nil {
				if !sleepUntil(ctx, next) {
					break
				}
				next = next.Add(time.Duration(float64(interval) * d.gen.Jitter()))
				env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: time.Now().UnixMilli(), Values: d.gen.Next()})
				if err != nil {
					d.log.Error("signing", "err", err)
					return
				}
				pending, pendingSeq = env.Encode(), d.seq
				d.seq++
				d.rep.add(func(r *Report) { r.Sent++ })
			}
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			pr, err := c.Publish(pctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindTelemetry), QoS: 1, Payload: pending})
			cancel()
			switch {
			case err == nil:
				seq := pendingSeq
				d.rep.add(func(r *Report) {
					r.Accepted++
					if r.AcceptedSeqs != nil {
						r.AcceptedSeqs[d.id] = append(r.AcceptedSeqs[d.id], seq)
					}
				})
				pending = nil
			case pr != nil && pr.ReasonCode >= 0x80:
				why := reason(pr)
				d.rep.add(func(r *Report) { r.Refused[why]++ })
				pending = nil
			default: // connection lost: reconnect and send it again
				d.log.Debug("publish failed", "seq", pendingSeq, "err", err)
			}
			if err != nil && pending != nil {
				break
			}
		}
		_ = c.Disconnect(&paho.Disconnect{})
		if ctx.Err() != nil {
			return
		}
	}
}

func (d *simDevice) connect(ctx context.Context) (*paho.Client, error) {
	var conn net.Conn
	var err error
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if d.cfg.TLS != nil {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: d.cfg.TLS}).DialContext(ctx, "tcp", d.cfg.Hub)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", d.cfg.Hub)
	}
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		_ = conn.Close()
		return nil, err
	}
	tok, err := wire.SignToken(d.signer, d.cfg.HubID, d.id, time.Now(), nonce)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	var c *paho.Client
	c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			d.received(c, pr.Packet)
			return true, nil
		}},
	})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Connect(cctx, &paho.Connect{ClientID: d.id, Username: d.id, UsernameFlag: true, Password: []byte(tok),
		PasswordFlag: true, KeepAlive: 30, CleanStart: true}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if _, err := c.Subscribe(cctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: wire.Topic(d.id, wire.KindErrors), QoS: 1},
		{Topic: wire.Topic(d.id, wire.KindCommands), QoS: 1},
	}}); err != nil {
		_ = c.Disconnect(&paho.Disconnect{})
		return nil, err
	}
	return c, nil
}

// received handles a command or an error reply from the hub.
func (d *simDevice) received(c *paho.Client, p *paho.Publish) {
	switch p.Topic {
	case wire.Topic(d.id, wire.KindErrors):
		var e wire.ErrorMessage
		if json.Unmarshal(p.Payload, &e) == nil {
			d.rep.add(func(r *Report) { r.ErrorMessages[e.Reason]++ })
			d.log.Debug("hub refused a message", "reason", e.Reason, "message", e.Message)
		}
	case wire.Topic(d.id, wire.KindCommands):
		var cmd api.Command
		if err := json.Unmarshal(p.Payload, &cmd); err != nil {
			d.log.Warn("unreadable command", "err", err)
			return
		}
		d.rep.add(func(r *Report) { r.CommandsReceived++ })
		d.log.Info("command received", "command", cmd.ID, "name", cmd.Name)
		status, result := d.cfg.OnCommand(cmd)
		// Ack outside the receive callback: Publish waits for a PUBACK
		// that this callback's goroutine would otherwise have to read.
		go d.ack(c, cmd.ID, status, result)
	}
}

func (d *simDevice) ack(c *paho.Client, cmd string, status api.CommandStatus, result string) {
	payload, err := json.Marshal(api.AckPayload{Device: d.id, Command: cmd, Status: status, Result: result, Ts: time.Now().UnixMilli()})
	if err != nil {
		return
	}
	sig, err := d.signer.Sign(reading.DomainAck, payload)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := reading.Envelope{Payload: payload, Signature: sig}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindAcks), QoS: 1, Payload: env.Encode()}); err != nil {
		d.log.Warn("ack not acknowledged by the hub", "command", cmd, "err", err)
		return
	}
	d.rep.add(func(r *Report) { r.CommandsAcked++ })
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
