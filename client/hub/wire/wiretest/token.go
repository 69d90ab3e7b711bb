package wiretest

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// Token is a fresh connect password of device id for hubID: signed with s
// now, over a random nonce.
func Token(t testing.TB, s *reading.Signer, hubID, id string) string {
	t.Helper()
	nonce := make([]byte, 16)
	_, err := rand.Read(nonce)
	require.NoError(t, err)
	tok, err := wire.SignToken(s, hubID, id, time.Now(), nonce)
	require.NoError(t, err)
	return tok
}

// DialMQTT connects device id to the hub at addr over MQTT 5 with a fresh
// Token, on cfg (its Conn is set here), and requires the hub to accept it.
// The connection is disconnected when the test ends.
func DialMQTT(ctx context.Context, t testing.TB, addr, hubID, id string, s *reading.Signer, cfg paho.ClientConfig) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	tok := Token(t, s, hubID, id)
	cfg.Conn = conn
	c := paho.NewClient(cfg)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ack, err := c.Connect(cctx, &paho.Connect{ClientID: id, Username: id, UsernameFlag: true, Password: []byte(tok),
		PasswordFlag: true, KeepAlive: 30, CleanStart: true})
	require.NoError(t, err)
	require.EqualValues(t, 0, ack.ReasonCode)
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c
}
