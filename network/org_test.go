package network

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeOrgNetwork is a complete network record with one member org whose
// tools are scripts: cryptogen writes just what planning an org reads (a
// CA key), and the peer and CA exit at once, as a node that cannot start.
func fakeOrgNetwork(t *testing.T) *Network {
	t.Helper()
	dir := t.TempDir()
	bin := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(bin, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
		return p
	}
	cryptogen := script("cryptogen", `out=""
while [ $# -gt 0 ]; do if [ "$1" = --output ]; then out="$2"; fi; shift; done
mkdir -p "$out/peerOrganizations/farm.iotledger.local/ca" && : > "$out/peerOrganizations/farm.iotledger.local/ca/priv_sk"
`)
	exits := script("exits", "exit 3\n")
	sample := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sample, "core.yaml"), []byte("peer:\n  id: sample\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o755))
	st := &State{
		Version: stateVersion, Name: "iotledger", Channel: DefaultChannel, StateDir: dir, Setup: SetupComplete,
		Binaries:      Binaries{CryptoGen: cryptogen, Peer: exits, CAServer: exits, SampleConfig: sample},
		OrdererDomain: "iotledger.local",
		Orgs:          []OrgState{{Name: "Hospital", MSPID: "HospitalMSP"}},
	}
	require.NoError(t, st.save())
	return &Network{state: st, kids: newChildren(), log: slog.New(slog.DiscardHandler)}
}

func TestCreateOrgWhoseNodesCannotStartLeavesNoTrace(t *testing.T) {
	n := fakeOrgNetwork(t)
	dir := n.state.StateDir
	for attempt := 1; attempt <= 2; attempt++ { // a leftover would make the second attempt ErrOrgExists
		_, err := n.CreateOrg(t.Context(), "Farm")
		require.ErrorIs(t, err, ErrNodeExited, "attempt %d", attempt)

		st, err := loadState(dir)
		require.NoError(t, err)
		require.Empty(t, st.PendingOrgs, "the failed org is not recorded")
		require.Empty(t, st.Nodes, "its nodes are not recorded")
		require.Equal(t, []string{"Hospital"}, st.orgNames())
		require.NoDirExists(t, filepath.Join(dir, "farm"))
		require.NoDirExists(t, filepath.Join(dir, "nodes", "peer0.farm"))
	}
}

func TestCreateOrgRefusesANameTheNetworkHasAndChangesNothing(t *testing.T) {
	n := fakeOrgNetwork(t)
	before, err := os.ReadFile(statePath(n.state.StateDir))
	require.NoError(t, err)
	for _, name := range []string{"Hospital", "hospital"} {
		_, err := n.CreateOrg(t.Context(), name)
		require.ErrorIs(t, err, ErrOrgExists)
	}
	_, err = n.CreateOrg(t.Context(), "Dairy-1")
	require.ErrorContains(t, err, `organisation name "Dairy-1"`)
	after, err := os.ReadFile(statePath(n.state.StateDir))
	require.NoError(t, err)
	require.Equal(t, string(before), string(after))
}

func TestJoinOrgRefusesAnOrgNeverCreatedOrAlreadyAMember(t *testing.T) {
	n := fakeOrgNetwork(t)
	_, err := n.JoinOrg(t.Context(), "Farm")
	require.ErrorIs(t, err, ErrUnknownOrg)
	_, err = n.JoinOrg(t.Context(), "Hospital")
	require.ErrorContains(t, err, "has joined the channel already")
}
