package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/hubtest/rawmqtt"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
	"github.com/iotledger/iotledger/test/testnet"
)

func TestRandomDeviceIDsCostTheLedgerABoundedNumberOfLookups(t *testing.T) {
	op := connect(t, "operator")
	hc := connect(t, "hub")
	ledger := &lookupCounter{Client: hc}
	const hubID, budget = "hub-unknown-ids", 3
	h := startLimitedHub(t, hubID, ledger, hub.Limits{UnknownDeviceBurst: budget, UnknownDeviceRate: 0.001})
	d := enroll(t, op, testnet.UniqueID(t, "known"))
	require.NoError(t, d.dial(t, h.MQTTAddr(), hubID))

	before := ledger.lookups.Load()
	for range 30 {
		s, err := reading.GenerateKey(reading.ECDSAP256)
		require.NoError(t, err)
		ghost := testnet.UniqueID(t, "ghost")
		ack := rawConnect(t, h.MQTTAddr(), ghost, wiretest.Token(t, s, hubID, ghost))
		require.NotEqual(t, packets.CodeSuccess.Code, ack.ReasonCode, "unknown device %s admitted", ghost)
	}
	// Each id admitted costs one lookup, two when a ledger event empties the
	// directory's cache while it is read or the ledger answers ACCESS_DENIED.
	lookups := ledger.lookups.Load() - before
	t.Logf("30 connects with random device ids from one address: %d ledger lookups", lookups)
	require.LessOrEqual(t, lookups, int64(2*budget))

	// The enrolled device is served all along, end to end.
	d.publishReading(t, 1, 4.5)
	require.Eventually(t, func() bool { return committed(t, op, d.id, 1) }, waitFor, 200*time.Millisecond, "reading never reached the ledger")
}

func TestSocketsThatNeverSendConnectAreClosedByTheHub(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-connect-deadline"
	hc := connect(t, "hub")
	h := startLimitedHub(t, hubID, hc, hub.Limits{ConnectTimeout: 500 * time.Millisecond})
	early := enroll(t, op, testnet.UniqueID(t, "early"))
	require.NoError(t, early.dial(t, h.MQTTAddr(), hubID))

	var socks []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", h.MQTTAddr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		socks = append(socks, c)
	}
	for _, c := range socks {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
		_, err := io.Copy(io.Discard, c) // until the hub closes it
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the hub left a socket without CONNECT open")
	}

	// Devices that connect, before or after, are served.
	late := enroll(t, op, testnet.UniqueID(t, "late"))
	require.NoError(t, late.dial(t, h.MQTTAddr(), hubID))
	early.publishReading(t, 1, 3.5)
	late.publishReading(t, 1, 3.5)
	for _, d := range []*device{early, late} {
		require.Eventually(t, func() bool { return committed(t, op, d.id, 1) }, waitFor, 200*time.Millisecond, "reading of %s never reached the ledger", d.id)
	}
}

func TestDeviceOverItsPublishRateIsRefusedWhileAnotherIsServed(t *testing.T) {
	op := connect(t, "operator")
	const hubID = "hub-publish-rate"
	hc := connect(t, "hub")
	h := startLimitedHub(t, hubID, hc, hub.Limits{PublishBurst: 2, PublishRate: 0.001})
	fast, calm := enroll(t, op, testnet.UniqueID(t, "fast")), enroll(t, op, testnet.UniqueID(t, "calm"))
	require.NoError(t, fast.dial(t, h.MQTTAddr(), hubID))
	require.NoError(t, calm.dial(t, h.MQTTAddr(), hubID))

	fast.publishReading(t, 1, 4)
	fast.publishReading(t, 2, 4)
	celsius := 4.0
	env, err := fast.signer.SignReading(reading.Payload{Device: fast.id, Seq: 3, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &celsius}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := fast.conn.Publish(ctx, &paho.Publish{Topic: wire.Topic(fast.id, wire.KindTelemetry), QoS: 1, Payload: env.Encode()})
	require.Error(t, err)
	require.Equal(t, packets.ErrQuotaExceeded.Code, resp.ReasonCode)
	var e wire.ErrorMessage
	require.NoError(t, json.Unmarshal(fast.next(t, wire.Topic(fast.id, wire.KindErrors)).Payload, &e))
	require.Equal(t, wire.ReasonRateLimited, e.Reason)

	calm.publishReading(t, 1, 5)
	calm.publishReading(t, 2, 5)
	for _, r := range []struct {
		d   *device
		seq uint64
	}{{fast, 1}, {fast, 2}, {calm, 1}, {calm, 2}} {
		require.Eventually(t, func() bool { return committed(t, op, r.d.id, r.seq) }, waitFor, 200*time.Millisecond, "reading %s/%d never reached the ledger", r.d.id, r.seq)
	}
	require.Eventually(t, func() bool { return h.Outbox().Depth() == 0 }, waitFor, 100*time.Millisecond)
	require.False(t, committed(t, op, fast.id, 3), "the refused reading is on the ledger")
}

// lookupCounter counts the device lookups a hub makes on the ledger.
type lookupCounter struct {
	*client.Client
	lookups atomic.Int64
}

func (l *lookupCounter) Device(ctx context.Context, id string) (*api.Device, error) {
	l.lookups.Add(1)
	return l.Client.Device(ctx, id)
}

// startLimitedHub runs a hub in this process, as Org1's hub identity, with
// the given limits.
func startLimitedHub(t *testing.T, hubID string, ledger hub.Ledger, limits hub.Limits) *hub.Hub {
	t.Helper()
	events := connect(t, "hub")
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: ledger,
		Events: client.EventFeed{Client: events}, BatchWait: 100 * time.Millisecond, Limits: limits})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// rawConnect sends one MQTT 5 CONNECT on a new socket and returns the
// hub's CONNACK.
func rawConnect(t *testing.T, addr, id, password string) packets.Packet {
	t.Helper()
	c, err := rawmqtt.Dial(addr, rawmqtt.V5)
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	ack, err := c.Connect(packets.ConnectParams{ClientIdentifier: id, Username: []byte(id), Password: []byte(password), Clean: true}, packets.Properties{}, waitFor)
	require.NoError(t, err, "no CONNACK")
	return ack
}
