package network

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordedNetwork saves the state of a network with one chaincode whose
// servers are recorded but not running, and loads it.
func recordedNetwork(t *testing.T) *Network {
	t.Helper()
	dir := t.TempDir()
	s := &State{Version: stateVersion, StateDir: dir, SourceDir: dir, Channel: "iotledger",
		Orgs: []OrgState{{Name: "Org1", MSPID: "Org1MSP"}, {Name: "Org2", MSPID: "Org2MSP"}, {Name: "Org3", MSPID: "Org3MSP"}},
		Nodes: []*Node{
			{Name: "peer0.org2", Kind: KindPeer, Org: "Org2"},
			{Name: "chaincode.iotledger.org1", Kind: KindChaincode, Org: "Org1", Ports: map[string]int{PortListen: 1}},
		},
		Chaincodes: []*ChaincodeState{{Name: "iotledger", Servers: map[string]string{
			"Org1": "chaincode.iotledger.org1", "Org2": "peer0.org2",
		}}},
	}
	require.NoError(t, s.save())
	n, err := Load(dir)
	require.NoError(t, err)
	return n
}

func TestReplaceChaincodeServerRefusesWhatIsNotThereBeforeBuilding(t *testing.T) {
	n := recordedNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		name, chaincode, org, pkg string
		env                       []string
		want                      string
	}{
		{"unknown chaincode", "other", "Org1", "./x", nil, `chaincode "other" is not deployed on this network (deployed: iotledger)`},
		{"unknown org", "iotledger", "Org4", "./x", nil, `no organisation "Org4" in the network (have Org1, Org2, Org3)`},
		{"org without a server", "iotledger", "Org3MSP", "./x", nil, "chaincode iotledger has no server of Org3"},
		{"server record of the wrong kind", "iotledger", "org2", "./x", nil, "is a peer"},
		{"no package", "iotledger", "Org1", " ", nil, "the Go main package of the new server is required"},
		{"malformed env", "iotledger", "Org1", "./x", []string{"NOEQUALS"}, `"NOEQUALS" is not NAME=value`},
	} {
		t.Run(c.name, func(t *testing.T) {
			restore, err := n.ReplaceChaincodeServer(ctx, c.chaincode, c.org, c.pkg, c.env...)
			require.ErrorContains(t, err, c.want)
			require.Nil(t, restore)
		})
	}
}

func TestReplaceChaincodeServerNamesTheNodeWhenTheBuildFails(t *testing.T) {
	n := recordedNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := n.ReplaceChaincodeServer(ctx, "iotledger", "org1", "./no/such/package")
	require.ErrorContains(t, err, "replace chaincode server chaincode.iotledger.org1: go build ./no/such/package")
	st, lerr := loadState(n.StateDir())
	require.NoError(t, lerr)
	nd, lerr := st.node("chaincode.iotledger.org1")
	require.NoError(t, lerr)
	require.Empty(t, nd.Command, "a failed build leaves the recorded server alone")
}

func TestMergeEnvReplacesEntriesOfTheSameName(t *testing.T) {
	got := mergeEnv(
		[]string{"PATH=/bin", "CORE_CHAINCODE_ID_NAME=cc:1", "HOME=/root"},
		[]string{"HOSTILE_LOG=/tmp/a", "HOME=/tmp", "HOSTILE_LOG=/tmp/b"},
	)
	require.Equal(t, []string{"PATH=/bin", "CORE_CHAINCODE_ID_NAME=cc:1", "HOME=/tmp", "HOSTILE_LOG=/tmp/b"}, got)
	require.Equal(t, []string{"A=1"}, mergeEnv([]string{"A=1"}, nil))
}
