// Package client_test exercises the Go SDK against a real Fabric network
// started by the network package: typed calls, chaincode refusals, read
// conflict retries and event streams that survive a peer restart.
package client_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var fabric *network.Network

func TestMain(m *testing.M) { os.Exit(testnet.Run(m, &fabric)) }

// connect returns a client of org acting as identity, closed with the test.
func connect(t *testing.T, org, identity string, opts ...client.Option) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(t.Context(), p, identity, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// device is an enrolled device and its private key.
type device struct {
	api.Device
	signer *reading.Signer
}

func enroll(t *testing.T, c *client.Client, id string, groups ...string) device {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	d, err := c.EnrollDevice(t.Context(), api.EnrollRequest{
		ID: id, Type: "fridge", Groups: groups, Attributes: map[string]string{"site": "lyon"},
		PublicKey: s.Public().PEM(), Firmware: "1.0.0", Activate: true,
	})
	require.NoError(t, err)
	// The next call may be endorsed by the other org's peer too, which
	// commits the enrolment on its own schedule.
	testnet.Settle(t.Context(), t, fabric)
	return device{Device: *d, signer: s}
}

func (d device) reading(t *testing.T, seq uint64, celsius float64) reading.Envelope {
	t.Helper()
	env, err := d.signer.SignReading(reading.Payload{
		Device: d.ID, Seq: seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &celsius}},
	})
	require.NoError(t, err)
	return env
}

func (d device) ack(t *testing.T, commandID string, status api.CommandStatus, result string) reading.Envelope {
	t.Helper()
	payload, err := json.Marshal(api.AckPayload{Device: d.ID, Command: commandID, Status: status, Result: result, Ts: time.Now().UnixMilli()})
	require.NoError(t, err)
	sig, err := d.signer.Sign(reading.DomainAck, payload)
	require.NoError(t, err)
	return reading.Envelope{Payload: payload, Signature: sig}
}

// eventually retries f until it succeeds or ctx's deadline passes; used
// only where the network itself is settling (a restarted peer).
func eventually(ctx context.Context, t *testing.T, what string, f func() error) {
	t.Helper()
	var last error
	for {
		if last = f(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
