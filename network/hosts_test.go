package network

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlanHostsNamesFitLinuxAndAvoidUsedSubnets(t *testing.T) {
	hosts := []string{"orderer1", "orderer2", "orderer3", "org1", "org2"}
	used := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.0/8")}
	a, err := planHosts("/tmp/a/network", hosts, used)
	require.NoError(t, err)
	b, err := planHosts("/tmp/b/network", hosts, used)
	require.NoError(t, err)
	require.NotEqual(t, a.Prefix, b.Prefix, "networks side by side get distinct names")
	again, err := planHosts("/tmp/a/network", hosts, used)
	require.NoError(t, err)
	require.Equal(t, a, again, "names and subnet follow from the state dir")

	subnet := netip.MustParsePrefix(a.Subnet)
	require.Equal(t, 24, subnet.Bits())
	require.True(t, subnet.Contains(netip.MustParseAddr(a.Gateway)))
	require.LessOrEqual(t, len(a.Bridge), 15)
	ips := map[string]bool{a.Gateway: true}
	for _, h := range a.Hosts {
		require.LessOrEqual(t, len(h.Veth), 15, h.Veth)
		require.True(t, subnet.Contains(netip.MustParseAddr(h.IP)), h.IP)
		require.False(t, ips[h.IP], "address %s given twice", h.IP)
		ips[h.IP] = true
	}
	require.Equal(t, a.Hosts[3], *a.host("org1"))
	require.Nil(t, a.host("org9"))
	var none *HostsState
	require.Nil(t, none.host("org1"), "a network without hosts has no host")

	// The chosen subnet in use: the next plan takes another.
	moved, err := planHosts("/tmp/a/network", hosts, append(used, subnet))
	require.NoError(t, err)
	require.NotEqual(t, a.Subnet, moved.Subnet)
}

func TestChooseSubnetSkipsOverlapsAndFailsWhenAllAreTaken(t *testing.T) {
	tests := []struct {
		name string
		used []netip.Prefix
		want string
		err  error
	}{
		{name: "free", used: nil, want: "10.64.0.0/24"},
		{name: "exact route", used: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/24")}, want: "10.64.1.0/24"},
		{name: "wider route", used: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/16")}, want: "10.65.0.0/24"},
		{name: "host address", used: []netip.Prefix{netip.MustParsePrefix("10.64.0.7/32")}, want: "10.64.1.0/24"},
		{name: "all of 10/8", used: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, err: ErrNoFreeSubnet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseSubnet([]byte{0, 0}, tt.used)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}
