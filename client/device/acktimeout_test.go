package device_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/client/device/devicetest"
	"github.com/iotledger/iotledger/client/hub/hubtest"
)

// slowLedger answers device lookups only after delay once armed: the hub
// checks a reading's device before it stores the reading and sends the
// PUBACK, so the PUBACK is that late.
type slowLedger struct {
	*hubtest.Ledger
	delay atomic.Int64 // nanoseconds
}

func (s *slowLedger) Device(ctx context.Context, id string) (*api.Device, error) {
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Ledger.Device(ctx, id)
}

// TestPublishWaitsForItsPubackExactlyAckTimeout: the MQTT client's own
// packet timeout (paho's default is 10 s) must be the device's AckTimeout,
// whichever is longer. A PUBACK that comes 1 s late is waited for under the
// default AckTimeout (30 s, the simulator's) and not under one of 300 ms; a
// client left at paho's default would wait 10 s in both cases and take it.
func TestPublishWaitsForItsPubackExactlyAckTimeout(t *testing.T) {
	const late = time.Second
	for _, tc := range []struct {
		name       string
		ackTimeout time.Duration // 0: the default
		acked      bool
	}{
		{"shorter than the late PUBACK", 300 * time.Millisecond, false},
		{"default", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &slowLedger{Ledger: hubtest.NewLedger()}
			f := &fixture{ledger: l.Ledger, data: t.TempDir(), deviceTTL: time.Millisecond}
			cfg := f.hubConfig("")
			cfg.Ledger = l
			f.hub, f.ca = devicetest.StartHub(t, cfg)
			d := f.device(t, "cold-9", func(c *device.Config) { c.Reconnect, c.AckTimeout = nil, tc.ackTimeout })
			connect(t, d)
			time.Sleep(5 * time.Millisecond) // the hub's record of the device is stale
			l.delay.Store(int64(late))
			_, err := d.Publish(t.Context(), reading.Payload{Values: temperature(3)})
			if tc.acked {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, device.ErrNoPuback)
			require.ErrorContains(t, err, "within 300ms")
			var re *device.RefusedError
			require.False(t, errors.As(err, &re), "no refusal: the PUBACK was late")
		})
	}
}
