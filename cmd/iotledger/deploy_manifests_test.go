package main

import (
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/deploy/k8s"
)

// parseManifestArgs parses a container's args with the real command tree,
// as `iotledger` would at start: the verb must exist, every flag must be
// one it takes with a value of its type, and the verb's argument and
// required-flag rules must hold.
func parseManifestArgs(args []string) (*cobra.Command, error) {
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, err
	}
	if cmd == root {
		for _, a := range rest {
			if !strings.HasPrefix(a, "-") {
				return nil, runGroup(cmd, []string{a}) // unknown command "hubb" for "iotledger"
			}
		}
		return nil, fmt.Errorf("args %q name no iotledger verb", args)
	}
	if cmd.RunE != nil && reflect.ValueOf(cmd.RunE).Pointer() == reflect.ValueOf(runGroup).Pointer() {
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			return nil, runGroup(cmd, rest[:1]) // unknown command "hubb" for "iotledger"
		}
		return nil, fmt.Errorf("%q is a group, not a verb that runs", cmd.CommandPath())
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	return cmd, nil
}

// placeholder stands for a value the cluster supplies (a Secret, a field).
func placeholder(name string) string { return "postgres://from-secret/" + strings.ToLower(name) }

func TestManifestArgsAreFlagsTheIotledgerVerbsAccept(t *testing.T) {
	docs, err := k8s.Documents()
	require.NoError(t, err)
	verbs := map[string]bool{}
	for _, d := range docs {
		for _, c := range d.Containers() {
			if c.Binary() != "iotledger" {
				continue
			}
			t.Run(d.File+"/"+c.Name, func(t *testing.T) {
				args, err := c.ExpandedArgs(placeholder)
				require.NoError(t, err)
				cmd, err := parseManifestArgs(args)
				require.NoError(t, err)
				verbs[cmd.Name()] = true
				// Paths only make sense absolute in a container.
				for _, name := range []string{"profile", "data", "tls-cert", "tls-key", "anchor"} {
					if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
						require.True(t, strings.HasPrefix(f.Value.String(), "/"), "--%s %s", name, f.Value)
					}
				}
				// Listeners inside a pod serve on every interface.
				for _, name := range []string{"mqtt", "http"} {
					if f := cmd.Flags().Lookup(name); f != nil {
						require.True(t, f.Changed, "--%s must be set: the default listens on loopback only", name)
						require.True(t, strings.HasPrefix(f.Value.String(), "0.0.0.0:"), "--%s %s", name, f.Value)
					}
				}
			})
		}
	}
	require.Equal(t, map[string]bool{"hub": true, "index": true}, verbs)
}

func TestManifestArgsCheckRefusesMisspelledFlagsAndVerbs(t *testing.T) {
	good := []string{"hub", "--profile=/etc/p/connection.json", "--hub-id=hub-1", "--mqtt=0.0.0.0:8883"}
	_, err := parseManifestArgs(good)
	require.NoError(t, err)
	cases := []struct {
		name string
		args []string
		err  string
	}{
		{"misspelled flag", []string{"hub", "--profil=/etc/p/connection.json"}, "unknown flag: --profil"},
		{"flag of another verb", []string{"index", "--hub-id=hub-1"}, "unknown flag: --hub-id"},
		{"value of the wrong type", []string{"hub", "--batch-size=many"}, "invalid argument"},
		{"misspelled verb", []string{"hubb", "--mqtt=0.0.0.0:8883"}, "unknown command"},
		{"group only", []string{"network"}, "not a verb"},
		{"stray argument", []string{"index", "extra"}, "unknown command"},
		{"no verb", []string{"--log-level=info"}, "no iotledger verb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseManifestArgs(tc.args)
			require.ErrorContains(t, err, tc.err)
		})
	}

	t.Run("misspelled flag in hub.yaml", func(t *testing.T) {
		data, err := fs.ReadFile(k8s.Files(), "hub.yaml")
		require.NoError(t, err)
		require.Contains(t, string(data), "- --hub-id=hub-1")
		docs, err := k8s.Decode("hub.yaml", []byte(strings.Replace(string(data), "- --hub-id=hub-1", "- --hubid=hub-1", 1)))
		require.NoError(t, err)
		args, err := docs[0].Containers()[0].ExpandedArgs(placeholder)
		require.NoError(t, err)
		_, err = parseManifestArgs(args)
		require.ErrorContains(t, err, "unknown flag: --hubid")
	})
}
