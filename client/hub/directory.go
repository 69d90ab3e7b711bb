package hub

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// deviceInfo is what the hub caches about a device: its ledger record, its
// parsed key, and whether this hub may write its telemetry.
type deviceInfo struct {
	missing  error // the ledger said NOT_FOUND (cached briefly)
	device   *api.Device
	key      *reading.PublicKey
	canWrite bool
	fetched  time.Time
}

// missingTTL is how long "not enrolled" is remembered.
const missingTTL = 5 * time.Second

type accessKey struct{ from, to string }

type accessInfo struct {
	allowed bool
	fetched time.Time
}

// staleProbeInterval is how often, while the ledger is failing, a lookup
// that could be answered from a stale entry asks the ledger anyway, to
// learn that it is back; the others are answered at once.
const staleProbeInterval = 5 * time.Second

// staleReadTimeout is the longest a lookup that has a stale entry to fall
// back on waits for the ledger: a peer that hangs (rather than refuses the
// connection) costs that device this much once per probe, well within a
// device's connect and PUBACK timeouts (10 s and 30 s by default), where
// LedgerTimeout (10 s by default) could exceed the first.
const staleReadTimeout = 3 * time.Second

// directory caches device records and access decisions read from the
// ledger. Ledger events invalidate entries; the TTLs bound staleness when an
// event is missed.
//
// Stale-if-error: when the ledger fails to answer (a transient error: the
// peer unreachable, a timeout, INTERNAL; see transient), an expired entry of
// a device that was active and writable by this hub when it was read, or
// an expired device:message allow, is served as it was for up to
// staleIfError after it was read, so that known devices keep being
// accepted through a ledger outage. What the ledger refused (NOT_FOUND, an
// inactive device, telemetry:write or device:message denied) is never
// extended: it goes back to the ledger, and a failure to answer is then
// the hub's (ledger_unavailable). A successful read always replaces the
// stale entry, and the events missed during the outage, delivered when the
// ledger is back, invalidate entries as usual. A lookup with a stale entry
// to fall back on waits at most staleReadTimeout for the ledger; while the
// ledger is failing, one such lookup per staleProbeInterval asks it and the
// others answer from their stale entries at once, so that a peer that
// hangs does not cost every message of every device a LedgerTimeout.
type directory struct {
	ledger       Ledger
	ttl          time.Duration
	accessTTL    time.Duration
	staleIfError time.Duration // < 0: never serve stale entries
	now          func() time.Time
	log          *slog.Logger
	staleServed  *prometheus.CounterVec // by lookup: device, device_message

	mu      sync.Mutex
	gen     uint64
	devices map[string]deviceInfo
	access  map[accessKey]accessInfo
	// failing: the ledger's last answer was a transient error (since
	// failingSince); lastProbe is when a lookup last asked it while failing.
	failing      bool
	failingSince time.Time
	lastProbe    time.Time
	servedStale  int // stale answers in this outage
}

func newDirectory(cfg Config, log *slog.Logger) *directory {
	return &directory{
		ledger: cfg.Ledger, ttl: cfg.DeviceTTL, accessTTL: cfg.AccessTTL, staleIfError: cfg.StaleIfError, now: cfg.Now, log: log,
		staleServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_device_lookups_stale_total",
			Help: "Device lookups (device: a device record; device_message: a device:message allow) answered from an expired cache entry because the ledger did not answer (stale-if-error, Config.StaleIfError).",
		}, []string{"lookup"}),
		devices: map[string]deviceInfo{}, access: map[accessKey]accessInfo{},
	}
}

// servable reports whether an entry read at fetched may stand in for the
// ledger's answer now.
func (d *directory) servable(fetched time.Time) bool {
	return d.staleIfError >= 0 && d.now().Sub(fetched) < d.staleIfError
}

// skipLedger reports whether a lookup that has a servable stale entry
// should answer from it without asking the ledger: the ledger is failing
// and was asked less than staleProbeInterval ago. Otherwise the caller
// asks (and, while failing, is the probe).
func (d *directory) skipLedger() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if d.failing && now.Sub(d.lastProbe) < staleProbeInterval {
		return true
	}
	d.lastProbe = now
	return false
}

// answered records the outcome of a ledger call: a transient error starts
// (or continues) an outage, anything else ends it.
func (d *directory) answered(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil && transient(api.CodeOf(err)) {
		if !d.failing {
			d.failing, d.failingSince = true, d.now()
		}
		return
	}
	if d.failing {
		if d.servedStale > 0 {
			d.log.Info("ledger answering again; cached device records are read afresh",
				"outage", d.now().Sub(d.failingSince).Round(time.Second), "stale_answers", d.servedStale)
		}
		d.failing, d.servedStale = false, 0
	}
}

// servedStaleEntry counts an answer from a stale entry and logs the first
// of an outage.
func (d *directory) servedStaleEntry(lookup, id string, fetched time.Time, err error) {
	d.staleServed.WithLabelValues(lookup).Inc()
	d.mu.Lock()
	d.servedStale++
	first := d.servedStale == 1
	d.mu.Unlock()
	if first {
		d.log.Warn("ledger not answering: known devices are accepted from the hub's cache (stale-if-error); unknown ones are refused",
			"device", id, "lookup", lookup, "cached_for", d.now().Sub(fetched).Round(time.Second), "bound", d.staleIfError, "err", err)
	}
}

