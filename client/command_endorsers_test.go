package client

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
)

func TestPrivateCommandsAreEndorsedByTheirOwnerAlone(t *testing.T) {
	private := `{"id":"c1","device":"m","owner":"Org1MSP","name":"page","status":"pending","private":true}`
	public := `{"id":"c2","device":"f","owner":"Org1MSP","name":"cool","status":"pending"}`
	ack := reading.Envelope{Payload: []byte(`{"command":"c1","device":"m","status":"acked"}`), Signature: []byte{1}}
	cases := []struct {
		name   string
		lookup outcome
		call   func(c *Client) error
		want   []string
	}{
		{"private delivered", outcome{result: private}, func(c *Client) error { _, err := c.MarkCommandDelivered(t.Context(), "c1"); return err }, []string{"Org1MSP"}},
		{"private acked", outcome{result: private}, func(c *Client) error { _, err := c.AckCommand(t.Context(), ack); return err }, []string{"Org1MSP"}},
		{"private expired", outcome{result: private}, func(c *Client) error { _, err := c.ExpireCommand(t.Context(), "c1"); return err }, []string{"Org1MSP"}},
		{"public delivered", outcome{result: public}, func(c *Client) error { _, err := c.MarkCommandDelivered(t.Context(), "c2"); return err }, nil},
		{"lookup refused", outcome{evaluateErr: errors.New("ACCESS_DENIED: no")}, func(c *Client) error { _, err := c.ExpireCommand(t.Context(), "c2"); return err }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &scriptedTransport{script: []outcome{tc.lookup, {code: "VALID", result: public}}}
			c := newClientWithTransport(tr, "Org1MSP", WithRetry(2, time.Millisecond))
			require.NoError(t, tc.call(c))
			require.Equal(t, tc.want, tr.lastOpts.endorsingOrgs)
		})
	}
}
