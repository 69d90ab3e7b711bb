package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// demoDevice is one device the demo drives by hand, so that the moments it
// narrates (an excursion, a command, a revocation) happen when it says they
// do: it speaks the device protocol of docs/protocol.md over MQTT 5.
type demoDevice struct {
	id       string
	hubAddr  string
	hubID    string
	signer   *reading.Signer
	seq      uint64
	conn     *paho.Client
	commands chan api.Command
	gone     chan error // closed when the hub drops the connection
}

func newDemoDevice(id, hubAddr, hubID string) (*demoDevice, error) {
	s, err := reading.GenerateKey(reading.ECDSAP256)
	if err != nil {
		return nil, err
	}
	return &demoDevice{id: id, hubAddr: hubAddr, hubID: hubID, signer: s,
		seq: uint64(time.Now().UnixMilli()), commands: make(chan api.Command, 8)}, nil
}

// enrollRequest describes the device for device:Enroll.
func (d *demoDevice) enrollRequest(typ string, groups []string, attrs map[string]string) api.EnrollRequest {
	return api.EnrollRequest{ID: d.id, Type: typ, Groups: groups, Attributes: attrs,
		PublicKey: d.signer.Public().PEM(), Firmware: "1.4.2", Activate: true}
}

// connect authenticates with a token signed by the device key and
// subscribes to the device's commands.
func (d *demoDevice) connect(ctx context.Context) error {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", d.hubAddr)
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		_ = conn.Close()
		return err
	}
	tok, err := wire.SignToken(d.signer, d.hubID, d.id, time.Now(), nonce)
	if err != nil {
		_ = conn.Close()
		return err
	}
	gone := make(chan error, 1)
	c := paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			var cmd api.Command
			if pr.Packet.Topic == wire.Topic(d.id, wire.KindCommands) && json.Unmarshal(pr.Packet.Payload, &cmd) == nil {
				select {
				case d.commands <- cmd:
				default:
				}
			}
			return true, nil
		}},
		OnServerDisconnect: func(*paho.Disconnect) { signalGone(gone, errors.New("disconnected by the hub")) },
		OnClientError:      func(err error) { signalGone(gone, err) },
	})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := c.Connect(cctx, &paho.Connect{ClientID: d.id, Username: d.id, UsernameFlag: true,
		Password: []byte(tok), PasswordFlag: true, KeepAlive: 30, CleanStart: true})
	if err != nil {
		_ = conn.Close()
		if ack != nil {
			return fmt.Errorf("hub refused the connection: %s (reason code %d)", ack.Properties.ReasonString, ack.ReasonCode)
		}
		return fmt.Errorf("hub refused the connection: %w", err)
	}
	if _, err := c.Subscribe(cctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: wire.Topic(d.id, wire.KindCommands), QoS: 1},
	}}); err != nil {
		_ = c.Disconnect(&paho.Disconnect{})
		return err
	}
	d.conn, d.gone = c, gone
	return nil
}

func signalGone(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}

// publish signs a reading and waits for the hub's PUBACK, which the hub
// sends only once the reading is in its durable outbox.
func (d *demoDevice) publish(ctx context.Context, values ...reading.Value) (uint64, error) {
	d.seq++
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: time.Now().UnixMilli(), Values: values})
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := d.conn.Publish(cctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindTelemetry), QoS: 1, Payload: env.Encode()})
	if err != nil {
		return 0, err
	}
	if resp != nil && resp.ReasonCode >= 0x80 {
		return 0, fmt.Errorf("hub refused reading %d: reason code %#x %s", d.seq, resp.ReasonCode, resp.Properties.ReasonString)
	}
	return d.seq, nil
}

// ack acknowledges a command with a signature of the device key.
func (d *demoDevice) ack(ctx context.Context, cmd api.Command, result string) error {
	payload, err := json.Marshal(api.AckPayload{Device: d.id, Command: cmd.ID, Status: api.CommandAcked, Result: result, Ts: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	sig, err := d.signer.Sign(reading.DomainAck, payload)
	if err != nil {
		return err
	}
	env := reading.Envelope{Payload: payload, Signature: sig}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = d.conn.Publish(cctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindAcks), QoS: 1, Payload: env.Encode()})
	return err
}

func (d *demoDevice) close() {
	if d.conn != nil {
		_ = d.conn.Disconnect(&paho.Disconnect{})
	}
}

// measure is a numeric reading value.
func measure(name, unit string, v float64) reading.Value {
	return reading.Value{Name: name, Unit: unit, Number: &v}
}
