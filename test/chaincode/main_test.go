package chaincode_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// environment is the package's network and the clients one test uses.
type environment struct {
	net          *network.Network
	org1Operator *client.Client
	org1Hub      *client.Client
	org2Operator *client.Client
	org2Hub      *client.Client
}

var (
	net *network.Network

	anyOrgOnce sync.Once
	anyOrgErr  error
	idMu       sync.Mutex
	idNo       int
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	os.Exit(testnet.Run(m, &net))
}

// env connects the usual clients of a test (closed when it ends), or skips
// a short run.
func env(t *testing.T) *environment {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a Fabric network")
	}
	require.NotNil(t, net, "no network")
	e := &environment{net: net}
	e.org1Operator = e.connect(t, "Org1", "operator", "")
	e.org1Hub = e.connect(t, "Org1", "hub", "")
	e.org2Operator = e.connect(t, "Org2", "operator", "")
	e.org2Hub = e.connect(t, "Org2", "hub", "")
	return e
}

// ctx is a per-test context.
func (e *environment) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a client of an org's identity, optionally to another
// chaincode name, closed at the end of the test.
func (e *environment) connect(t *testing.T, org, identity, chaincode string, opts ...client.Option) *client.Client {
	t.Helper()
	p, err := e.net.Profile(org)
	require.NoError(t, err)
	if chaincode != "" {
		p.Chaincode = chaincode
	}
	c, err := client.Connect(e.ctx(t), p, identity, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// anyOrgChaincode deploys the same chaincode a second time under a
// definition that one org's endorsement satisfies, so that only key-level
// endorsement policies can stop a change endorsed by the wrong org.
func (e *environment) anyOrgChaincode(t *testing.T) string {
	t.Helper()
	const name = "iotledger-anyorg"
	anyOrgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		anyOrgErr = e.net.DeployChaincode(ctx, network.ChaincodeSpec{
			Name: name, Package: "./cmd/iotledger-chaincode",
			EndorsementPolicy: "OR('Org1MSP.peer','Org2MSP.peer')",
		})
	})
	require.NoError(t, anyOrgErr)
	return name
}

// enrollIdentity registers a new client identity with an org's CA and
// connects as it.
func (e *environment) enrollIdentity(t *testing.T, org string, attrs map[string]string) *client.Client {
	t.Helper()
	idMu.Lock()
	idNo++
	name := fmt.Sprintf("it-user-%d-%d", time.Now().Unix(), idNo)
	idMu.Unlock()
	_, err := e.net.EnrollIdentity(e.ctx(t), org, name, attrs)
	require.NoError(t, err)
	return e.connect(t, org, name, "")
}

// eventOf reads the chain's events from the first block until the one of txID.
func (e *environment) eventOf(t *testing.T, c *client.Client, txID string) api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx(t), time.Minute)
	defer cancel()
	start := uint64(0)
	events, err := c.Events(ctx, client.EventOptions{StartBlock: &start})
	require.NoError(t, err)
	for ev := range events {
		if ev.TxID == txID {
			return ev.Event
		}
	}
	require.FailNow(t, "no chaincode event of transaction "+txID)
	return api.Event{}
}

// index starts org's index (it stops with the test) and waits until it
// holds every block any peer has now.
func (e *environment) index(t *testing.T, org string) *testnet.Index {
	t.Helper()
	e.settle(t)
	ix := testnet.StartIndex(t, e.net, org)
	ix.Sync(t)
	return ix
}

// settle waits until every peer has the blocks any peer has now.
func (e *environment) settle(t *testing.T) {
	t.Helper()
	testnet.Settle(e.ctx(t), t, e.net)
}
