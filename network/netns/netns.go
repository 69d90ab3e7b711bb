// Package netns opens sockets inside a Linux network namespace from a
// process that runs outside it. A socket belongs for its whole life to the
// namespace it was created in, so a listener or a connection made here is
// served and used by ordinary goroutines afterwards: only the creation runs
// on an OS thread that has entered the namespace (and left it again).
//
// Hosts mode (see package network) uses it to run an org's hub, index and
// console in the org's namespace within one process, as they would run on
// the org's own host.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
)

// Dir is where iproute2 keeps named namespaces (ip netns add NAME).
const Dir = "/run/netns"

// Namespace is a named network namespace.
type Namespace struct {
	name string
	path string
}

// ErrUnsupported is returned where network namespaces do not exist (not
// Linux).
var ErrUnsupported = errors.New("network namespaces exist only on Linux")

// Name is the namespace's name, as `ip netns list` shows it.
func (ns *Namespace) Name() string { return ns.name }

// String names the namespace.
func (ns *Namespace) String() string { return "network namespace " + ns.name }

// Listen is net.Listen inside the namespace.
func (ns *Namespace) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	return inside(ns, func() (net.Listener, error) { return (&net.ListenConfig{}).Listen(ctx, network, address) })
}

// DialContext is net.Dialer.DialContext inside the namespace. The address
// must be an IP address and port: resolving a name, and dialling several
// addresses of one name in parallel, would run on threads outside the
// namespace.
func (ns *Namespace) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("%s: dial %s: an IP address and port is needed here: %w", ns, address, err)
	}
	return inside(ns, func() (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, network, address) })
}

// inside returns what create makes while in the namespace.
func inside[T any](ns *Namespace, create func() (T, error)) (T, error) {
	var v T
	err := ns.do(func() error {
		var err error
		v, err = create()
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", ns, err)
	}
	return v, nil
}

// Dialer is DialContext over TCP, in the shape gRPC's WithContextDialer
// takes.
func (ns *Namespace) Dialer() func(ctx context.Context, address string) (net.Conn, error) {
	return func(ctx context.Context, address string) (net.Conn, error) {
		return ns.DialContext(ctx, "tcp", address)
	}
}

// path of a named namespace; a name that is not a plain file name is
// refused rather than let reach outside Dir.
func path(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("netns: %q is not a namespace name", name)
	}
	return filepath.Join(Dir, name), nil
}
