package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

// runExit runs a command line as main does and returns its exit code,
// stdout and stderr.
func runExit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// commandGroups are the commands of the real tree that have subcommands.
func commandGroups(t *testing.T) []*cobra.Command {
	t.Helper()
	var groups []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() {
			groups = append(groups, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	require.Greater(t, len(groups), 10, "the tree has its groups")
	return groups
}

// pathArgs is the command line that reaches c.
func pathArgs(c *cobra.Command) []string {
	return strings.Fields(c.CommandPath())[1:]
}

func TestEveryCommandGroupRefusesAnUnknownSubcommandAsAUsageError(t *testing.T) {
	for _, g := range commandGroups(t) {
		t.Run(g.CommandPath(), func(t *testing.T) {
			code, stdout, stderr := runExit(t, append(pathArgs(g), "no-such-verb", "x")...)
			require.Equal(t, exitUsage, code, "stderr: %s", stderr)
			require.Contains(t, stderr, `unknown command "no-such-verb" for "`+g.CommandPath()+`"`)
			require.Contains(t, stderr, "Run '"+g.CommandPath()+" --help' for usage.")
			require.Empty(t, stdout, "no help on stdout: a script must not take it for output")
		})
	}
}

func TestEveryCommandGroupSuggestsTheSubcommandATypoMeant(t *testing.T) {
	for _, g := range commandGroups(t) {
		var verb string
		for _, sub := range g.Commands() {
			if len(sub.Name()) >= 4 && sub.IsAvailableCommand() {
				verb = sub.Name()
				break
			}
		}
		if verb == "" {
			continue
		}
		typo := verb[:len(verb)-1]
		if c, _, err := g.Find([]string{typo}); err == nil && c != g {
			continue // the shortened word is a command of its own
		}
		t.Run(g.CommandPath()+" "+typo, func(t *testing.T) {
			code, _, stderr := runExit(t, append(pathArgs(g), typo)...)
			require.Equal(t, exitUsage, code, "stderr: %s", stderr)
			require.Contains(t, stderr, `unknown command "`+typo+`"`)
			require.Contains(t, stderr, "Did you mean this?\n\t"+verb)
		})
	}
}

func TestACommandGroupWithoutASubcommandPrintsItsHelp(t *testing.T) {
	code, stdout, _ := runExit(t, "device")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "Available Commands:")
	require.Contains(t, stdout, "revoke")
}

func TestHelpOfAnUnknownCommandIsAUsageError(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		says    string // stderr
		printed string // stdout
	}{
		{[]string{"help", "device"}, exitOK, "", "iotledger device [command]"},
		{[]string{"help", "network", "node", "stop"}, exitOK, "", "iotledger network node stop NAME"},
		{[]string{"help", "devic"}, exitUsage, "Did you mean this?\n\tdevice", ""},
		{[]string{"help", "device", "revok"}, exitUsage, `unknown command "revok" for "iotledger device"`, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runExit(t, tt.args...)
			require.Equal(t, tt.code, code, "stderr: %s", stderr)
			require.Contains(t, stderr, tt.says)
			require.Contains(t, stdout, tt.printed)
		})
	}
}

func TestHelpDocumentsTheExitCodes(t *testing.T) {
	code, stdout, _ := runExit(t, "--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "Exit codes:")
	require.Contains(t, stdout, "1  the command ran and failed")
	require.Contains(t, stdout, "2  the command line is wrong")
}

func TestUsageErrorsAndFailuresExitWithTheirOwnCodes(t *testing.T) {
	stopped := crashedNetwork(t)
	noNetwork := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		says []string // in stderr
	}{
		{"unknown flag", []string{"device", "list", "--bogus"}, exitUsage, []string{"unknown flag: --bogus"}},
		{"unknown shorthand flag", []string{"device", "list", "-Z"}, exitUsage, []string{"-Z"}},
		{"flag value of the wrong type", []string{"command", "send", "--ttl", "soon"}, exitUsage, []string{`invalid argument "soon" for "--ttl"`}},
		{"invalid --output", []string{"-o", "yaml", "device", "list"}, exitUsage, []string{`invalid --output "yaml"`}},
		{"flag values that contradict", []string{"command", "send", "--device", "d1", "--group", "g", "--name", "reboot"}, exitUsage, []string{"either --device or --group"}},
		{"missing argument", []string{"device", "get"}, exitUsage, []string{"accepts 1 arg(s), received 0"}},
		{"extra argument", []string{"network", "status", "now"}, exitUsage, []string{`unknown command "now" for "iotledger network status"`}},
		{"node verb without a name", []string{"network", "node", "stop", "--state-dir", stopped}, exitUsage, []string{"takes one node name, got 0", "orderer1"}},
		{"node verb with two names", []string{"network", "node", "start", "orderer1", "peer0.org1", "--state-dir", noNetwork}, exitUsage, []string{"takes one node name, got 2"}},
		{"invalid positional argument", []string{"telemetry", "get", "fridge-01", "minus-one"}, exitUsage, []string{`invalid sequence number "minus-one"`}},
		{"node the network does not have", []string{"network", "node", "stop", "orderer9", "--state-dir", stopped}, exitFailure, []string{`no node "orderer9"`, "orderer1"}},
		{"node of a network that is not up", []string{"network", "node", "stop", "orderer1", "--state-dir", noNetwork}, exitFailure, []string{"no network is up", "iotledger network up"}},
		{"unhealthy network", []string{"network", "status", "--state-dir", stopped}, exitFailure, []string{"network is not healthy", "orderer1 (down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runExit(t, tt.args...)
			require.Equal(t, tt.code, code, "stderr: %s", stderr)
			for _, s := range tt.says {
				require.Contains(t, stderr, s)
			}
			require.Equal(t, tt.code == exitUsage, strings.Contains(stderr, "--help' for usage."),
				"only a usage error points at --help")
		})
	}
}

func TestExitCodeOfAnError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, exitOK},
		{"failure", errors.New("peer unreachable"), exitFailure},
		{"usage error", usageErrorf("invalid --ttl %s", "1ms"), exitUsage},
		{"wrapped usage error", errors.Join(errors.New("context"), usageErrorf("bad")), exitUsage},
		{"cobra's error marked as usage", asUsage(errors.New(`unknown flag: --x`)), exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, exitCode(tt.err))
		})
	}
}

// buildCLI builds this command into a temporary directory with ldflags and
// returns the binary's path.
func buildCLI(t *testing.T, ldflags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "iotledger")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "-ldflags", ldflags, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// The exit codes as the shell sees them: the real os.Exit path.
func TestTheBinaryExitsWithTheUsageOrFailureCode(t *testing.T) {
	bin := buildCLI(t, "")
	profile, _ := consoleProfile(t, wiretest.NewCA(t, "ca.org1")) // its peer, 127.0.0.1:1, is unreachable
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"typo in a subcommand", []string{"device", "revok", "fridge-01"}, exitUsage, "Did you mean this?\n\trevoke"},
		{"typo in a nested group", []string{"network", "nod", "stop", "orderer1"}, exitUsage, "Did you mean this?\n\tnode"},
		{"typo in a command", []string{"devic", "list"}, exitUsage, "Did you mean this?\n\tdevice"},
		{"bad flag", []string{"policy", "list", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"unreachable network", []string{"device", "list", "--profile", profile}, exitFailure, "cannot reach the org's peer"},
		{"no network", []string{"network", "status", "--state-dir", t.TempDir()}, exitFailure, "no network is up"},
		{"success", []string{"version"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			require.Contains(t, stderr.String(), tt.says)
		})
	}
}
