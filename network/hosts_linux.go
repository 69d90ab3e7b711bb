//go:build linux

package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hostsEnv is what hosts mode needs of the machine; tests replace it to
// simulate a machine where namespaces cannot be made.
type hostsEnv struct {
	euid     func() int
	lookPath func(string) (string, error)
	ip       func(ctx context.Context, args ...string) ([]byte, error)
	// Whether a link of the root namespace and a named namespace exist.
	linkExists, netnsExists func(name string) bool
}

var systemHosts = hostsEnv{
	euid:     os.Geteuid,
	lookPath: exec.LookPath,
	ip: func(ctx context.Context, args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, ipCommand, args...).CombinedOutput()
	},
	linkExists:  linkExists,
	netnsExists: netnsExists,
}

// run runs one ip command; its error carries the command and ip's output.
func (e hostsEnv) run(ctx context.Context, args ...string) error {
	out, err := e.ip(ctx, args...)
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func hostsAvailable(ctx context.Context) error { return systemHosts.available(ctx) }

// available checks, before anything is created, that namespaces can be
// made here: the ip command, root, and a probe namespace made and removed.
func (e hostsEnv) available(ctx context.Context) error {
	if _, err := e.lookPath(ipCommand); err != nil {
		return &HostsError{Reason: "the ip command (iproute2) is not on PATH", Err: err}
	}
	if e.euid() != 0 {
		return &HostsError{Reason: "it must run as root (it creates network namespaces, veth pairs and a bridge)"}
	}
	probe := fmt.Sprintf("ilprobe-%d", os.Getpid())
	if err := e.run(ctx, "netns", "add", probe); err != nil {
		return &HostsError{Reason: "creating a network namespace failed", Err: err}
	}
	if err := e.run(ctx, "netns", "del", probe); err != nil {
		return &HostsError{Reason: "removing a probe network namespace failed", Err: err}
	}
	return nil
}

// usedPrefixes lists the machine's IPv4 addresses and routes (every
// table), which a new hosts subnet must not overlap.
func usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var used []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			used = append(used, p.Masked())
		}
	}
	out, err := systemHosts.ip(ctx, "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, fmt.Errorf("ip -4 route show table all: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return append(used, parseRoutes(string(out))...), nil
}

// parseRoutes reads the destinations of `ip -4 route` lines ("default"
// counts as no destination: it is where the rest goes, not an overlap).
func parseRoutes(out string) []netip.Prefix {
	routeTypes := map[string]bool{"unicast": true, "local": true, "broadcast": true, "multicast": true,
		"unreachable": true, "blackhole": true, "prohibit": true, "throw": true, "nat": true, "anycast": true}
	var used []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && routeTypes[f[0]] {
			f = f[1:]
		}
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			used = append(used, p.Masked())
		} else if a, err := netip.ParseAddr(f[0]); err == nil && a.Is4() {
			used = append(used, netip.PrefixFrom(a, 32))
		}
	}
	return used
}

// createHosts makes the bridge and, per host, a namespace with loopback
// and eth0 (its address), the other end of the veth on the bridge. What
// an earlier run left under the same names is removed first; on failure
// what was made is removed again.
func createHosts(ctx context.Context, hs *HostsState) error {
	if err := systemHosts.create(ctx, hs); err != nil {
		return errors.Join(err, systemHosts.remove(context.WithoutCancel(ctx), hs))
	}
	return nil
}

// ensureHosts re-creates the namespaces, links and bridge of a stopped
// network if any is missing (after a reboot, or removed by hand).
func ensureHosts(ctx context.Context, hs *HostsState) error {
	if hs == nil || hostsPresent(hs) {
		return nil
	}
	return createHosts(ctx, hs)
}

func removeHosts(ctx context.Context, hs *HostsState) error {
	if hs == nil {
		return nil
	}
	return systemHosts.remove(ctx, hs)
}

