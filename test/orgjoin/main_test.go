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
	"syscall"
	"testing"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var (
	fabric *network.Network
	// cityPIDs are the processes of the city's nodes, which down must stop.
	cityPIDs []int
)

func TestMain(m *testing.M) {
	code := testnet.RunWith(m, &fabric, network.Options{Orgs: []string{"Hospital", "Logistics"}})
	if os.Getenv(testnet.EnvNetwork) == "" { // a network of our own was torn down
		for _, pid := range cityPIDs {
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				fmt.Fprintf(os.Stderr, "network down left pid %d of the city's nodes running\n", pid)
				code = 1
			}
		}
	}
	os.Exit(code)
}
