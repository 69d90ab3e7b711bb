package network_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var (
	testNet *network.Network
	// iotledgerBin is the CLI built for the tests that run it as a process
	// (the hosts-mode hub).
	iotledgerBin string
)

func TestMain(m *testing.M) { os.Exit(testnet.RunWithCLI(m, &testNet, &iotledgerBin)) }

// refChaincode is the raw Put/Get reference chaincode: the network tests use
// it so that they do not depend on the iotledger chaincode's transactions.
const refChaincode = "ref"

var (
	refOnce sync.Once
	refErr  error
)

func deployRef(t *testing.T) {
	t.Helper()
	refOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		refErr = testNet.DeployChaincode(ctx, network.ChaincodeSpec{Name: refChaincode, Package: "./cmd/iotledger-refchaincode"})
	})
	require.NoError(t, refErr)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestEveryOrgsIdentitiesCanSubmitAndEvaluate(t *testing.T) {
	deployRef(t)
	orgs := testNet.Orgs()
	require.Equal(t, []string{"Org1", "Org2"}, orgs)
	for i, org := range orgs {
		other := orgs[(i+1)%len(orgs)]
		reader := connect(t, testNet, other, "auditor").GetNetwork(testNet.Channel()).GetContract(refChaincode)
		for _, who := range []string{"admin", "operator", "hub", "auditor"} {
			t.Run(org+"/"+who, func(t *testing.T) {
				c := connect(t, testNet, org, who).GetNetwork(testNet.Channel()).GetContract(refChaincode)
				key, value := "id-"+org+"-"+who, "written by "+who+" of "+org
				_, status := submit(t, c, "Put", client.WithArguments(key, value))
				require.True(t, status.Successful, "validation code %v", status.Code)

				// The other org's peer commits the block a moment later.
				require.Eventually(t, func() bool {
					got, err := reader.EvaluateTransaction("Get", key)
					return err == nil && string(got) == value
				}, 30*time.Second, 50*time.Millisecond)
			})
		}
	}
}

func TestMajorityTransactionIsEndorsedByBothOrgs(t *testing.T) {
	deployRef(t)
	gw := connect(t, testNet, "Org1", "operator")
	txID, status := submit(t, gw.GetNetwork(testNet.Channel()).GetContract(refChaincode), "Put", client.WithArguments("majority", "both"))
	require.True(t, status.Successful)

	msps, code := endorsingMSPs(t, gw, testNet.Channel(), txID)
	require.Equal(t, peer.TxValidationCode_VALID, code)
	require.ElementsMatch(t, []string{"Org1MSP", "Org2MSP"}, msps)
}

func TestWriteEndorsedByOneOrgIsInvalidatedUnderMajority(t *testing.T) {
	deployRef(t)
	gw := connect(t, testNet, "Org1", "operator")
	c := gw.GetNetwork(testNet.Channel()).GetContract(refChaincode)
	_, status := submit(t, c, "Put", client.WithArguments("one-org", "x"), client.WithEndorsingOrganizations("Org1MSP"))
	require.False(t, status.Successful)
	require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE, status.Code)

	_, err := c.EvaluateTransaction("Get", "one-org")
	require.ErrorContains(t, err, "NOT_FOUND")
}

func TestCrashedPeerIsReportedDownAndStartsAgain(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 5*time.Minute)
	var pid int
	for _, nd := range testNet.Nodes() {
		if nd.Name == "peer0.org2" {
			pid = nd.PID
		}
	}
	require.NotZero(t, pid)
	p, err := os.FindProcess(pid)
	require.NoError(t, err)
	require.NoError(t, p.Kill())
	require.Eventually(t, func() bool {
		st, err := testNet.Status(ctx)
		return err == nil && len(st.Unhealthy()) == 1 && st.Unhealthy()[0].Health == network.HealthDown
	}, time.Minute, 100*time.Millisecond)

	require.NoError(t, testNet.StartNode(ctx, "peer0.org2"))
	st, err := testNet.Status(ctx)
	require.NoError(t, err)
	require.True(t, st.Healthy, "%+v", st.Unhealthy())

	// The restarted peer endorses again: a MAJORITY write commits.
	require.Eventually(t, func() bool {
		c := connect(t, testNet, "Org2", "operator").GetNetwork(testNet.Channel()).GetContract(refChaincode)
		_, err := c.SubmitTransaction("Put", "after-crash", "ok")
		return err == nil
	}, 2*time.Minute, time.Second)
}

