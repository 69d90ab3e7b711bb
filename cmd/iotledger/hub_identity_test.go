package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHubRunsAsTheHubIdentityByDefaultAndItsHelpSaysSo(t *testing.T) {
	out, err := runHubSimCLI(t, "hub", "--help")
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`--identity string\s+.*\(default "hub"\)`), out)

	g := &globalOptions{output: "table", logLevel: "error"}
	cmd := newHubCmd(g)
	require.Equal(t, "hub", cmd.PersistentFlags().Lookup("identity").Value.String())
	require.False(t, cmd.PersistentFlags().Changed("identity"))
	require.NoError(t, cmd.PersistentFlags().Set("identity", "operator"), "still chosen with --identity")
	require.Equal(t, "operator", cmd.PersistentFlags().Lookup("identity").Value.String())
}
