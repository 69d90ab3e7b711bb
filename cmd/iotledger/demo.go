package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/sim"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
)

// The demo's cast: Org1 is a hospital, Org2 a logistics firm that also runs
// a sorting line. The hospital shares its cold-chain sensors with the
// logistics firm (which carries the vaccines) and nothing else.
const (
	hospitalOrg  = "Org1"
	logisticsOrg = "Org2"
)

type demoOptions struct {
	keep     bool
	hosts    bool
	duration time.Duration
	stateDir string
	devices  int
	rate     float64
	console  string // address of the hospital's web console ("" for none)
}

func newDemoCmd(g *globalOptions) *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo [--keep] [--duration 60s]",
		Short: "Run iotledger end to end: network, two orgs' devices and hubs, policies, rules, commands, revocation, proofs",
		Long: `Brings a local Fabric network up (or uses the one already up), enrolls devices of a hospital (Org1)
and a logistics firm (Org2), shares the hospital's cold-chain sensors with the logistics firm by policy,
installs automation rules, runs one IoT hub per org and simulated devices over MQTT with a live view,
then triggers a cold-chain excursion (alert + command delivered and acked by the device), a bearing
failure (the machine is quarantined and its line told to slow down), revokes a device and shows it cut
off, verifies a reading's Merkle proof offline, prints a summary and tears the network down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.duration < 10*time.Second {
				return usageErrorf("invalid --duration %s: use at least 10s so the simulated devices can report", o.duration)
			}
			if o.devices < 1 || o.devices > 200 {
				return usageErrorf("invalid --devices %d: use 1-200", o.devices)
			}
			if o.rate <= 0 || o.rate > 50 {
				return usageErrorf("invalid --rate %g: use (0, 50] readings per second per device", o.rate)
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), o, g)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.hosts, "hosts", false, "bring the network up in hosts mode (a network namespace per org and orderer; Linux, as root)")
	f.BoolVar(&o.keep, "keep", false, "leave the network running afterwards (explore it with the CLI; stop it with `iotledger network down`)")
	f.DurationVar(&o.duration, "duration", 60*time.Second, "how long the simulated devices run")
	f.StringVar(&o.stateDir, "state-dir", network.DefaultStateDir(), "network state directory")
	f.IntVar(&o.devices, "devices", 4, "simulated devices per scenario")
	f.Float64Var(&o.rate, "rate", 2, "readings per second per simulated device")
	f.StringVar(&o.console, "console", defaultDemoConsole, "address of Org1's web console during the demo (\"\" for none; a free port when the default is taken)")
	return cmd
}

// demo holds what the run has built so far.
type demo struct {
	out   io.Writer
	opts  demoOptions
	log   *slog.Logger
	start time.Time
	net   *network.Network

	ops     map[string]*client.Client // operator per org
	hubs    map[string]*hub.Hub       // hub per org
	idx     map[string]*demoIndex     // index per org, started on first use
	console *demoConsole              // the hospital's web console, nil without one
	roots   map[string]*x509.CertPool // CA a device of the org pins: the org's, which issued its hub's TLS certificate
	tally

	mu     sync.Mutex
	missed []string // expectations the run did not meet
}

// miss records that something the demo promised did not happen; the demo
// then exits non-zero after its summary.
func (d *demo) miss(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.say("NOT AS EXPECTED: %s", msg)
	d.mu.Lock()
	d.missed = append(d.missed, msg)
	d.mu.Unlock()
}

// tally counts what the chaincode events say happened.
type tally struct {
	committed     atomic.Int64
	batches       atomic.Int64
	alerts        atomic.Int64
	commands      atomic.Int64
	delivered     atomic.Int64
	completed     atomic.Int64
	statusChanges atomic.Int64
	revocations   atomic.Int64
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n==> [%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "    %s\n", fmt.Sprintf(format, args...))
}

func runDemo(ctx context.Context, out io.Writer, o demoOptions, g *globalOptions) (err error) {
	var level slog.Level
	if level.UnmarshalText([]byte(g.logLevel)) != nil || level == slog.LevelInfo {
		// The demo narrates what the hubs do; their refusals of quarantined
		// devices' reconnects would drown it. --log-level debug|warn shows them.
		level = slog.LevelError
	}
	d := &demo{out: out, opts: o, start: time.Now(), ops: map[string]*client.Client{}, hubs: map[string]*hub.Hub{}, roots: map[string]*x509.CertPool{},
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}

	d.step("Bringing up a Fabric v2.5 network: 3 Raft orderers, %s (hospital) and %s (logistics), a peer and a CA each", hospitalOrg, logisticsOrg)
	net, err := network.Up(ctx, network.Options{StateDir: o.stateDir, Progress: indent(out), Logger: d.log, Hosts: o.hosts})
	ownNetwork := true
	if errors.Is(err, network.ErrAlreadyUp) {
		d.say("a network is already up at %s: using it (and leaving it up)", o.stateDir)
		net, err = network.Load(o.stateDir)
		ownNetwork = false
	}
	if err != nil {
		return err
	}
	d.net = net
	defer func() {
		if d.console != nil {
			d.console.stop()
		}
		for _, ix := range d.idx {
			ix.stop()
		}
		for _, h := range d.hubs {
			_ = h.Close()
		}
		for _, c := range d.ops {
			_ = c.Close()
		}
		if !ownNetwork {
			return
		}
		if o.keep {
			d.step("Network kept (KEEP=1). Try: go run ./cmd/iotledger device list --org %s; stop it with: go run ./cmd/iotledger network down", hospitalOrg)
			return
		}
		d.step("Tearing the network down")
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if derr := net.Down(dctx); derr != nil && err == nil {
			err = derr
		}
	}()
	return d.run(ctx)
}

func (d *demo) run(ctx context.Context) error {
	if err := d.connect(ctx); err != nil {
		return err
	}
	if err := d.governance(ctx); err != nil {
		return err
	}
	if err := d.startHubs(ctx); err != nil {
		return err
	}
	if err := d.startConsole(ctx); err != nil {
		return err
	}
	go d.watchEvents(ctx)

	// Devices the demo drives by hand, next to the simulated fleet.
	fridge, conveyor, monitor, err := d.enrollDemoDevices(ctx)
	if err != nil {
		return err
	}
	defer fridge.close()
	defer conveyor.close()
	defer monitor.close()

	d.step("Running %d simulated devices per scenario for %s at %.1f readings/s each (live view every 5 s)", d.opts.devices, d.opts.duration, d.opts.rate)
	reports, simErr := d.runFleet(ctx, func(ctx context.Context) error {
		return d.narrate(ctx, fridge, conveyor, monitor)
	})
	if simErr != nil {
		return simErr
	}
	if err := d.crossOrgReads(ctx); err != nil {
		return err
	}
	if err := d.proof(ctx, fridge.id); err != nil {
		return err
	}
	d.summary(ctx, reports)
	if len(d.missed) > 0 {
		return fmt.Errorf("demo: %d expectation(s) not met: %s", len(d.missed), strings.Join(d.missed, "; "))
	}
	if d.opts.keep && d.console != nil {
		// The hubs and the hospital's index keep running too, so the
		// console shows a live network.
		d.step("Demo done; %s's console is still serving at %s (KEEP=1): Ctrl-C stops it and leaves the network up", hospitalOrg, d.console.url)
		<-ctx.Done()
	}
	return nil
}

func (d *demo) connect(ctx context.Context) error {
	for _, org := range []string{hospitalOrg, logisticsOrg} {
		p, err := d.net.Profile(org)
		if err != nil {
			return err
		}
		at, err := d.place(org)
		if err != nil {
			return err
		}
		c, err := at.connect(ctx, p, "operator", client.WithLogger(d.log))
		if err != nil {
			return fmt.Errorf("connect as %s operator: %w", org, err)
		}
		d.ops[org] = c
	}
	// The hospital's index follows from the start, as it would in production.
	_, err := d.index(ctx, hospitalOrg)
	return err
}

// governance installs the hospital's sharing policy and both orgs' rules.
func (d *demo) governance(ctx context.Context) error {
	d.step("Policies: %s shares its cold-chain sensors (group cold-chain) with %s, read-only", hospitalOrg, logisticsOrg)
	pol, err := d.ops[hospitalOrg].PutPolicy(ctx, api.Policy{
		ID:          "share-cold-chain-with-logistics",
		Description: "the carrier may follow the vaccine shipments' temperature",
		Statements: []api.Statement{{
			Sid: "carrier-reads-cold-chain", Effect: api.Allow,
			Principals: []string{"msp:Org2MSP"},
			Actions:    []string{api.ActionTelemetryRead, api.ActionDeviceRead},
			Resources:  []string{"group:cold-chain"},
		}},
	})
	if err != nil {
		return fmt.Errorf("put policy: %w", err)
	}
	d.say("policy %s v%d of %s: %d statement(s)", pol.ID, pol.Version, pol.Owner, len(pol.Statements))

	d.step("Rules: evaluated inside every telemetry transaction, by every endorsing peer")
	rules := []struct {
		org  string
		rule api.Rule
	}{
		{hospitalOrg, api.Rule{
			ID: "cold-chain-excursion", Description: "vaccines must stay between 2 and 8 °C",
			Selector:  api.DeviceSelector{Groups: []string{"cold-chain"}},
			Condition: "reading.values.temperature > 8.0",
			Actions: []api.RuleAction{
				{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "cold chain broken: temperature above 8 °C"},
				{Type: api.ActionTypeCommand, Command: "boost-cooling", Params: json.RawMessage(`{"setpointC":4}`), TTL: 300},
			},
			CooldownSeconds: 30,
		}},
		{hospitalOrg, api.Rule{
			ID: "patient-deterioration", Description: "page the ward when vitals leave the safe range",
			Selector:        api.DeviceSelector{Types: []string{"vitals-monitor"}},
			Condition:       "reading.values.spo2 < 90.0 || reading.values.heart_rate > 120.0",
			Actions:         []api.RuleAction{{Type: api.ActionTypeAlert, Severity: api.SeverityWarning, Message: "patient vitals out of range"}},
			CooldownSeconds: 60,
		}},
		{logisticsOrg, api.Rule{
			ID: "bearing-failure-quarantine", Description: "a failing bearing takes its machine out of service and slows the line",
			Selector:  api.DeviceSelector{Types: []string{"vibration-sensor"}},
			Condition: "reading.values.vibration_rms > 7.0 && reading.values.bearing_temp > 80.0",
			Actions: []api.RuleAction{
				{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "bearing failure: machine quarantined"},
				{Type: api.ActionTypeSetStatus, Status: api.StatusSuspended},
				{Type: api.ActionTypeCommand, Command: "reduce-speed", Params: json.RawMessage(`{"percent":50}`), Target: "group:sorting-line", TTL: 300},
			},
			CooldownSeconds: 60,
		}},
	}
	for _, r := range rules {
		got, err := d.ops[r.org].PutRule(ctx, r.rule)
		if err != nil {
			return fmt.Errorf("put rule %s: %w", r.rule.ID, err)
		}
		d.say("rule %-28s of %s: when %s", got.ID, got.Owner, got.Condition)
	}
	return nil
}

func (d *demo) startHubs(ctx context.Context) error {
	d.step("Starting one IoT hub per org (embedded MQTT broker over TLS, bbolt outbox, batches of up to %d readings)", api.DefaultBatchReadings)
	for _, org := range []string{hospitalOrg, logisticsOrg} {
		p, err := d.net.Profile(org)
		if err != nil {
			return err
		}
		tlsCfg, roots, err := demoHubTLS(org, p)
		if err != nil {
			return err
		}
		d.roots[org] = roots
		at, err := d.place(org)
		if err != nil {
			return err
		}
		c, err := at.connect(ctx, p, "hub", client.WithLogger(d.log), client.WithParallelEndorsement())
		if err != nil {
			return fmt.Errorf("connect as %s hub: %w", org, err)
		}
		data := filepath.Join(d.net.StateDir(), "demo-hubs", strings.ToLower(org))
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		cp, err := client.NewFileCheckpointer(filepath.Join(data, "events.checkpoint"))
		if err != nil {
			return err
		}
		signer, err := profileHubSigner(p)
		if err != nil {
			return fmt.Errorf("%s hub: %w", org, err)
		}
		h, err := hub.New(hub.Config{
			HubID: "hub-" + strings.ToLower(org), MQTTAddr: at.addr("0"), TLS: tlsCfg, HTTPAddr: at.addr("0"), DataDir: data, Listen: at.listen,
			Ledger: c, Events: client.EventFeed{Client: c, Checkpoint: cp}, Logger: d.log, Signer: signer,
		})
		if err != nil {
			return err
		}
		if err := h.Start(ctx); err != nil {
			_ = h.Close()
			return err
		}
		d.hubs[org] = h
		d.say("hub-%s %s: mqtts://%s (TLS certificate from %s's CA, which its devices pin), metrics http://%s/metrics", strings.ToLower(org), at, h.MQTTAddr(), org, h.HTTPAddr())
	}
	return nil
}

// watchEvents counts what every committed transaction produced, from the
// hospital operator's event stream (chaincode events are channel-wide).
func (d *demo) watchEvents(ctx context.Context) {
	events, err := d.ops[hospitalOrg].Events(ctx, client.EventOptions{})
	if err != nil {
		d.log.Warn("event stream", "err", err)
		return
	}
	for ev := range events {
		e := ev.Event
		if e.Batch != nil {
			d.committed.Add(int64(e.Batch.Size))
			d.batches.Add(1)
		}
		d.alerts.Add(int64(len(e.Alerts)))
		issued := e.Commands
		if e.Type != api.EventTelemetryBatch && e.Type != api.EventCommandIssued {
			issued = nil // delivery and completion events carry the command they changed
		}
		d.commands.Add(int64(len(issued)))
		d.statusChanges.Add(int64(len(e.StatusChanges)))
		d.revocations.Add(int64(len(e.Revocations)))
		switch e.Type {
		case api.EventCommandDelivered:
			d.delivered.Add(1)
		case api.EventCommandCompleted:
			d.completed.Add(1)
		}
		for _, a := range e.Alerts {
			d.say("event  block %d: ALERT %s on %s (rule %s): %s", ev.BlockNumber, strings.ToUpper(a.Severity), a.Device, a.Rule, a.Message)
		}
		for _, s := range e.StatusChanges {
			d.say("event  block %d: %s %s → %s (%s)", ev.BlockNumber, s.Device, s.From, s.To, s.Cause)
		}
		for _, line := range commandLines(issued) {
			d.say("event  block %d: %s", ev.BlockNumber, line)
		}
	}
}

// commandLines summarises the commands one transaction issued: one line
// per command name and issuer, naming every target device.
func commandLines(cmds []api.Command) []string {
	type key struct{ name, by string }
	var order []key
	targets := map[key][]string{}
	for _, c := range cmds {
		k := key{c.Name, c.IssuedBy}
		if _, ok := targets[k]; !ok {
			order = append(order, k)
		}
		targets[k] = append(targets[k], c.Device)
	}
	lines := make([]string, 0, len(order))
	for _, k := range order {
		lines = append(lines, fmt.Sprintf("command %q issued by %s to %s", k.name, k.by, strings.Join(targets[k], ", ")))
	}
	return lines
}

func (d *demo) enrollDemoDevices(ctx context.Context) (fridge, conveyor, monitor *demoDevice, err error) {
	d.step("Enrolling devices the demo drives by hand (each with its own P-256 key; the ledger is their PKI)")
	if fridge, err = newDemoDevice("st-marys-vaccine-fridge-1", d.hubFor(hospitalOrg)); err != nil {
		return
	}
	if monitor, err = newDemoDevice("st-marys-icu-monitor-7", d.hubFor(hospitalOrg)); err != nil {
		return
	}
	if conveyor, err = newDemoDevice("fastfreight-conveyor-3", d.hubFor(logisticsOrg)); err != nil {
		return
	}
	enroll := []struct {
		org  string
		dev  *demoDevice
		req  api.EnrollRequest
		what string
	}{
		{hospitalOrg, fridge, fridge.enrollRequest("reefer-sensor", []string{"cold-chain"}, map[string]string{"site": "pharmacy"}), "vaccine fridge"},
		{hospitalOrg, monitor, privateDevice(monitor.enrollRequest("vitals-monitor", []string{"icu"}, map[string]string{"ward": "icu"})), "ICU monitor (private)"},
		{logisticsOrg, conveyor, conveyor.enrollRequest("vibration-sensor", []string{"sorting-line"}, map[string]string{"line": "A"}), "conveyor bearing sensor"},
	}
	for _, e := range enroll {
		dev, err := d.ops[e.org].EnrollDevice(ctx, e.req)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("enroll %s: %w", e.req.ID, err)
		}
		if err := e.dev.connect(ctx); err != nil {
			return nil, nil, nil, fmt.Errorf("%s connect: %w", e.req.ID, err)
		}
		d.say("%-28s %-24s owner %s, key %s…, %s, connected", dev.ID, e.what, dev.Owner, dev.KeyID[:12], dev.Status)
	}
	return fridge, conveyor, monitor, nil
}

// runFleet runs the simulated devices of both orgs while script runs, and
// prints a live view.
func (d *demo) runFleet(ctx context.Context, script func(context.Context) error) ([]sim.Report, error) {
	fleet := []struct {
		org, scenario, prefix string
		groups                []string
	}{
		{hospitalOrg, "cold-chain", "st-marys-shipment", nil}, // the scenario's own group is "cold-chain"
		{hospitalOrg, "patient-vitals", "st-marys-ward-b", nil},
		{logisticsOrg, "machine-vibration", "fastfreight-sorter", []string{"sorting-line"}},
		{logisticsOrg, "air-quality", "fastfreight-yard", nil},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	reports := make([]sim.Report, len(fleet))
	errs := make([]error, len(fleet)+1)
	for i, f := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = sim.Run(ctx, sim.Config{
				Hub: d.hubs[f.org].MQTTAddr(), HubID: "hub-" + strings.ToLower(f.org),
				Devices: d.opts.devices, Rate: d.opts.rate, Scenario: f.scenario, Duration: d.opts.duration,
				Seed: uint64(i + 1), KeysDir: filepath.Join(d.net.StateDir(), "demo-keys"), Prefix: f.prefix,
				Groups: f.groups, Enroller: d.ops[f.org], Logger: d.log, RootCAs: d.roots[f.org],
			})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[len(fleet)] = script(ctx)
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			d.live(ctx)
			return reports, errors.Join(errs...)
		case <-tick.C:
			d.live(ctx)
		}
	}
}

func (d *demo) live(ctx context.Context) {
	var depth int64
	devices := 0
	for _, h := range d.hubs {
		hl := h.Health(ctx)
		depth += hl.OutboxDepth
		devices += hl.Devices
	}
	d.say("live   %5.0fs | devices connected %3d | readings committed %6d in %4d batches | outbox %4d | alerts %3d | commands %3d issued, %3d delivered, %3d completed | status changes %d",
		time.Since(d.start).Seconds(), devices, d.committed.Load(), d.batches.Load(), depth, d.alerts.Load(),
		d.commands.Load(), d.delivered.Load(), d.completed.Load(), d.statusChanges.Load())
}

// narrate makes the demo's moments happen while the fleet runs.
func (d *demo) narrate(ctx context.Context, fridge, conveyor, monitor *demoDevice) error {
	if _, err := monitor.publish(ctx, measure("heart_rate", "beat/min", 72), measure("spo2", "%", 97)); err != nil {
		return fmt.Errorf("monitor reading: %w", err)
	}
	third := d.opts.duration / 3
	if err := sleep(ctx, third); err != nil {
		return err
	}
	d.step("The vaccine fridge's door is left open: it reports 12.5 °C")
	seq, err := fridge.publish(ctx, measure("temperature", "Cel", 12.5), measure("humidity", "%RH", 61))
	if err != nil {
		return fmt.Errorf("fridge excursion: %w", err)
	}
	d.say("hub acknowledged reading %d (PUBACK = durable in the hub's outbox)", seq)
	select {
	case cmd := <-fridge.commands:
		d.say("%s received command %s %q %s over MQTT", fridge.id, cmd.ID, cmd.Name, string(cmd.Params))
		if err := fridge.ack(ctx, cmd, "cooling boosted to 4 °C"); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		d.say("%s acknowledged it (signed with its key)", fridge.id)
	case <-time.After(30 * time.Second):
		d.miss("no command reached %s within 30 s (see the hub log)", fridge.id)
	case <-ctx.Done():
		return ctx.Err()
	}

	d.step("A conveyor bearing is failing: vibration 9.4 m/s², bearing at 93 °C")
	if _, err := conveyor.publish(ctx, measure("vibration_rms", "m/s2", 9.4), measure("bearing_temp", "Cel", 93), measure("speed", "rpm", 1480)); err != nil {
		return fmt.Errorf("conveyor excursion: %w", err)
	}
	select {
	case err := <-conveyor.gone:
		d.say("%s was quarantined (suspended by the rule): %v", conveyor.id, err)
	case <-time.After(30 * time.Second):
		d.miss("%s is still connected 30 s after its quarantine reading (see the hub log)", conveyor.id)
	case <-ctx.Done():
		return ctx.Err()
	}

	d.step("The hospital revokes %s (reported stolen)", monitor.id)
	revokedAt := time.Now()
	if _, err := d.ops[hospitalOrg].SetDeviceStatus(ctx, monitor.id, api.StatusRevoked, "reported stolen"); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	d.say("revocation committed in %s", time.Since(revokedAt).Round(time.Millisecond))
	select {
	case err := <-monitor.gone:
		d.say("hub cut %s off %s after the revocation was submitted: %v", monitor.id, time.Since(revokedAt).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		d.miss("%s is still connected 30 s after its revocation (see the hub log)", monitor.id)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := monitor.connect(ctx); err != nil {
		d.say("it tries to reconnect: %v", err)
	} else {
		monitor.close()
		return errors.New("a revoked device was allowed to reconnect")
	}
	return nil
}

func (d *demo) crossOrgReads(ctx context.Context) error {
	d.step("Cross-org access: %s may read what the hospital shared, and nothing else", logisticsOrg)
	// TODO(index): read the readings themselves from each org's index, as
	// this step did with telemetry:List: the shared fridge's from the
	// carrier's index, the private monitor's values from the hospital's
	// (telemetry:PrivateBatch). The ledger keeps no readings; it still
	// decides who may read them.
	carrier := d.ops[logisticsOrg]
	shared, err := carrier.CheckAccess(ctx, api.AccessRequest{Action: api.ActionTelemetryRead, Resource: "st-marys-vaccine-fridge-1"})
	if err != nil {
		return fmt.Errorf("%s asking about the shared fridge: %w", logisticsOrg, err)
	}
	if !shared.Allowed {
		d.miss("%s may not read st-marys-vaccine-fridge-1's telemetry: %s", logisticsOrg, shared.Reason)
	} else {
		d.say("%s may read st-marys-vaccine-fridge-1's telemetry: %s", logisticsOrg, shared.Reason)
	}
	vitals, err := carrier.CheckAccess(ctx, api.AccessRequest{Action: api.ActionTelemetryRead, Resource: "st-marys-icu-monitor-7"})
	if err != nil {
		return fmt.Errorf("%s asking about the private monitor: %w", logisticsOrg, err)
	}
	if vitals.Allowed {
		return errors.New("the logistics org may read patient vitals: the policy engine is broken")
	}
	d.say("%s asks to read st-marys-icu-monitor-7: refused (%s) — its values live only in %s's private data; blocks carry their hashes",
		logisticsOrg, api.CodeAccessDenied, hospitalOrg)
	ex, err := carrier.Explain(ctx, api.AccessRequest{Action: api.ActionTelemetryRead, Resource: "st-marys-icu-monitor-7"})
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	d.say("explain: %s", ex.Decision.Reason)
	return nil
}

// hubFor says how a device of org reaches the org's hub.
func (d *demo) hubFor(org string) device.Config {
	return device.Config{Hub: d.hubs[org].MQTTAddr(), HubID: "hub-" + strings.ToLower(org), RootCAs: d.roots[org]}
}

// profileHubSigner is the signer of an org's hub: its "hub" identity, whose
// certificate the org's CA issued with iotledger.role=hub, so the devices,
// pinning that CA, accept the commands it delivers.
func profileHubSigner(p *client.Profile) (*wire.HubSigner, error) {
	id, err := p.Identity("hub")
	if err != nil {
		return nil, err
	}
	return wire.LoadHubSigner(id.Cert, id.Key)
}

// demoHubTLS is what an org's hub serves MQTT with, and what its devices
// pin: the certificate and CA `network up` recorded in the org's profile.
func demoHubTLS(org string, p *client.Profile) (*tls.Config, *x509.CertPool, error) {
	if p.HubTLS == nil {
		return nil, nil, fmt.Errorf("the profile of %s has no hubTLS (a network started by an older version): take it down and up again", org)
	}
	pair, err := tls.LoadX509KeyPair(p.HubTLS.Cert, p.HubTLS.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s hub TLS certificate: %w", org, err)
	}
	roots, err := device.LoadRootCAs(p.HubTLS.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", org, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, roots, nil
}

// privateDevice keeps a device's reading values off the channel.
func privateDevice(r api.EnrollRequest) api.EnrollRequest {
	r.Private = true
	return r
}

func (d *demo) proof(ctx context.Context, device string) error {
	d.step("Receipt: the fridge's excursion reading, checked offline by an outsider with the trust anchor alone")
	// The hospital's index serves its readings (the ledger keeps none).
	st, err := d.index(ctx, hospitalOrg)
	if err != nil {
		return err
	}
	newest, err := st.Readings(ctx, index.ReadingQuery{Device: device, Limit: 1, Newest: true})
	if err != nil || len(newest) == 0 {
		return fmt.Errorf("the newest reading of %s in the hospital's index: %d found, %w", device, len(newest), err)
	}
	r := newest[0]
	// The anchor comes from the other org: an auditor asks any member.
	anchor, _, err := d.ops[logisticsOrg].TrustAnchor(ctx)
	if err != nil {
		return fmt.Errorf("trust anchor: %w", err)
	}
	p, err := index.ReadingProof(ctx, st, device, r.Seq)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	rc, err := d.ops[hospitalOrg].ReadingReceipt(ctx, p)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	data, err := rc.Marshal()
	if err != nil {
		return err
	}
	// Beside the state directory: the receipt outlives the network.
	path := filepath.Join(filepath.Dir(d.net.StateDir()), "demo-receipt.json")
	anchorPath := filepath.Join(filepath.Dir(d.net.StateDir()), "demo-anchor.json")
	anchorJSON, err := json.Marshal(anchor)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(anchorPath, anchorJSON, 0o644); err != nil {
		return err
	}
	start := time.Now()
	res, err := receipt.Verify(data, anchor)
	if err != nil {
		return fmt.Errorf("the ledger's receipt does not verify: %w", err)
	}
	d.say("trust anchor from %s's peer: channel %s, genesis block %s…", logisticsOrg, anchor.Channel, anchor.Genesis[:16])
	d.say("reading %s #%d: block %d, endorsed by %s, device key %s… (version %d) — %d bytes, verified offline in %s",
		res.Device, res.Reading.Seq, res.Block, strings.Join(res.Endorsers, " + "), res.KeyID[:12], res.KeyVersion, len(data), time.Since(start).Round(time.Millisecond))
	d.say("saved to %s (it outlives the network); anyone can check it again: iotledger receipt verify %s --anchor %s", path, path, anchorPath)
	return nil
}

func (d *demo) summary(ctx context.Context, reports []sim.Report) {
	d.step("Summary")
	var sent, accepted, cmdsReceived, cmdsAcked int64
	refused := map[string]int64{}
	for _, r := range reports {
		sent += r.Sent
		accepted += r.Accepted
		cmdsReceived += r.CommandsReceived
		cmdsAcked += r.CommandsAcked
		for k, v := range r.Refused {
			refused[k] += v
		}
		for k, v := range r.ErrorMessages {
			refused[k] += v
		}
	}
	// Let the hubs drain before counting what reached the ledger.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var depth int64
		for _, h := range d.hubs {
			depth += h.Health(ctx).OutboxDepth
		}
		if depth == 0 {
			break
		}
		if sleep(ctx, 250*time.Millisecond) != nil {
			break
		}
	}
	_ = sleep(ctx, 2*time.Second) // last blocks' events
	var refusedTotal int64
	for _, v := range refused {
		refusedTotal += v
	}
	d.say("simulated readings sent      %7d", sent)
	d.say("accepted by hubs (PUBACK)    %7d", accepted)
	if lost := sent - accepted - refusedTotal; lost > 0 {
		d.say("in flight when cut off       %7d (a quarantined or revoked device's last publish gets no PUBACK)", lost)
	}
	d.say("committed on the ledger      %7d in %d batch transactions (fleet + hand-driven devices)", d.committed.Load(), d.batches.Load())
	for org, h := range d.hubs {
		for reason, n := range hubCounters(ctx, h.HTTPAddr(), "iotledger_hub_ledger_rejected_total") {
			refused["ledger "+reason+" ("+org+" hub)"] += n
		}
	}
	reasons := make([]string, 0, len(refused))
	for k := range refused {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	if len(reasons) == 0 {
		d.say("rejected                     %7d", 0)
	}
	for _, k := range reasons {
		d.say("rejected: %-18s %7d", k, refused[k])
	}
	d.say("alerts raised by rules       %7d", d.alerts.Load())
	d.say("commands issued              %7d (delivered %d, completed %d; fleet devices received %d, acked %d)",
		d.commands.Load(), d.delivered.Load(), d.completed.Load(), cmdsReceived, cmdsAcked)
	d.say("device status changes        %7d (revocations %d)", d.statusChanges.Load(), d.revocations.Load())
}

// hubCounters reads one labelled counter from a hub's metrics endpoint, by
// its "reason" or "code" label.
func hubCounters(ctx context.Context, addr, metric string) map[string]int64 {
	out := map[string]int64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		labels, value, ok := strings.Cut(strings.TrimPrefix(line, metric+"{"), "} ")
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || n == 0 {
			continue
		}
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "reason" || k == "code" {
				out[strings.Trim(v, `"`)] += int64(n)
			}
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// indent prefixes progress lines from the network package.
func indent(w io.Writer) io.Writer { return &prefixWriter{w: w, prefix: "    "} }

