// Package adversary_test plays a dishonest consortium member against the
// iotledger chaincode on a real Fabric network. Org2 is the attacker: its
// peer runs a modified chaincode server (./hostilecc: the real contracts
// plus a log of everything it is sent, a switch to withhold endorsements
// and raw world-state writes), it can issue any identity, and it writes raw
// gateway clients (./rawgw) that set any proposal field, the timestamp
// included. Org1 is honest.
//
// Each test is one attack. It asserts the refusal (code and message) and
// that nothing was written, reading the state back afterwards.
package adversary_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var fabric *network.Network

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	code := testnet.Run(m, &fabric)
	if err := hostile.close(os.Getenv(testnet.EnvNetwork) != ""); err != nil {
		fmt.Fprintf(os.Stderr, "adversary: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// hostile is Org2's modified chaincode server, swapped in by the first test
// that needs the network and kept for the whole package.
var hostile = &hostileServer{}

// close puts Org2's honest server back when the network outlives the test
// binary (a reused network), and removes the server's files.
func (h *hostileServer) close(networkStays bool) error {
	var err error
	if h.restore != nil && networkStays {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if rerr := h.restore(ctx); rerr != nil {
			err = fmt.Errorf("putting Org2's chaincode server back: %w", rerr)
		}
	}
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
	}
	return err
}
