package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

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

// directory caches device records and access decisions read from the
// ledger. Ledger events invalidate entries; the TTLs bound staleness when an
// event is missed.
type directory struct {
	ledger    Ledger
	ttl       time.Duration
	accessTTL time.Duration
	now       func() time.Time

	mu      sync.Mutex
	gen     uint64
	devices map[string]deviceInfo
	access  map[accessKey]accessInfo
}

func newDirectory(l Ledger, ttl, accessTTL time.Duration, now func() time.Time) *directory {
	return &directory{
		ledger: l, ttl: ttl, accessTTL: accessTTL, now: now,
		devices: map[string]deviceInfo{}, access: map[accessKey]accessInfo{},
	}
}

// lookup returns the device's cached record, reading the ledger when the
// entry is missing or stale.
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
	dev, err := d.ledger.Device(ctx, id)
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
		return deviceInfo{}, err
	}
	key, err := reading.ParsePublicKey(dev.PublicKey)
	if err != nil {
		return deviceInfo{}, fmt.Errorf("device %s: enrolled key: %w", id, err)
	}
	dec, err := d.ledger.CheckAccess(ctx, api.AccessRequest{Action: api.ActionTelemetryWrite, Resource: id})
	if err != nil {
		return deviceInfo{}, fmt.Errorf("device %s: checking telemetry:write: %w", id, err)
	}
	info = deviceInfo{device: dev, key: key, canWrite: dec.Allowed, fetched: d.now()}
	d.mu.Lock()
	if d.gen == gen { // not invalidated while we were reading
		d.devices[id] = info
	}
	d.mu.Unlock()
	return info, nil
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
func (d *directory) mayMessage(ctx context.Context, from, to string) (bool, error) {
	k := accessKey{from, to}
	d.mu.Lock()
	a, ok := d.access[k]
	gen := d.gen
	d.mu.Unlock()
	if ok && d.now().Sub(a.fetched) < d.accessTTL {
		return a.allowed, nil
	}
	dec, err := d.ledger.CheckAccess(ctx, api.AccessRequest{Device: from, Action: api.ActionDeviceMessage, Resource: to})
	if err != nil {
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
