package hub

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

const testHubID = "hub-test"

// waitFor is how long tests wait for something asynchronous to happen.
const waitFor = 10 * time.Second

type fixture struct {
	ledger *hubtest.Ledger
	hub    *Hub
	dir    string
}

func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	fx := &fixture{ledger: hubtest.NewLedger(), dir: t.TempDir()}
	fx.start(t, opts...)
	return fx
}

func (fx *fixture) start(t *testing.T, opts ...func(*Config)) {
	t.Helper()
	cfg := Config{
		HubID:        testHubID,
		MQTTAddr:     "127.0.0.1:0",
		DataDir:      fx.dir,
		BatchSize:    10,
		BatchWait:    20 * time.Millisecond,
		FlushTimeout: 2 * time.Second,
		Ledger:       fx.ledger,
		Events:       fx.ledger,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, h.Start(context.Background()))
	fx.hub = h
	t.Cleanup(func() { _ = h.Close() })
}

type device struct {
	id     string
	signer *reading.Signer
}

func (fx *fixture) enroll(t *testing.T, id string, status api.DeviceStatus) *device {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	fx.ledger.Enroll(id, s.Public(), status)
	return &device{id: id, signer: s}
}

func (d *device) token(t *testing.T, hubID string, at time.Time) string {
	t.Helper()
	nonce := make([]byte, 16)
	_, err := rand.Read(nonce)
	require.NoError(t, err)
	tok, err := wire.SignToken(d.signer, hubID, d.id, at, nonce)
	require.NoError(t, err)
	return tok
}

func (d *device) reading(t *testing.T, seq uint64, temp float64) []byte {
	t.Helper()
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &temp}}})
	require.NoError(t, err)
	return env.Encode()
}

func (d *device) ack(t *testing.T, cmd string, status api.CommandStatus) []byte {
	t.Helper()
	p, err := json.Marshal(api.AckPayload{Device: d.id, Command: cmd, Status: status, Result: "done", Ts: time.Now().UnixMilli()})
	require.NoError(t, err)
	sig, err := d.signer.Sign(reading.DomainAck, p)
	require.NoError(t, err)
	return reading.Envelope{Payload: p, Signature: sig}.Encode()
}

// v5 is a real MQTT 5 device connection (paho.golang).
type v5 struct {
	c            *paho.Client
	msgs         chan *paho.Publish
	disconnected chan struct{}
}

func dialV5(t *testing.T, addr, clientID, username, password string) (*v5, *paho.Connack, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	m := &v5{msgs: make(chan *paho.Publish, 64), disconnected: make(chan struct{})}
	m.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			m.msgs <- pr.Packet
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ca, err := m.c.Connect(ctx, &paho.Connect{ClientID: clientID, Username: username, UsernameFlag: true,
		Password: []byte(password), PasswordFlag: true, KeepAlive: 30, CleanStart: true})
	if err != nil {
		_ = conn.Close()
		return nil, ca, err
	}
	go func() {
		<-m.c.Done()
		close(m.disconnected)
	}()
	t.Cleanup(func() { _ = m.c.Disconnect(&paho.Disconnect{}) })
	return m, ca, nil
}

func (fx *fixture) connect(t *testing.T, d *device) *v5 {
	t.Helper()
	m, _, err := dialV5(t, fx.hub.MQTTAddr(), d.id, d.id, d.token(t, testHubID, time.Now()))
	require.NoError(t, err)
	return m
}

func (m *v5) publish(t *testing.T, topic string, payload []byte) (*paho.PublishResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return m.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
}

func (m *v5) subscribe(t *testing.T, topics ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s := &paho.Subscribe{}
	for _, tp := range topics {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: tp, QoS: 1})
	}
	sa, err := m.c.Subscribe(ctx, s)
	if sa == nil {
		require.NoError(t, err)
	}
	return sa.Reasons
}

func (m *v5) next(t *testing.T, topic string) *paho.Publish {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case p := <-m.msgs:
			if p.Topic == topic {
				return p
			}
		case <-deadline:
			t.Fatalf("no message on %s", topic)
		}
	}
}

// v3 is a real MQTT 3.1.1 device connection (paho.mqtt.golang).
type v3 struct {
	c    mqtt3.Client
	msgs chan mqtt3.Message
}

func (fx *fixture) connectV3(t *testing.T, d *device) *v3 {
	t.Helper()
	m := &v3{msgs: make(chan mqtt3.Message, 64)}
	opts := mqtt3.NewClientOptions().AddBroker("tcp://" + fx.hub.MQTTAddr()).SetClientID(d.id).
		SetUsername(d.id).SetPassword(d.token(t, testHubID, time.Now())).SetProtocolVersion(4).
		SetAutoReconnect(false).SetCleanSession(true).SetConnectRetry(false)
	m.c = mqtt3.NewClient(opts)
	tok := m.c.Connect()
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	sub := m.c.Subscribe(wire.Topic(d.id, wire.KindErrors), 1, func(_ mqtt3.Client, msg mqtt3.Message) { m.msgs <- msg })
	require.True(t, sub.WaitTimeout(waitFor))
	require.NoError(t, sub.Error())
	t.Cleanup(func() { m.c.Disconnect(100) })
	return m
}

func (m *v3) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	tok := m.c.Publish(topic, 1, false, payload)
	require.True(t, tok.WaitTimeout(waitFor), "no PUBACK")
	require.NoError(t, tok.Error())
}

func (m *v3) nextError(t *testing.T) wire.ErrorMessage {
	t.Helper()
	select {
	case msg := <-m.msgs:
		var e wire.ErrorMessage
		require.NoError(t, json.Unmarshal(msg.Payload(), &e))
		return e
	case <-time.After(waitFor):
		t.Fatal("no error message")
	}
	return wire.ErrorMessage{}
}

func rejected(h *Hub, reason string) float64 {
	return testutil.ToFloat64(h.metrics.rejected.WithLabelValues(reason))
}

func authFailures(h *Hub, reason string) float64 {
	return testutil.ToFloat64(h.metrics.authFailures.WithLabelValues(reason))
}

func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, waitFor, 10*time.Millisecond, fmt.Sprintf(msg, args...))
}