type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.mid {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := io.WriteString(p.w, line); err != nil {
			return 0, err
		}
		p.mid = !strings.HasSuffix(line, "\n")
	}
	return len(b), nil
}

// demoIndex is an org's index the demo runs, as `iotledger index` would.
type demoIndex struct {
	st   index.Store
	stop func()
}

// index returns org's index, caught up with its peer: started (SQLite in
// the org's state directory, following from its operator's peer and
// verifying every block from the network's genesis block) on first use.
func (d *demo) index(ctx context.Context, org string) (index.Store, error) {
	if d.idx == nil {
		d.idx = map[string]*demoIndex{}
	}
	c := d.ops[org]
	ix, ok := d.idx[org]
	if !ok {
		anchor, err := localAnchor(d.net.StateDir())
		if err != nil {
			return nil, err
		}
		path := filepath.Join(d.net.StateDir(), strings.ToLower(org), "index.db")
		st, err := store.OpenSQLite(ctx, path)
		if err != nil {
			return nil, err
		}
		p, err := d.net.Profile(org)
		if err != nil {
			return nil, err
		}
		fctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- index.NewFollower(st, c, anchor, p.Chaincode, d.log).WithPrivate(c, p.MSPID).Run(fctx) }()
		ix = &demoIndex{st: st, stop: func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				d.miss("the %s index stopped: %v", org, err)
			}
			_ = st.Close()
		}}
		d.idx[org] = ix
		at, err := d.place(org)
		if err != nil {
			return nil, err
		}
		d.say("%s's index follows the channel into %s, verifying every block; it runs %s", org, path, at)
	}
	h, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := index.CaughtUp(wctx, ix.st, h); err != nil {
		return nil, err
	}
	return ix.st, nil
}