func TestRedeployBumpsTheSequenceAndKeepsTheState(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 5*time.Minute)
	c := connect(t, testNet, "Org1", "operator").GetNetwork(testNet.Channel()).GetContract(refChaincode)
	_, err := c.SubmitTransaction("Put", "before-redeploy", "kept")
	require.NoError(t, err)
	before, ok := testNet.Chaincode(refChaincode)
	require.True(t, ok)

	require.NoError(t, testNet.DeployChaincode(ctx, network.ChaincodeSpec{Name: refChaincode, Package: "./cmd/iotledger-refchaincode"}))

	after, ok := testNet.Chaincode(refChaincode)
	require.True(t, ok)
	require.Equal(t, before.Sequence+1, after.Sequence)
	require.NotEqual(t, before.PackageIDs["Org1"], after.PackageIDs["Org1"])
	got, err := c.EvaluateTransaction("Get", "before-redeploy")
	require.NoError(t, err)
	require.Equal(t, "kept", string(got))
	_, err = c.SubmitTransaction("Put", "after-redeploy", "ok")
	require.NoError(t, err)
}

func TestDeployUpgradesTheIotledgerChaincodeWithoutRestartingNodes(t *testing.T) {
	ctx := ctxFor(t, 10*time.Minute)
	before, ok := testNet.Chaincode(network.DefaultChaincode)
	require.True(t, ok)
	pids := map[string]int{}
	for _, nd := range testNet.Nodes() {
		pids[nd.Name] = nd.PID
	}

	require.NoError(t, testNet.Deploy(ctx))

	after, ok := testNet.Chaincode(network.DefaultChaincode)
	require.True(t, ok)
	require.Equal(t, before.Sequence+1, after.Sequence)
	for _, nd := range testNet.Nodes() {
		if nd.Kind == network.KindChaincode && strings.Contains(nd.Name, network.DefaultChaincode) {
			require.NotEqual(t, pids[nd.Name], nd.PID, "%s should have been restarted", nd.Name)
		} else if nd.Kind != network.KindChaincode {
			require.Equal(t, pids[nd.Name], nd.PID, "%s should have kept running", nd.Name)
		}
	}
	st, err := testNet.Status(ctx)
	require.NoError(t, err)
	require.True(t, st.Healthy, "%+v", st.Unhealthy())
	for _, cc := range st.Chaincodes {
		if cc.Name == network.DefaultChaincode {
			require.Equal(t, after.Sequence, cc.CommittedSequence)
		}
	}
}

func TestEnrolledIdentityCarriesItsRoleAttribute(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 2*time.Minute)
	id, err := testNet.EnrollIdentity(ctx, "Org2", "field-hub-7", map[string]string{network.RoleAttribute: "hub"})
	require.NoError(t, err)
	require.Equal(t, "Org2MSP", id.MSPID)
	require.Equal(t, "hub", certAttrs(t, id.Cert)[network.RoleAttribute])

	p, err := testNet.Profile("Org2")
	require.NoError(t, err)
	fromProfile, err := p.Identity("field-hub-7")
	require.NoError(t, err)
	require.Equal(t, id, fromProfile)

	c := connect(t, testNet, "Org2", "field-hub-7").GetNetwork(testNet.Channel()).GetContract(refChaincode)
	_, err = c.SubmitTransaction("Put", "from-field-hub-7", "ok")
	require.NoError(t, err)

	_, err = testNet.EnrollIdentity(ctx, "Org2", "field-hub-7", map[string]string{network.RoleAttribute: "hub"})
	require.ErrorIs(t, err, network.ErrIdentityExists)

	plain, err := testNet.EnrollIdentity(ctx, "Org1", "no-role", map[string]string{})
	require.NoError(t, err)
	require.NotContains(t, certAttrs(t, plain.Cert), network.RoleAttribute)
}

func TestDefaultIdentitiesCarryTheirRoles(t *testing.T) {
	for _, org := range testNet.Orgs() {
		p, err := testNet.Profile(org)
		require.NoError(t, err)
		for _, role := range []string{"operator", "hub", "auditor"} {
			id, err := p.Identity(role)
			require.NoError(t, err)
			require.Equal(t, role, certAttrs(t, id.Cert)[network.RoleAttribute], "%s %s", org, role)
		}
	}
}

func onlyUnhealthy(t *testing.T, st *network.Status) network.NodeStatus {
	t.Helper()
	bad := st.Unhealthy()
	require.Len(t, bad, 1, "%+v", bad)
	return bad[0]
}