// ledgerContext is the context of a ledger read: bounded by
// staleReadTimeout when a stale entry can answer if the ledger does not.
func ledgerContext(ctx context.Context, fallback bool) (context.Context, context.CancelFunc) {
	if fallback {
		return context.WithTimeout(ctx, staleReadTimeout)
	}
	return ctx, func() {}
}

// lookup returns the device's cached record, reading the ledger when the
// entry is missing or stale (stale-if-error: see directory).
func (d *directory) lookup(ctx context.Context, id string) (deviceInfo, error) {
	d.mu.Lock()
	info, ok := d.devices[id]
	gen := d.gen
	d.mu.Unlock()
	if ok && info.missing != nil && d.now().Sub(info.fetched) < missingTTL {
		return deviceInfo{}, info.missing
	}
	if ok && info.missing == nil && d.now().Sub(info.fetched) < d.ttl {
		return info, nil
	}
	// An entry that may stand in for the ledger: a device that could
	// connect and send when it was read.
	fallback := ok && info.missing == nil && info.device.Status == api.StatusActive && info.canWrite && d.servable(info.fetched)
	if fallback && d.skipLedger() {
		d.servedStaleEntry("device", id, info.fetched, nil)
		return info, nil
	}
	rctx, cancel := ledgerContext(ctx, fallback)
	fresh, err := d.read(rctx, id)
	cancel()
	d.answered(err)
	if err != nil {
		if api.CodeOf(err) == api.CodeNotFound {
			// Remember briefly, so that connection attempts for unknown ids
			// do not each cost a ledger query; an enrollment event clears it.
			d.mu.Lock()
			if d.gen == gen {
				d.devices[id] = deviceInfo{missing: err, fetched: d.now()}
			}
			d.mu.Unlock()
		}
		if fallback && transient(api.CodeOf(err)) {
			d.servedStaleEntry("device", id, info.fetched, err)
			return info, nil
		}
		return deviceInfo{}, err
	}
	d.mu.Lock()
	if d.gen == gen { // not invalidated while we were reading
		d.devices[id] = fresh
	}
	d.mu.Unlock()
	return fresh, nil
}

// read reads a device's record and this hub's telemetry:write on it from
// the ledger.
func (d *directory) read(ctx context.Context, id string) (deviceInfo, error) {
	dev, err := d.ledger.Device(ctx, id)
	if err != nil {
		return deviceInfo{}, err
	}
	key, err := reading.ParsePublicKey(dev.PublicKey)
	if err != nil {
		return deviceInfo{}, api.Errorf(api.CodeInvalidArgument, fmt.Sprintf("device %s: enrolled key: %v", id, err))
	}
	dec, err := d.ledger.CheckAccess(ctx, api.AccessRequest{Action: api.ActionTelemetryWrite, Resource: id})
	if err != nil {
		return deviceInfo{}, fmt.Errorf("device %s: checking telemetry:write: %w", id, err)
	}
	return deviceInfo{device: dev, key: key, canWrite: dec.Allowed, fetched: d.now()}, nil
}

// cached reports whether lookup would answer for id from the cache, without
// asking the ledger.
func (d *directory) cached(id string) bool {
	d.mu.Lock()
	info, ok := d.devices[id]
	d.mu.Unlock()
	if !ok {
		return false
	}
	if info.missing != nil {
		return d.now().Sub(info.fetched) < missingTTL
	}
	return d.now().Sub(info.fetched) < d.ttl
}

// mayMessage reports whether device from may send to device to's inbox.
// An allow is served stale when the ledger does not answer, as a device
// record is (see directory): a device that could message another a moment
// ago keeps doing so through an outage, up to the same bound; a policy
// change that takes it away arrives as an event once the ledger is back
// and invalidates every decision. A deny, or no decision, goes to the
// ledger, and a failure to answer refuses the message.
func (d *directory) mayMessage(ctx context.Context, from, to string) (bool, error) {
	k := accessKey{from, to}
	d.mu.Lock()
	a, ok := d.access[k]
	gen := d.gen
	d.mu.Unlock()
	if ok && d.now().Sub(a.fetched) < d.accessTTL {
		return a.allowed, nil
	}
	fallback := ok && a.allowed && d.servable(a.fetched)
	if fallback && d.skipLedger() {
		d.servedStaleEntry("device_message", from, a.fetched, nil)
		return true, nil
	}
	rctx, cancel := ledgerContext(ctx, fallback)
	dec, err := d.ledger.CheckAccess(rctx, api.AccessRequest{Device: from, Action: api.ActionDeviceMessage, Resource: to})
	cancel()
	d.answered(err)
	if err != nil {
		if fallback && transient(api.CodeOf(err)) {
			d.servedStaleEntry("device_message", from, a.fetched, err)
			return true, nil
		}
		return false, err
	}
	d.mu.Lock()
	if d.gen == gen {
		d.access[k] = accessInfo{allowed: dec.Allowed, fetched: d.now()}
	}
	d.mu.Unlock()
	return dec.Allowed, nil
}

// invalidate forgets a device (status change, key rotation, transfer).
func (d *directory) invalidate(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	delete(d.devices, id)
	for k := range d.access {
		if k.from == id || k.to == id {
			delete(d.access, k)
		}
	}
}

// invalidateAll forgets everything (policy changes).
func (d *directory) invalidateAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.devices = map[string]deviceInfo{}
	d.access = map[accessKey]accessInfo{}
}
