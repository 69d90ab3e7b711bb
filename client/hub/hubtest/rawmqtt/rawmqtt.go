// Package rawmqtt is a minimal MQTT 3.1.1 and 5 client for tests that must
// see exactly what a broker puts on the wire (a client library would hide a
// missing PUBACK, a DISCONNECT sent to a 3.1.1 client or a CONNACK property)
// and send what a well-behaved library never would (a will on another
// device's topic, a PUBLISH to $SYS, an oversize packet). Packets are
// encoded and decoded with the broker's own packets package.
package rawmqtt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Protocol versions, as the CONNECT packet carries them.
const (
	V311 byte = 4
	V5   byte = 5
)

// Conn is one raw MQTT connection.
type Conn struct {
	Version byte
	nc      net.Conn
	r       *bufio.Reader
	pending []packets.Packet // read while waiting for something else
	closed  bool             // the peer closed the connection
}

// Dial opens a TCP connection to a broker; nothing is sent yet.
func Dial(addr string, version byte) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{Version: version, nc: nc, r: bufio.NewReader(nc)}, nil
}

// Close closes the connection without sending DISCONNECT.
func (c *Conn) Close() error { return c.nc.Close() }

// Encode encodes a packet as the connection's protocol version.
func (c *Conn) Encode(pk packets.Packet) ([]byte, error) {
	pk.ProtocolVersion = c.Version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		if pk.Connect.ProtocolName == nil {
			pk.Connect.ProtocolName = []byte("MQTT")
		}
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Unsubscribe:
		err = pk.UnsubscribeEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	default:
		err = fmt.Errorf("rawmqtt: cannot send packet type %d", pk.FixedHeader.Type)
	}
	return buf.Bytes(), err
}

// Send writes one packet.
func (c *Conn) Send(pk packets.Packet) error {
	b, err := c.Encode(pk)
	if err != nil {
		return err
	}
	return c.SendBytes(b)
}

// SendBytes writes bytes as they are.
func (c *Conn) SendBytes(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// ErrClosed is returned once the broker has closed the connection.
var ErrClosed = errors.New("rawmqtt: connection closed by the broker")

// ErrTimeout is returned when nothing arrived in time.
var ErrTimeout = errors.New("rawmqtt: nothing received in time")

// read reads one packet from the wire.
func (c *Conn) read(deadline time.Time) (packets.Packet, error) {
	if c.closed {
		return packets.Packet{}, ErrClosed
	}
	_ = c.nc.SetReadDeadline(deadline)
	var pk packets.Packet
	b, err := c.r.ReadByte()
	if err != nil {
		return pk, c.readErr(err)
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, fmt.Errorf("rawmqtt: fixed header %#x: %w", b, err)
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return pk, c.readErr(err)
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return pk, c.readErr(err)
	}
	pk.ProtocolVersion = c.Version
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubrel:
		err = pk.PubrelDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Unsuback:
		err = pk.UnsubackDecode(body)
	case packets.Pingresp:
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	default:
		err = fmt.Errorf("rawmqtt: unexpected packet type %d from the broker", pk.FixedHeader.Type)
	}
	return pk, err
}

func (c *Conn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
		c.closed = true
		return ErrClosed
	}
	return err
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// Next returns the next packet of the given type, keeping any other packet
// that arrives first for Next or Received.
func (c *Conn) Next(typ byte, timeout time.Duration) (packets.Packet, error) {
	for i, pk := range c.pending {
		if pk.FixedHeader.Type == typ {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return pk, nil
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		pk, err := c.read(deadline)
		if err != nil {
			return pk, err
		}
		if pk.FixedHeader.Type == typ {
			return pk, nil
		}
		c.pending = append(c.pending, pk)
	}
}

// NextPublish returns the next PUBLISH on a topic, acknowledging QoS 1
// deliveries as a client must.
func (c *Conn) NextPublish(topic string, timeout time.Duration) (packets.Packet, error) {
	deadline := time.Now().Add(timeout)
	for {
		pk, err := c.Next(packets.Publish, time.Until(deadline))
		if err != nil {
			return pk, err
		}
		if pk.FixedHeader.Qos == 1 {
			_ = c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
		}
		if pk.TopicName == topic {
			return pk, nil
		}
	}
}

// Received returns every packet that arrives within d (and those kept by
// Next), acknowledging QoS 1 deliveries. It stops early when the broker
// closes the connection; Closed then reports it.
func (c *Conn) Received(d time.Duration) []packets.Packet {
	out := c.pending
	c.pending = nil
	deadline := time.Now().Add(d)
	for {
		pk, err := c.read(deadline)
		if err != nil {
			return out
		}
		if pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos == 1 {
			_ = c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
		}
		out = append(out, pk)
	}
}

// UntilClosed reads until the broker closes the connection and returns
// what arrived before; ErrTimeout if it is still open after timeout.
func (c *Conn) UntilClosed(timeout time.Duration) ([]packets.Packet, error) {
	out := c.pending
	c.pending = nil
	deadline := time.Now().Add(timeout)
	for {
		pk, err := c.read(deadline)
		if errors.Is(err, ErrClosed) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, pk)
	}
}

// Closed reports whether the broker has closed the connection (as seen by
// the last read).
func (c *Conn) Closed() bool { return c.closed }

// Connect sends CONNECT and returns the CONNACK. ErrClosed means the
// broker closed the connection without one.
func (c *Conn) Connect(p packets.ConnectParams, props packets.Properties, timeout time.Duration) (packets.Packet, error) {
	if p.Keepalive == 0 {
		p.Keepalive = 30
	}
	p.UsernameFlag = p.UsernameFlag || len(p.Username) > 0
	p.PasswordFlag = p.PasswordFlag || len(p.Password) > 0
	if err := c.Send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: p, Properties: props}); err != nil {
		return packets.Packet{}, err
	}
	return c.Next(packets.Connack, timeout)
}

// Subscribe sends SUBSCRIBE (QoS 1 filters) and returns the SUBACK's codes.
func (c *Conn) Subscribe(id uint16, timeout time.Duration, filters ...string) ([]byte, error) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	if err := c.Send(pk); err != nil {
		return nil, err
	}
	ack, err := c.Next(packets.Suback, timeout)
	if err != nil {
		return nil, err
	}
	if ack.PacketID != id {
		return nil, fmt.Errorf("rawmqtt: SUBACK for packet %d, want %d", ack.PacketID, id)
	}
	return ack.ReasonCodes, nil
}

// Publish sends a PUBLISH; for QoS 1 it returns the PUBACK (ErrTimeout if
// none came, ErrClosed if the broker closed the connection instead).
func (c *Conn) Publish(id uint16, topic string, payload []byte, qos byte, retain bool, timeout time.Duration) (packets.Packet, error) {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: retain}, TopicName: topic, Payload: payload}
	if qos > 0 {
		pk.PacketID = id
	}
	if err := c.Send(pk); err != nil {
		return packets.Packet{}, err
	}
	if qos == 0 {
		return packets.Packet{}, nil
	}
	ack, err := c.Next(packets.Puback, timeout)
	if err != nil {
		return ack, err
	}
	if ack.PacketID != id {
		return ack, fmt.Errorf("rawmqtt: PUBACK for packet %d, want %d", ack.PacketID, id)
	}
	return ack, nil
}
