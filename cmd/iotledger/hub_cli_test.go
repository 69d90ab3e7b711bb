package main

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

func runHubSimCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	g := &globalOptions{output: "table", logLevel: "error"}
	root := &cobra.Command{Use: "iotledger", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newHubCmd(g), newSimCmd(g))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestHubAndSimRefuseBadFlagsWithAClearError(t *testing.T) {
	noNet := t.TempDir() + "/nothing-here"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"hub without id", []string{"hub"}, "--hub-id is required"},
		{"hub with bad id", []string{"hub", "--hub-id", "a b"}, "invalid --hub-id"},
		{"hub batch size", []string{"hub", "--hub-id", "h", "--batch-size", "0"}, "invalid --batch-size 0"},
		{"hub submitters", []string{"hub", "--hub-id", "h", "--submitters", "500"}, "invalid --submitters 500"},
		{"hub parallel endorsement, empty name", []string{"hub", "--hub-id", "h", "--parallel-endorsement", "Org1MSP,,Org2MSP"}, "invalid --parallel-endorsement"},
		{"hub parallel endorsement, an org twice", []string{"hub", "--hub-id", "h", "--parallel-endorsement", "Org1MSP,Org1MSP"}, "Org1MSP is named twice"},
		{"hub stale-if-error zero", []string{"hub", "--hub-id", "h", "--stale-if-error", "0s"}, "invalid --stale-if-error 0"},
		{"hub tls half", []string{"hub", "--hub-id", "h", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"hub zero cap", []string{"hub", "--hub-id", "h", "--max-connections", "0"}, "0 is no bound; -1 turns one off"},
		{"hub without network", []string{"hub", "--hub-id", "h", "--state-dir", noNet}, "no network at"},
		{"sim rate", []string{"sim", "--hub-id", "h", "--keys", t.TempDir(), "--rate", "fast"}, "invalid --rate"},
		{"sim without hub id", []string{"sim", "--keys", t.TempDir()}, "--hub-id is required"},
		{"sim without keys", []string{"sim", "--hub-id", "h"}, "--keys is required"},
		{"sim scenario", []string{"sim", "--hub-id", "h", "--keys", t.TempDir(), "--scenario", "weather"}, `unknown scenario "weather"`},
		{"sim devices", []string{"sim", "--hub-id", "h", "--keys", t.TempDir(), "--devices", "0"}, "Devices"},
		{"sim enroll without network", []string{"sim", "--hub-id", "h", "--keys", t.TempDir(), "--enroll", "--state-dir", noNet}, "no network at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runHubSimCLI(t, tc.args...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
