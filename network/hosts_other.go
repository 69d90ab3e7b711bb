//go:build !linux

package network

import (
	"context"
	"net/netip"
)

// Network namespaces are Linux's.
func hostsAvailable(context.Context) error {
	return &HostsError{Reason: "not Linux", Err: &LinuxOnlyError{What: "network namespaces (--hosts)"}}
}

func usedPrefixes(context.Context) ([]netip.Prefix, error) {
	return nil, &LinuxOnlyError{What: "network namespaces (--hosts)"}
}

func createHosts(context.Context, *HostsState) error {
	return &LinuxOnlyError{What: "network namespaces (--hosts)"}
}

func ensureHosts(context.Context, *HostsState) error {
	return &LinuxOnlyError{What: "network namespaces (--hosts)"}
}

// removeHosts has nothing to remove where none can be made.
func removeHosts(context.Context, *HostsState) error { return nil }

func addHost(context.Context, *HostsState, Host) error {
	return &LinuxOnlyError{What: "network namespaces (--hosts)"}
}

func removeHost(context.Context, Host) error { return nil }
