package network

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCreateOrgRefusesAHostsModeNetworkAndChangesNothing(t *testing.T) {
	n := fakeOrgNetwork(t)
	n.state.Hosts = &HostsState{Prefix: "il00000", Bridge: "il00000br", Subnet: "10.64.0.0/24", Gateway: "10.64.0.1"}
	require.NoError(t, n.state.save())
	before, err := os.ReadFile(statePath(n.state.StateDir))
	require.NoError(t, err)

	_, err = n.CreateOrg(t.Context(), "Farm")
	require.ErrorIs(t, err, ErrOrgInHostsMode)
	require.ErrorContains(t, err, "network namespace of its own")

	after, err := os.ReadFile(statePath(n.state.StateDir))
	require.NoError(t, err)
	require.Equal(t, string(before), string(after))
	require.NoDirExists(t, filepath.Join(n.state.StateDir, "farm"))
}
