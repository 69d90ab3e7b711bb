package main

import (
	"context"
	"fmt"
	"net"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network/netns"
)

// orgPlace is where the demo runs an org's own services (hub, index,
// console) and from where they reach its peer: loopback, or in hosts mode
// the org's network namespace at its address, as on the org's own host.
type orgPlace struct {
	org string
	ip  string
	ns  *netns.Namespace // nil: this process's namespace
}

// place returns org's place on d's network.
func (d *demo) place(org string) (orgPlace, error) {
	h, ok := d.net.OrgHost(org)
	if !ok {
		return orgPlace{org: org, ip: "127.0.0.1"}, nil
	}
	ns, err := netns.Open(h.Netns)
	if err != nil {
		return orgPlace{}, fmt.Errorf("%s's host: %w", org, err)
	}
	return orgPlace{org: org, ip: h.IP, ns: ns}, nil
}

// addr is the place's address with port ("0": any free one).
func (p orgPlace) addr(port string) string { return net.JoinHostPort(p.ip, port) }

// listen opens a TCP listener in the place.
func (p orgPlace) listen(ctx context.Context, network, address string) (net.Listener, error) {
	if p.ns == nil {
		return (&net.ListenConfig{}).Listen(ctx, network, address)
	}
	return p.ns.Listen(ctx, network, address)
}

// dialer connects from the place to a peer; nil on loopback (gRPC's own).
func (p orgPlace) dialer() client.Dialer {
	if p.ns == nil {
		return nil
	}
	return p.ns.Dialer()
}

// connect is client.Connect from the place.
func (p orgPlace) connect(ctx context.Context, prof *client.Profile, identity string, opts ...client.Option) (*client.Client, error) {
	return client.Connect(ctx, prof, identity, append(opts, client.WithDialer(p.dialer()))...)
}

func (p orgPlace) String() string {
	if p.ns == nil {
		return "on loopback"
	}
	return fmt.Sprintf("in %s's %s (%s)", p.org, p.ns, p.ip)
}

// consoleAddr is where the console listens for --console addr: as given on
// loopback; in hosts mode on the org's address with addr's port, since an
// address of this process's namespace does not exist in the org's.
func (p orgPlace) consoleAddr(addr string) (string, error) {
	if p.ns == nil {
		return addr, nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--console %s: %w", addr, err)
	}
	return p.addr(port), nil
}
