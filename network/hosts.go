package network

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Hosts mode (Options.Hosts): every org (peer, CA, chaincode servers) and
// every orderer runs in a Linux network namespace of its own, joined to the
// other hosts and to the root namespace by a veth pair on one bridge. The
// names and addresses are recorded in network.json (State.Hosts) so that
// Down removes exactly what Up made, also after a crash.

// ipCommand is iproute2's ip, which makes the namespaces and links and runs
// each node inside its namespace (ip netns exec).
const ipCommand = "ip"

// HostsState is the recorded layout of a hosts-mode network.
type HostsState struct {
	Prefix  string `json:"prefix"`  // of every name below: "il" + 5 hex digits of the state dir's hash
	Bridge  string `json:"bridge"`  // bridge in the root namespace, holding Gateway
	Subnet  string `json:"subnet"`  // private /24 of the network, e.g. 10.77.3.0/24
	Gateway string `json:"gateway"` // the bridge's address: the root namespace's side
	Hosts   []Host `json:"hosts"`
}

// Host is one network namespace: an orderer or an org.
type Host struct {
	Name  string `json:"name"`  // "orderer1", "org1"
	Netns string `json:"netns"` // namespace name, e.g. "il1a2b3-org1"
	Veth  string `json:"veth"`  // root side of the veth pair (on the bridge); "eth0" inside
	IP    string `json:"ip"`    // the host's address in Subnet
}

// host returns the recorded host of that name, nil if none.
func (h *HostsState) host(name string) *Host {
	if h == nil {
		return nil
	}
	for i := range h.Hosts {
		if h.Hosts[i].Name == name {
			return &h.Hosts[i]
		}
	}
	return nil
}

// HostsError says why hosts mode cannot run here (not root, no
// namespaces, no ip command, not Linux). Up returns it before it creates
// anything.
type HostsError struct {
	Reason string
	Err    error
}

func (e *HostsError) Error() string {
	msg := "network up --hosts: cannot give every org and orderer a network namespace of its own: " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + " (hosts mode needs Linux, root and iproute2; run `network up` without --hosts to use 127.0.0.1)"
}

func (e *HostsError) Unwrap() error { return e.Err }

// ErrNoFreeSubnet is returned when every candidate /24 overlaps a route or
// an address of the machine.
var ErrNoFreeSubnet = errors.New("no free private /24 for the hosts network")

// planHosts names the bridge, namespaces and veths of a network from the
// hash of its state dir (networks side by side get distinct names;
// interface names stay within Linux's 15 characters) and gives every host
// an address in a /24 that overlaps none of used.
func planHosts(stateDir string, hosts []string, used []netip.Prefix) (*HostsState, error) {
	sum := sha256.Sum256([]byte(stateDir))
	prefix := fmt.Sprintf("il%x", sum[:3])[:7]
	subnet, err := chooseSubnet(sum[3:], used)
	if err != nil {
		return nil, err
	}
	base := subnet.Addr().As4()
	if len(hosts) > 250 {
		return nil, fmt.Errorf("hosts mode: %d hosts do not fit in a /24", len(hosts))
	}
	hs := &HostsState{
		Prefix: prefix, Bridge: prefix + "br", Subnet: subnet.String(),
		Gateway: netip.AddrFrom4([4]byte{base[0], base[1], base[2], 1}).String(),
	}
	for i, name := range hosts {
		hs.Hosts = append(hs.Hosts, Host{
			Name: name, Netns: prefix + "-" + name, Veth: prefix + "h" + strconv.Itoa(i),
			IP: netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(i + 2)}).String(),
		})
	}
	return hs, nil
}

// nextHost plans one more host named name on hs: the next veth index and
// the lowest address of the subnet no host has (an org that joins).
func (h *HostsState) nextHost(name string) (Host, error) {
	subnet, err := netip.ParsePrefix(h.Subnet)
	if err != nil {
		return Host{}, fmt.Errorf("hosts subnet %q: %w", h.Subnet, err)
	}
	taken := map[string]bool{h.Gateway: true}
	veths := map[string]bool{}
	for _, o := range h.Hosts {
		if o.Name == name {
			return Host{}, fmt.Errorf("hosts mode: the network has a host %s already (%s at %s)", name, o.Netns, o.IP)
		}
		taken[o.IP], veths[o.Veth] = true, true
	}
	base := subnet.Addr().As4()
	host := Host{Name: name, Netns: h.Prefix + "-" + name}
	for i := 0; host.Veth == ""; i++ {
		if v := h.Prefix + "h" + strconv.Itoa(i); !veths[v] {
			host.Veth = v
		}
	}
	for last := 2; last < 255; last++ {
		if ip := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(last)}).String(); !taken[ip] {
			host.IP = ip
			return host, nil
		}
	}
	return Host{}, fmt.Errorf("hosts mode: no free address left in %s for %s", h.Subnet, name)
}

// chooseSubnet picks 10.a.b.0/24 (a in 64..254) starting from a point set
// by seed, skipping every /24 that overlaps a used prefix.
func chooseSubnet(seed []byte, used []netip.Prefix) (netip.Prefix, error) {
	const lowA, spanA = 64, 191
	start := (int(seed[0])<<8 | int(seed[1])) % (spanA * 256)
	for i := range spanA * 256 {
		k := (start + i) % (spanA * 256)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(lowA + k/256), byte(k % 256), 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, ErrNoFreeSubnet
}
