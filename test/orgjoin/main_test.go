// Package orgjoin_test adds a third organisation to a running channel on a
// real Fabric network, as Fabric operators do: a city creates its own org,
// the hospital and the logistics firm add it with a config update their
// admins sign, the city joins; then its devices, hub, policies and the
// hospital's grants work, and the chaincode's MAJORITY is 2 of 3. The test
// changes the channel, so it has a network of its own.
package orgjoin_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var (
	fabric *network.Network
	// cityNodes are the city's nodes as last started, which down must stop.
	cityNodes []network.Node
)

func TestMain(m *testing.M) {
	code := testnet.RunWith(m, &fabric, network.Options{Orgs: []string{"Hospital", "Logistics"}})
	if os.Getenv(testnet.EnvNetwork) == "" { // a network of our own was torn down
		for _, nd := range cityNodes {
			if nd.Running() { // its PID with its start time, not a zombie
				fmt.Fprintf(os.Stderr, "network down left %s (pid %d) of the city running\n", nd.Name, nd.PID)
				code = 1
			}
		}
	}
	os.Exit(code)
}
