package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

func TestNetworkIdentityVerbsRefuseBadInputBeforeTouchingTheCA(t *testing.T) {
	dir := crashedNetwork(t)
	for _, tc := range []struct {
		name  string
		args  []string
		msg   string
		usage bool // a wrong command line (exit 2), not a failure
	}{
		{"no org", []string{"revoke", "hub"}, "--org is required", true},
		{"no name", []string{"revoke", "--org", "Org1"}, "accepts 1 arg(s), received 0", true},
		{"unknown reason", []string{"revoke", "--org", "Org1", "hub", "--reason", "lost-it"}, `--reason "lost-it": use one of unspecified, keycompromise`, true},
		{"reserved name", []string{"revoke", "--org", "Org1", "admin"}, `identity name "admin" is reserved`, false},
		{"bad name", []string{"revoke", "--org", "Org1", "../hub"}, "only letters, digits", false},
		{"unknown org", []string{"revoke", "--org", "Org9", "hub"}, "Org9", false},
		{"no subcommand", nil, "missing subcommand", true},
		{"enroll without org", []string{"enroll", "hub2", "--role", "hub"}, "--org is required", true},
		{"enroll without role", []string{"enroll", "hub2", "--org", "Org1"}, `--role "": use one of operator, hub, auditor`, true},
		{"enroll with an unknown role", []string{"enroll", "hub2", "--org", "Org1", "--role", "root"}, `--role "root"`, true},
		{"enroll a reserved name", []string{"enroll", "admin", "--org", "Org1", "--role", "hub"}, `identity name "admin" is reserved`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, append(append([]string{"network", "identity"}, tc.args...), "--state-dir", dir)...)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, tc.usage, errors.Is(err, errUsage), "usage error: %v", err)
		})
	}
}

func TestNetworkIdentityRevokeWithoutANetworkSaysHowToStartOne(t *testing.T) {
	_, err := runCLI(t, "network", "identity", "revoke", "--org", "Org1", "hub", "--state-dir", t.TempDir())
	require.ErrorIs(t, err, network.ErrNotUp)
}
