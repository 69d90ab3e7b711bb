package hub

// What the hub hands a device — commands, relayed inbox messages — carries
// the hub's signature (wire.SignedMessage, made with the key of the hub's
// Fabric identity), so that a device provisioned with its org's CA root can
// tell them from anything injected on the path. A hub without a signer
// (Config.Signer nil) delivers them unsigned, and devices that check
// signatures refuse them; `iotledger hub` always signs.
func (h *Hub) sign(domain string, payload []byte) ([]byte, error) {
	if h.cfg.Signer == nil {
		return payload, nil
	}
	return h.cfg.Signer.Sign(domain, payload)
}
