package main

import (
	"context"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/device"
)

// demoDevice is one device the demo drives by hand, so that the moments it
// narrates (an excursion, a command, a revocation) happen when it says they
// do. It is a client/device Device that does not reconnect on its own: the
// demo shows what happens when the hub cuts it off.
type demoDevice struct {
	id       string
	signer   *reading.Signer
	dev      *device.Device
	commands chan api.Command // commands received, acked when the narration says so
	gone     chan error       // why the hub dropped the connection
}

func newDemoDevice(id string, hub device.Config) (*demoDevice, error) {
	s, err := reading.GenerateKey(reading.ECDSAP256)
	if err != nil {
		return nil, err
	}
	hub.ID, hub.Signer = id, s
	hub.AckTimeout = 10 * time.Second
	dev, err := device.New(hub)
	if err != nil {
		return nil, err
	}
	d := &demoDevice{id: id, signer: s, dev: dev, commands: make(chan api.Command, 8), gone: make(chan error, 1)}
	dev.OnCommand(func(_ context.Context, c api.Command) (api.CommandStatus, string) {
		select {
		case d.commands <- c:
		default:
		}
		return "", "" // acked by the narration
	})
	dev.OnConnectionLost(func(err error) {
		select {
		case d.gone <- err:
		default:
		}
	})
	return d, nil
}

// enrollRequest describes the device for device:Enroll.
func (d *demoDevice) enrollRequest(typ string, groups []string, attrs map[string]string) api.EnrollRequest {
	return api.EnrollRequest{ID: d.id, Type: typ, Groups: groups, Attributes: attrs,
		PublicKey: d.signer.Public().PEM(), Firmware: "1.4.2", Activate: true}
}

// connect authenticates with a token signed by the device key and
// subscribes to the device's commands.
func (d *demoDevice) connect(ctx context.Context) error { return d.dev.Connect(ctx) }

// publish signs a reading and waits for the hub's PUBACK, which the hub
// sends only once the reading is in its durable outbox.
func (d *demoDevice) publish(ctx context.Context, values ...reading.Value) (uint64, error) {
	return d.dev.Publish(ctx, reading.Payload{Values: values})
}

// ack acknowledges a command with a signature of the device key.
func (d *demoDevice) ack(ctx context.Context, cmd api.Command, result string) error {
	return d.dev.Ack(ctx, cmd.ID, api.CommandAcked, result)
}

func (d *demoDevice) close() { _ = d.dev.Close() }

// measure is a numeric reading value.
func measure(name, unit string, v float64) reading.Value {
	return reading.Value{Name: name, Unit: unit, Number: &v}
}
