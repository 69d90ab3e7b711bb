package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// hubSigner makes the signer of the commands and inbox messages a hub
// delivers from the hub's own Fabric identity: devices check them against
// their org's CA root, and accept them only from a certificate with
// iotledger.role=hub, so an identity without that role is refused here
// rather than by every device.
func hubSigner(id client.IdentityFiles) (*wire.HubSigner, error) {
	certPEM, err := os.ReadFile(id.Cert)
	if err != nil {
		return nil, fmt.Errorf("hub identity certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(id.Key)
	if err != nil {
		return nil, fmt.Errorf("hub identity key: %w", err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return nil, fmt.Errorf("hub identity certificate %s: no PEM block", id.Cert)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("hub identity certificate %s: %w", id.Cert, err)
	}
	attrs, err := attrmgr.New().GetAttributesFromCert(cert)
	if err != nil {
		return nil, fmt.Errorf("hub identity certificate %s: %w", id.Cert, err)
	}
	if role, _, _ := attrs.Value(api.RoleAttribute); role != wire.HubRole {
		return nil, fmt.Errorf("the identity in %s has %s=%q: a hub runs as an identity with the %q role (e.g. --identity hub), whose signature devices accept",
			id.Cert, api.RoleAttribute, role, wire.HubRole)
	}
	return wire.NewHubSigner(certPEM, keyPEM)
}
