package device

import (
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
	id := c.ID
	c.VerifyCommand = func(raw []byte) (api.Command, error) {
		cmd, _, err := v.VerifyCommand(id, raw)
		return cmd, err
	}
	c.VerifyInbox = func(raw []byte) (wire.InboxMessage, error) {
		m, _, err := v.VerifyInbox(id, raw)
		return m, err
	}
	return nil
}