func (e hostsEnv) create(ctx context.Context, hs *HostsState) error {
	if err := e.remove(ctx, hs); err != nil {
		return err
	}
	subnet, err := netip.ParsePrefix(hs.Subnet)
	if err != nil {
		return fmt.Errorf("hosts subnet %q: %w", hs.Subnet, err)
	}
	bits := fmt.Sprintf("/%d", subnet.Bits())
	cmds := [][]string{
		{"link", "add", hs.Bridge, "type", "bridge"},
		{"addr", "add", hs.Gateway + bits, "dev", hs.Bridge},
		{"link", "set", hs.Bridge, "up"},
	}
	for _, h := range hs.Hosts {
		cmds = append(cmds, hostCommands(hs, h, bits)...)
	}
	return e.runAll(ctx, cmds)
}

// hostCommands make one host's namespace with loopback and eth0 (its
// address), the other end of its veth on the bridge.
func hostCommands(hs *HostsState, h Host, bits string) [][]string {
	tmp := strings.Replace(h.Veth, "h", "n", 1)
	return [][]string{
		{"netns", "add", h.Netns},
		{"link", "add", h.Veth, "type", "veth", "peer", "name", tmp},
		{"link", "set", tmp, "netns", h.Netns},
		{"-n", h.Netns, "link", "set", tmp, "name", "eth0"},
		{"-n", h.Netns, "addr", "add", h.IP + bits, "dev", "eth0"},
		{"-n", h.Netns, "link", "set", "eth0", "up"},
		{"-n", h.Netns, "link", "set", "lo", "up"},
		{"link", "set", h.Veth, "master", hs.Bridge, "up"},
	}
}

func (e hostsEnv) runAll(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if err := e.run(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

// addHost makes one more host on a running hosts network's bridge (an org
// that joins); on failure what was made is removed again.
func addHost(ctx context.Context, hs *HostsState, h Host) error { return systemHosts.add(ctx, hs, h) }

func (e hostsEnv) add(ctx context.Context, hs *HostsState, h Host) error {
	subnet, err := netip.ParsePrefix(hs.Subnet)
	if err != nil {
		return fmt.Errorf("hosts subnet %q: %w", hs.Subnet, err)
	}
	if err := e.runAll(ctx, hostCommands(hs, h, fmt.Sprintf("/%d", subnet.Bits()))); err != nil {
		return errors.Join(err, e.removeOne(context.WithoutCancel(ctx), h))
	}
	return nil
}

// removeHost deletes one host's namespace and veth; what is gone is skipped.
func removeHost(ctx context.Context, h Host) error { return systemHosts.removeOne(ctx, h) }

func (e hostsEnv) removeOne(ctx context.Context, h Host) error {
	return e.remove(ctx, &HostsState{Prefix: h.Netns, Hosts: []Host{h}})
}

// remove deletes, by their recorded names, the namespaces (which takes
// their veth ends with them), any veth left in the root namespace and the
// bridge. What is already gone is skipped, so it can run again.
func (e hostsEnv) remove(ctx context.Context, hs *HostsState) error {
	var errs []error
	// A veth goes with its namespace's end, but the kernel removes it a
	// moment later: what vanished while being deleted is no error.
	del := func(exists func(string) bool, name string, args ...string) {
		if !exists(name) {
			return
		}
		if err := e.run(ctx, args...); err != nil && exists(name) {
			errs = append(errs, err)
		}
	}
	for _, h := range hs.Hosts {
		del(e.netnsExists, h.Netns, "netns", "del", h.Netns)
		del(e.linkExists, h.Veth, "link", "del", h.Veth)
	}
	if hs.Bridge != "" { // one host's removal (removeHost) leaves the bridge
		del(e.linkExists, hs.Bridge, "link", "del", hs.Bridge)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the hosts network (%s*): %w", hs.Prefix, err)
	}
	return nil
}

// hostsPresent tells whether every namespace, veth and the bridge exist.
func hostsPresent(hs *HostsState) bool {
	return systemHosts.present(hs)
}

func (e hostsEnv) present(hs *HostsState) bool {
	if !e.linkExists(hs.Bridge) {
		return false
	}
	for _, h := range hs.Hosts {
		if !e.netnsExists(h.Netns) || !e.linkExists(h.Veth) {
			return false
		}
	}
	return true
}

// netnsExists looks for the namespace's bind mount, where ip netns keeps it.
func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}
