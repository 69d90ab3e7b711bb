package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNextHostTakesTheLowestFreeAddressAndAnUnusedVeth(t *testing.T) {
	hs, err := planHosts("/tmp/some-state", []string{"orderer1", "orderer2", "orderer3", "org1", "org2"}, nil)
	require.NoError(t, err)
	ip := func(last byte) string {
		b := netip.MustParsePrefix(hs.Subnet).Addr().As4()
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], last}).String()
	}
	h, err := hs.nextHost("org3")
	require.NoError(t, err)
	require.Equal(t, Host{Name: "org3", Netns: hs.Prefix + "-org3", Veth: hs.Prefix + "h5", IP: ip(7)}, h, "after .2–.6 and h0–h4")

	// An org named like a host the network has (an orderer's) gets none.
	_, err = hs.nextHost("orderer1")
	require.ErrorContains(t, err, "has a host orderer1 already")

	// A host removed (a join that failed) frees its address and veth.
	hs.Hosts = append(hs.Hosts[:1], hs.Hosts[2:]...) // orderer2: .3, h1
	h, err = hs.nextHost("org3")
	require.NoError(t, err)
	require.Equal(t, hs.Prefix+"h1", h.Veth)
	require.Equal(t, ip(3), h.IP)

	// A full /24 says so.
	hs.Hosts = nil
	for last := 2; last < 255; last++ {
		hs.Hosts = append(hs.Hosts, Host{Name: "h" + strconv.Itoa(last), Veth: hs.Prefix + "h" + strconv.Itoa(last), IP: ip(byte(last))})
	}
	_, err = hs.nextHost("org9")
	require.ErrorContains(t, err, "no free address")
}

// An org named like a host of the network (here an orderer's) is refused
// before anything is made: its failed creation would remove that host.
func TestCreateOrgNamedLikeAHostIsRefusedAndChangesNothing(t *testing.T) {
	n := fakeOrgNetwork(t)
	hs, err := planHosts(n.state.StateDir, []string{"orderer1", "hospital"}, nil)
	require.NoError(t, err)
	n.state.Hosts = hs
	require.NoError(t, n.state.save())
	before, err := os.ReadFile(statePath(n.state.StateDir))
	require.NoError(t, err)

	_, err = n.CreateOrg(t.Context(), "Orderer1")
	require.ErrorContains(t, err, "has a host orderer1 already")

	after, err := os.ReadFile(statePath(n.state.StateDir))
	require.NoError(t, err)
	require.Equal(t, string(before), string(after))
	require.NoDirExists(t, filepath.Join(n.state.StateDir, "orderer1"))
}
