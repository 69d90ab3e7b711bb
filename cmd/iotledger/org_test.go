package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

func TestOrgVerbsRefuseBadCommandLinesAndDefinitions(t *testing.T) {
	dir := crashedNetwork(t)
	files := t.TempDir()
	malformed := filepath.Join(files, "malformed.json")
	require.NoError(t, os.WriteFile(malformed, []byte(`{"groups": {}, "groups": {}}`), 0o600))
	valid := filepath.Join("..", "..", "network", "testdata", "city-definition.json")
	for _, tc := range []struct {
		name  string
		args  []string
		msg   string
		usage bool // a wrong command line (exit 2), not a failure
		is    error
	}{
		{"no subcommand", nil, "missing subcommand", true, nil},
		{"create without a name", []string{"create"}, "accepts 1 arg(s), received 0", true, nil},
		{"create with a name that is not one", []string{"create", "City-1"}, `organisation name "City-1"`, true, nil},
		{"create with a name starting with a digit", []string{"create", "9City"}, `organisation name "9City"`, true, nil},
		{"create two", []string{"create", "City", "Farm"}, "accepts 1 arg(s), received 2", true, nil},
		{"create on a network not completely up", []string{"create", "City"}, "not completely set up", false, nil},
		{"join without a name", []string{"join"}, "accepts 1 arg(s), received 0", true, nil},
		{"join with a bad name", []string{"join", "../city"}, `organisation name "../city"`, true, nil},
		{"join an org never created", []string{"join", "City"}, "create it first", false, network.ErrUnknownOrg},
		{"add without a file", []string{"add"}, "accepts 1 arg(s), received 0", true, nil},
		{"add with an empty signer", []string{"add", valid, "--signers", "Org1,"}, "an empty org name", true, nil},
		{"add a file that is not there", []string{"add", filepath.Join(files, "none.json")}, "no such file", false, os.ErrNotExist},
		{"add a malformed definition", []string{"add", malformed}, `"groups" appears twice`, false, network.ErrMalformedOrgDefinition},
		{"add to a network without member orgs", []string{"add", valid}, "no member org", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCLI(t, append(append([]string{"org"}, tc.args...), "--state-dir", dir)...)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, tc.usage, errors.Is(err, errUsage), "usage error: %v", err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
		})
	}
}

func TestOrgCreateWithoutANetworkSaysHowToStartOne(t *testing.T) {
	_, err := runCLI(t, "org", "create", "City", "--state-dir", t.TempDir())
	require.ErrorIs(t, err, network.ErrNotUp)
}

func TestOrgAddOfAMalformedDefinitionLeavesTheStateAsItWas(t *testing.T) {
	dir := crashedNetwork(t)
	before, err := os.ReadFile(filepath.Join(dir, "network.json"))
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"mod_policy": "Admins"}`), 0o600))
	_, err = runCLI(t, "org", "add", bad, "--state-dir", dir)
	require.ErrorIs(t, err, network.ErrMalformedOrgDefinition)
	after, err := os.ReadFile(filepath.Join(dir, "network.json"))
	require.NoError(t, err)
	require.Equal(t, string(before), string(after))
}