// certAttrs reads the Fabric CA attributes extension of a certificate.
func certAttrs(t *testing.T, certFile string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(certFile)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	for _, ext := range cert.Extensions {
		if ext.Id.String() == "1.2.3.4.5.6.7.8.1" {
			var v struct {
				Attrs map[string]string `json:"attrs"`
			}
			require.NoError(t, json.Unmarshal(ext.Value, &v))
			return v.Attrs
		}
	}
	return map[string]string{}
}

func TestChaincodeWithPrivateDataCollectionsDeploys(t *testing.T) {
	ctx := ctxFor(t, 5*time.Minute)
	collections := `[{"name":"readings","policy":"OR('Org1MSP.member','Org2MSP.member')","requiredPeerCount":0,"maxPeerCount":1,"blockToLive":0,"memberOnlyRead":true,"memberOnlyWrite":true}]`
	require.NoError(t, testNet.DeployChaincode(ctx, network.ChaincodeSpec{
		Name: "refpdc", Package: "./cmd/iotledger-refchaincode", EndorsementPolicy: "ANY", CollectionsConfig: collections,
	}))
	cc, ok := testNet.Chaincode("refpdc")
	require.True(t, ok)
	require.FileExists(t, cc.CollectionsConfig)

	c := connect(t, testNet, "Org1", "operator").GetNetwork(testNet.Channel()).GetContract("refpdc")
	_, err := c.SubmitTransaction("Put", "k", "v")
	require.NoError(t, err)
}

func TestBadChaincodeSpecsAreRefusedBeforeAnythingChanges(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	for name, spec := range map[string]network.ChaincodeSpec{
		"invalid collections JSON": {Name: "bad1", Package: "./cmd/iotledger-refchaincode", CollectionsConfig: "[{"},
		"invalid name":             {Name: "bad name", Package: "./cmd/iotledger-refchaincode"},
		"unknown policy":           {Name: "bad3", Package: "./cmd/iotledger-refchaincode", EndorsementPolicy: "SOME"},
		"no package":               {Name: "bad4"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, testNet.DeployChaincode(ctx, spec))
			_, ok := testNet.Chaincode(spec.Name)
			require.False(t, ok)
		})
	}
}

// TestTransactionsCommitWithOneOrdererStopped stops one orderer (gracefully,
// through a second handle), commits with the other two, and starts it again:
// the network is healthy once it has caught up. Killed orderers under load
// are TestEachOrdererKilledUnderLoadRejoinsAndCatchesUp's.
func TestTransactionsCommitWithOneOrdererStopped(t *testing.T) {
	deployRef(t)
	ctx := ctxFor(t, 5*time.Minute)
	// Stopped through a second handle, as `iotledger` in another process
	// would: the first handle sees it.
	other, err := network.Load(testNet.StateDir())
	require.NoError(t, err)
	require.NoError(t, other.StopNode(ctx, "orderer2"))
	t.Cleanup(func() { _ = testNet.StartNode(context.Background(), "orderer2") })

	st, err := testNet.Status(ctx)
	require.NoError(t, err)
	require.False(t, st.Healthy)
	require.Equal(t, "orderer2", onlyUnhealthy(t, st).Name)
	require.Equal(t, network.HealthStopped, onlyUnhealthy(t, st).Health)

	c := connect(t, testNet, "Org2", "hub").GetNetwork(testNet.Channel()).GetContract(refChaincode)
	for i := range 5 {
		_, status := submit(t, c, "Put", client.WithArguments(fmt.Sprintf("two-orderers-%d", i), "ok"))
		require.True(t, status.Successful, "tx %d: %v", i, status.Code)
	}

	require.NoError(t, testNet.StartNode(ctx, "orderer2"))
	// StartNode returns once the orderer serves the channel again: it
	// reports a height at once (it may still be catching up).
	st, err = testNet.Status(ctx)
	require.NoError(t, err)
	for _, ns := range st.Nodes {
		if ns.Name == "orderer2" {
			require.NotNil(t, ns.Height, "orderer2 reports no channel height right after StartNode: %+v", ns)
		}
	}
	// Status compares heights now: the restarted orderer is healthy once it
	// has caught up with the others (a bounded wait, not a speed claim).
	var last []network.NodeStatus
	require.Eventually(t, func() bool {
		st, err := testNet.Status(ctx)
		if err != nil {
			return false
		}
		last = st.Unhealthy()
		return st.Healthy
	}, time.Minute, 250*time.Millisecond, "unhealthy after restart: %+v", &last)
}
