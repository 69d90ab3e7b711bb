package bench

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// Device is a simulated device the bench enrolled: its key and the next
// sequence number it will sign. A device is driven by one worker at a time,
// so its sequence needs no lock while a run is going.
type Device struct {
	ID     string
	Signer *reading.Signer
	next   uint64
	ready  []reading.Envelope // signed ahead of a run, in sequence order
}

// Pool holds the enrolled devices of a bench run. Workers of a run are given
// disjoint slices of it, so no two concurrent transactions touch the same
// device's keys.
type Pool struct {
	mu      sync.Mutex
	prefix  string
	made    int
	devices []*Device
}

// NewPool starts an empty pool whose device IDs begin with prefix (unique
// per run so that re-running against the same network never collides).
func NewPool(prefix string) *Pool { return &Pool{prefix: prefix} }

// NewDevice makes a device with a fresh ECDSA P-256 key; it is not enrolled
// and not in the pool until Add.
func (p *Pool) NewDevice() (*Device, api.EnrollRequest, error) {
	p.mu.Lock()
	p.made++
	id := p.prefix + "-" + strconv.Itoa(p.made)
	p.mu.Unlock()
	signer, err := reading.GenerateKey(reading.ECDSAP256)
	if err != nil {
		return nil, api.EnrollRequest{}, fmt.Errorf("device key: %w", err)
	}
	req := api.EnrollRequest{
		ID:         id,
		Type:       "bench-sensor",
		Groups:     []string{"bench"},
		Attributes: map[string]string{"site": "bench"},
		PublicKey:  signer.Public().PEM(),
		Firmware:   "1.0.0",
		Activate:   true,
	}
	return &Device{ID: id, Signer: signer, next: 1}, req, nil
}

// Add puts an enrolled device in the pool.
func (p *Pool) Add(d *Device) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.devices = append(p.devices, d)
}

// Len is the number of enrolled devices.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.devices)
}

// Slice returns the perWorker devices of worker w, or an error when the
// pool holds too few.
func (p *Pool) Slice(w, perWorker int) ([]*Device, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lo, hi := w*perWorker, (w+1)*perWorker
	if hi > len(p.devices) {
		return nil, fmt.Errorf("device pool: worker %d needs devices %d..%d, only %d enrolled", w, lo, hi-1, len(p.devices))
	}
	return p.devices[lo:hi], nil
}

// Next returns the device's next reading: one signed ahead by Presign if
// any is left, else one signed now.
func (d *Device) Next(now time.Time) (reading.Envelope, error) {
	if len(d.ready) > 0 {
		env := d.ready[0]
		d.ready = d.ready[1:]
		return env, nil
	}
	return d.Sign(now)
}

// Presign tops up each device's queue of readings signed ahead to n, using
// every core, so that a measured run spends no CPU on what real devices do
// on their own hardware. Readings left unused stay queued for the next run.
func Presign(devices []*Device, n int) error {
	if n <= 0 || len(devices) == 0 {
		return nil
	}
	workers := min(runtime.NumCPU(), len(devices))
	errs := make([]error, workers)
	next := make(chan *Device)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for d := range next {
				if errs[w] != nil {
					continue // keep draining so the sender never blocks
				}
				now := time.Now()
				for len(d.ready) < n {
					env, err := d.Sign(now)
					if err != nil {
						errs[w] = fmt.Errorf("presign %s: %w", d.ID, err)
						break
					}
					d.ready = append(d.ready, env)
				}
			}
		})
	}
	for _, d := range devices {
		next <- d
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// Sign makes the device's next reading, a cold-chain style payload.
func (d *Device) Sign(now time.Time) (reading.Envelope, error) {
	seq := d.next
	d.next++
	return d.Signer.SignReading(reading.Payload{
		Device:    d.ID,
		Seq:       seq,
		Timestamp: now.UnixMilli(),
		Values: []reading.Value{
			{Name: "temperature", Unit: "Cel", Number: ptrFloat(4 + float64(seq%10)/10)},
			{Name: "door", Bool: ptrBool(false)},
		},
	})
}

func ptrFloat(v float64) *float64 { return &v }
func ptrBool(v bool) *bool        { return &v }
