package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes. A script tells a command line that is wrong (fix the script)
// from a command that ran and failed (look at the network, retry): the two
// must never share a code, and neither may be 0.
const (
	exitOK = 0
	// exitFailure: the command ran and failed — the network is down or
	// unreachable, the ledger refused, a device or node does not exist,
	// `network status` found a node unhealthy.
	exitFailure = 1
	// exitUsage: the command line is wrong — an unknown command or flag, the
	// wrong number of arguments, a flag value that cannot be right. Nothing
	// was done.
	exitUsage = 2
)

// exitCodesHelp is the part of `iotledger --help` that documents the codes.
const exitCodesHelp = `Exit codes:
  0  success
  1  the command ran and failed (network unreachable, refused, not found, unhealthy)
  2  the command line is wrong (unknown command or flag, wrong arguments, invalid flag value); nothing was done`

// errUsage marks a command line that is wrong, as opposed to a failure:
// errors.Is(err, errUsage) holds for every usageError.
var errUsage = errors.New("usage error")

// usageError is an error in the command line itself.
type usageError struct{ err error }

func (e *usageError) Error() string        { return e.err.Error() }
func (e *usageError) Unwrap() error        { return e.err }
func (e *usageError) Is(target error) bool { return target == errUsage }

// usageErrorf is fmt.Errorf for a command line that is wrong.
func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// asUsage marks err, which cobra or pflag returned for the command line, as
// a usage error.
func asUsage(err error) error {
	if err == nil || errors.Is(err, errUsage) {
		return err
	}
	return &usageError{err: err}
}

// exitCode maps the error a command returned to the process exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	default:
		return exitFailure
	}
}

// strictUsage makes every mistake in a command line of the tree under root a
// usage error, wherever in the tree it is made. Cobra on its own prints a
// group's help and returns nil for `iotledger device revok x` (only the root
// checks its subcommand names), and returns untyped errors for bad flags and
// arguments. It is applied to the finished tree, so that a group or verb
// added later is covered without anything to remember.
func strictUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })
	// The completion group is otherwise added only when the tree runs;
	// adding it now puts it under the same rules.
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(newHelpCmd())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = cobra.ArbitraryArgs
			c.RunE = runGroup
		case c.Runnable():
			validate := c.Args
			if validate == nil {
				validate = cobra.NoArgs
			}
			c.Args = func(cmd *cobra.Command, args []string) error {
				err := validate(cmd, args)
				if err != nil && cmd.HasSubCommands() && len(args) > 0 {
					// A verb that also has subcommands (hub, hub parked):
					// the word is most likely a mistyped subcommand.
					return usageErrorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), suggestions(cmd, args[0]))
				}
				return asUsage(err)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// runGroup runs a command group given without a subcommand (it prints the
// group's help) or with one it does not have (a usage error naming the word,
// with cobra's suggestions).
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return usageErrorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), suggestions(cmd, args[0]))
}

// newHelpCmd is `iotledger help [command]`. Cobra's own prints "Unknown
// help topic" and exits 0 for `help devic`; this one makes it a usage error
// with suggestions, as the command line itself would be.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			target, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range target.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil {
				return asUsage(err)
			}
			if len(rest) > 0 {
				return usageErrorf("unknown command %q for %q%s", rest[0], target.CommandPath(), suggestions(target, rest[0]))
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		},
	}
}

// suggestions is cobra's "did you mean" text for a mistyped subcommand.
func suggestions(cmd *cobra.Command, typed string) string {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	found := cmd.SuggestionsFor(typed)
	if len(found) == 0 {
		return ""
	}
	return "\n\nDid you mean this?\n\t" + strings.Join(found, "\n\t")
}

// run executes the command line args and returns the process exit code; it
// is main without os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "Error:", err)
	code := exitCode(err)
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}
