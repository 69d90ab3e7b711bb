package device

import (
	"errors"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// RequireHubSignatures makes the device accept commands and inbox messages
// only when a hub whose certificate chains to one of the CA roots in
// rootsPEM (the device's org CA) signed them for this device
// (docs/protocol.md §5): anything injected on the path, unsigned, signed by
// another org's CA or by an identity without iotledger.role=hub, or meant
// for another device, is refused before a handler sees it. now is the clock
// for certificate validity (time.Now when nil).
func (c *Config) RequireHubSignatures(rootsPEM []byte, now func() time.Time) error {
	v, err := wire.NewHubVerifier(rootsPEM, now)
	if err != nil {
		return err
	}
	c.verifyWith(v)
	return nil
}

// defaultVerification is what New sets up when the config says nothing:
// hub signatures checked against HubCAs, else RootCAs (the org CA the hub's
// TLS certificate chains to, which also issued the hub's signing identity).
// A device with neither refuses every command and inbox message: it could
// not tell a real one from an injected one.
func (c *Config) defaultVerification() {
	if c.VerifyCommand != nil && c.VerifyInbox != nil {
		return
	}
	roots := c.HubCAs
	if roots == nil {
		roots = c.RootCAs
	}
	if roots == nil {
		refuse := errors.New("no CA to check the hub's signature (set HubCAs or RootCAs): refused")
		if c.VerifyCommand == nil {
			c.VerifyCommand = func([]byte) (api.Command, error) { return api.Command{}, refuse }
		}
		if c.VerifyInbox == nil {
			c.VerifyInbox = func([]byte) (wire.InboxMessage, error) { return wire.InboxMessage{}, refuse }
		}
		return
	}
	v, _ := wire.NewHubVerifierPool(roots, c.Now) // cannot fail: roots is set
	cmd, inbox := c.VerifyCommand, c.VerifyInbox
	c.verifyWith(v)
	if cmd != nil {
		c.VerifyCommand = cmd
	}
	if inbox != nil {
		c.VerifyInbox = inbox
	}
}

func (c *Config) verifyWith(v *wire.HubVerifier) {
	id := c.ID
	c.VerifyCommand = func(raw []byte) (api.Command, error) {
		cmd, _, err := v.VerifyCommand(id, raw)
		return cmd, err
	}
	c.VerifyInbox = func(raw []byte) (wire.InboxMessage, error) {
		m, _, err := v.VerifyInbox(id, raw)
		return m, err
	}
}
