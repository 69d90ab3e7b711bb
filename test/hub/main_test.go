// Package hub_test runs the IoT hub against a real Fabric network: signed
// readings reach the ledger with verifiable proofs, rule commands reach
// devices over MQTT and their acks are recorded, revocation disconnects a
// device, and a hub killed with SIGKILL mid-stream loses nothing and
// submits nothing twice.
package hub_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var (
	fabric *network.Network
	// iotledgerBin is the CLI built once for the tests that run the hub as
	// a separate process.
	iotledgerBin string
)

func TestMain(m *testing.M) { os.Exit(testnet.RunWithCLI(m, &fabric, &iotledgerBin)) }

// waitFor bounds every wait for something the network does.
const waitFor = 3 * time.Minute

func connect(t *testing.T, identity string) *client.Client {
	t.Helper()
	p, err := fabric.Profile("Org1")
	require.NoError(t, err)
	c, err := client.Connect(t.Context(), p, identity)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startHub runs a hub in this process as Org1's hub identity.
func startHub(t *testing.T, hubID string) *hub.Hub {
	t.Helper()
	c := connect(t, "hub")
	h, err := hub.New(hub.Config{HubID: hubID, MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: c, Events: client.EventFeed{Client: c},
		BatchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(t.Context()))
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// device is an enrolled device with an MQTT 5 connection to a hub.
type device struct {
	id     string
	signer *reading.Signer
	conn   *paho.Client
	msgs   chan *paho.Publish
}

func enroll(t *testing.T, op *client.Client, id string) *device {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	_, err = op.EnrollDevice(t.Context(), api.EnrollRequest{ID: id, Type: "reefer-sensor", PublicKey: s.Public().PEM(), Activate: true})
	require.NoError(t, err)
	return &device{id: id, signer: s, msgs: make(chan *paho.Publish, 16)}
}

// dial connects the device to a hub; it returns the CONNACK error, if any.
func (d *device) dial(t *testing.T, addr, hubID string) error {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	tok := wiretest.Token(t, d.signer, hubID, d.id)
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) { d.msgs <- pr.Packet; return true, nil },
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: d.id, Username: d.id, UsernameFlag: true, Password: []byte(tok),
		PasswordFlag: true, KeepAlive: 30, CleanStart: true}); err != nil {
		_ = conn.Close()
		return err
	}
	_, err = c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: wire.Topic(d.id, wire.KindCommands), QoS: 1}, {Topic: wire.Topic(d.id, wire.KindErrors), QoS: 1},
	}})
	require.NoError(t, err)
	d.conn = c
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return nil
}

func (d *device) publishReading(t *testing.T, seq uint64, celsius float64) reading.Envelope {
	t.Helper()
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &celsius}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = d.conn.Publish(ctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindTelemetry), QoS: 1, Payload: env.Encode()})
	require.NoError(t, err)
	return env
}

func (d *device) publishAck(t *testing.T, cmd string) {
	t.Helper()
	p, err := json.Marshal(api.AckPayload{Device: d.id, Command: cmd, Status: api.CommandAcked, Result: "setpoint lowered", Ts: time.Now().UnixMilli()})
	require.NoError(t, err)
	sig, err := d.signer.Sign(reading.DomainAck, p)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = d.conn.Publish(ctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindAcks), QoS: 1, Payload: reading.Envelope{Payload: p, Signature: sig}.Encode()})
	require.NoError(t, err)
}

func (d *device) next(t *testing.T, topic string) *paho.Publish {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case p := <-d.msgs:
			if p.Topic == topic {
				return p
			}
		case <-deadline:
			t.Fatalf("device %s got nothing on %s", d.id, topic)
		}
	}
}
