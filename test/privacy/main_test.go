// Package privacy_test shows on a real Fabric network that the values of a
// private device's readings stay with its owner org: they travel as
// transient data, are kept in the owner's implicit private data collection,
// and never appear in a block, while the channel still commits to them.
package privacy_test

import (
	"flag"
	"os"
	"testing"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var fabric *network.Network

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	os.Exit(testnet.Run(m, &fabric))
}
