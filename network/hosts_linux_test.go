//go:build linux

package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHostsModeRefusesClearlyWhereNamespacesCannotBeMade(t *testing.T) {
	okIP := func(context.Context, ...string) ([]byte, error) { return nil, nil }
	tests := []struct {
		name string
		env  hostsEnv
		want string
	}{
		{
			name: "no ip command",
			env: hostsEnv{euid: func() int { return 0 }, ip: okIP,
				lookPath: func(string) (string, error) { return "", errors.New("executable file not found in $PATH") }},
			want: "the ip command (iproute2) is not on PATH",
		},
		{
			name: "not root",
			env:  hostsEnv{euid: func() int { return 1000 }, ip: okIP, lookPath: func(string) (string, error) { return "/usr/sbin/ip", nil }},
			want: "it must run as root",
		},
		{
			name: "namespaces refused",
			env: hostsEnv{euid: func() int { return 0 }, lookPath: func(string) (string, error) { return "/usr/sbin/ip", nil },
				ip: func(context.Context, ...string) ([]byte, error) {
					return []byte("mount --make-shared /run/netns failed: Operation not permitted"), errors.New("exit status 1")
				}},
			want: "creating a network namespace failed: ip netns add",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.env.available(t.Context())
			var he *HostsError
			require.ErrorAs(t, err, &he)
			require.Contains(t, err.Error(), tt.want)
			require.Contains(t, err.Error(), "network up --hosts: cannot give every org and orderer a network namespace of its own")
			require.Contains(t, err.Error(), "without --hosts")
		})
	}
	good := hostsEnv{euid: func() int { return 0 }, ip: okIP, lookPath: func(string) (string, error) { return "/usr/sbin/ip", nil }}
	require.NoError(t, good.available(t.Context()))
}

func TestParseRoutesReadsEveryDestination(t *testing.T) {
	out := `default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1
broadcast 10.65.187.255 dev ila724dbr table local proto kernel scope link src 10.65.187.1
10.77.0.0/16 via 192.0.2.9 dev eth0
`
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.65.187.255/32"), netip.MustParsePrefix("10.77.0.0/16"),
	}, parseRoutes(out))
}

func TestCreateHostsFailureNamesTheCommand(t *testing.T) {
	hs, err := planHosts("/tmp/x/network", []string{"org1"}, nil)
	require.NoError(t, err)
	none := func(string) bool { return false }
	env := hostsEnv{linkExists: none, netnsExists: none, ip: func(_ context.Context, args ...string) ([]byte, error) {
		if args[0] == "netns" && args[1] == "add" {
			return []byte("Permission denied"), errors.New("exit status 1")
		}
		return nil, nil
	}}
	err = env.create(t.Context(), hs)
	require.ErrorContains(t, err, "ip netns add "+hs.Hosts[0].Netns)
	require.ErrorContains(t, err, "Permission denied")
}

// A namespace's deletion takes its veth along a moment later: the root end
// may still be listed when Down looks and gone when it deletes it.
func TestRemoveHostsCountsALinkThatVanishedWhileDeletedAsRemoved(t *testing.T) {
	hs, err := planHosts("/tmp/y/network", []string{"org1", "org2"}, nil)
	require.NoError(t, err)
	links := map[string]bool{hs.Bridge: true, hs.Hosts[0].Veth: true, hs.Hosts[1].Veth: true}
	netns := map[string]bool{hs.Hosts[0].Netns: true, hs.Hosts[1].Netns: true}
	var ran []string
	env := hostsEnv{
		linkExists:  func(n string) bool { return links[n] },
		netnsExists: func(n string) bool { return netns[n] },
		ip: func(_ context.Context, args ...string) ([]byte, error) {
			ran = append(ran, strings.Join(args, " "))
			switch {
			case args[0] == "netns" && args[1] == "del":
				delete(netns, args[2])
				// The kernel drops the veth only after ip has looked.
			case args[0] == "link" && args[1] == "del" && args[2] != hs.Bridge:
				delete(links, args[2])
				return []byte(`Cannot find device "` + args[2] + `"`), errors.New("exit status 1")
			case args[0] == "link" && args[1] == "del":
				delete(links, args[2])
			}
			return nil, nil
		},
	}
	require.NoError(t, env.remove(t.Context(), hs))
	require.Empty(t, links)
	require.Empty(t, netns)
	require.NoError(t, env.remove(t.Context(), hs), "removing again finds nothing to do")
	require.Len(t, ran, 5)

	// A link that is still there after a failed delete is an error.
	links[hs.Bridge] = true
	env.ip = func(context.Context, ...string) ([]byte, error) {
		return []byte("Operation not permitted"), errors.New("exit status 2")
	}
	require.ErrorContains(t, env.remove(t.Context(), hs), "ip link del "+hs.Bridge)
}

// Two ups on one machine must not choose the same subnet: the choice and
// the bridge that makes it visible to the next chooser happen under one
// machine-wide lock, which a network holds from planning its hosts until
// up has created them.
func TestHostsSubnetIsChosenUnderAMachineWideLock(t *testing.T) {
	opts := Options{StateDir: t.TempDir(), Orderers: 1, Orgs: []string{"Org1"}}
	other, err := lockFile(t.Context(), hostsLockPath())
	require.NoError(t, err)

	n := &Network{state: &State{}}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = n.planHostAddresses(ctx, opts)
	require.ErrorContains(t, err, "waiting for lock")
	require.Nil(t, n.state.Hosts, "no subnet chosen while another network chooses")

	other()
	require.NoError(t, n.planHostAddresses(t.Context(), opts))
	require.NotNil(t, n.state.Hosts)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel2()
	_, err = lockFile(ctx2, hostsLockPath())
	require.ErrorContains(t, err, "waiting for lock", "the planning network holds the lock until its hosts exist")

	n.releaseHostsLock()
	again, err := lockFile(t.Context(), hostsLockPath())
	require.NoError(t, err)
	again()
}

// An org's host added to a running network and failing half-way is removed
// again, and the network's bridge is left alone.
func TestAddHostThatFailsRemovesWhatItMadeAndKeepsTheBridge(t *testing.T) {
	hs, err := planHosts("/tmp/z/network", []string{"org1"}, nil)
	require.NoError(t, err)
	h, err := hs.nextHost("city")
	require.NoError(t, err)
	links := map[string]bool{hs.Bridge: true, hs.Hosts[0].Veth: true}
	netns := map[string]bool{hs.Hosts[0].Netns: true}
	env := hostsEnv{
		linkExists:  func(n string) bool { return links[n] },
		netnsExists: func(n string) bool { return netns[n] },
		ip: func(_ context.Context, args ...string) ([]byte, error) {
			switch {
			case args[0] == "netns" && args[1] == "add":
				netns[args[2]] = true
			case args[0] == "netns" && args[1] == "del":
				delete(netns, args[2])
			case args[0] == "link" && args[1] == "add":
				links[args[2]] = true
			case args[0] == "link" && args[1] == "del":
				delete(links, args[2])
			case args[0] == "-n" && args[2] == "addr":
				return []byte("RTNETLINK answers: File exists"), errors.New("exit status 2")
			}
			return nil, nil
		},
	}
	err = env.add(t.Context(), hs, h)
	require.ErrorContains(t, err, "addr add "+h.IP)
	require.Equal(t, map[string]bool{hs.Hosts[0].Netns: true}, netns, "the city's namespace is gone, Org1's kept")
	require.Equal(t, map[string]bool{hs.Bridge: true, hs.Hosts[0].Veth: true}, links, "the city's veth is gone, the bridge kept")
}
