package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/automation"
)

const ruleListCmd = "iotledger rule list"

func newRuleCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "rule",
		Short: "Manage automation rules (alerts, quarantine, commands on telemetry)",
	}
	l.lf.register(cmd)
	cmd.AddCommand(l.rulePutCmd(), l.ruleGetCmd(), l.ruleListCmd(), l.ruleDeleteCmd())
	return cmd
}

func (l *ledgerCmd) rulePutCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "put -f rule.json",
		Short: "Create or replace a rule of your org (checked locally first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r api.Rule
			if err := readDocument(cmd, file, &r); err != nil {
				return err
			}
			ev, err := automation.NewEvaluator()
			if err != nil {
				return err
			}
			if err := ev.Validate(r); err != nil {
				return fmt.Errorf("rule %q is not valid: %w", r.ID, err)
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				out, err := lg.PutRule(ctx, r)
				if err != nil {
					return err
				}
				return l.renderRule(cmd.OutOrStdout(), out)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rule JSON file, or - for stdin")
	return cmd
}

func (l *ledgerCmd) ruleGetCmd() *cobra.Command {
	return getCmd(l, "rule", ruleListCmd, ledger.Rule, l.renderRule)
}

func (l *ledgerCmd) ruleListCmd() *cobra.Command {
	var (
		q   api.RuleQuery
		all bool
	)
	cmd := &cobra.Command{
		Use:   "list [--owner MSPID]",
		Short: "List rules (your org's by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPage(q.PageSize, all, q.Bookmark); err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				page, err := collectPages(cmd, all, func(bm string) (*api.RulePage, string, error) {
					q.Bookmark = bm
					p, err := lg.ListRules(ctx, q)
					if err != nil {
						return nil, "", err
					}
					return p, p.Bookmark, nil
				}, func(acc, next *api.RulePage) {
					acc.Rules = append(acc.Rules, next.Rules...)
					acc.Bookmark = next.Bookmark
				})
				if err != nil {
					return err
				}
				if page.Rules == nil {
					page.Rules = []api.Rule{}
				}
				return l.render(cmd.OutOrStdout(), page, func(tw *tabwriter.Writer) {
					row(tw, "ID", "OWNER", "VERSION", "ENABLED", "SELECTOR", "CONDITION", "ACTIONS")
					for _, r := range page.Rules {
						row(tw, r.ID, r.Owner, r.Version, !r.Disabled, selector(r.Selector), r.Condition, actionTypes(r.Actions))
					}
					moreHint(cmd, page.Bookmark)
				})
			})
		},
	}
	cmd.Flags().StringVar(&q.Owner, "owner", "", "list the rules of this MSP ID")
	pageFlags(cmd, &q.PageSize, &q.Bookmark, &all)
	return cmd
}

func (l *ledgerCmd) ruleDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a rule of your org",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				if err := lg.DeleteRule(ctx, args[0]); err != nil {
					return notFound(err, "rule", args[0], ruleListCmd)
				}
				return l.render(cmd.OutOrStdout(), map[string]string{"deleted": args[0]}, func(tw *tabwriter.Writer) {
					row(tw, "deleted rule", args[0])
				})
			})
		},
	}
}

func selector(s api.DeviceSelector) string {
	var parts []string
	for _, d := range s.Devices {
		parts = append(parts, "device:"+d)
	}
	for _, g := range s.Groups {
		parts = append(parts, "group:"+g)
	}
	for _, t := range s.Types {
		parts = append(parts, "type:"+t)
	}
	if len(parts) == 0 {
		return "all devices"
	}
	return strings.Join(parts, ",")
}

func actionTypes(as []api.RuleAction) string {
	parts := make([]string, len(as))
	for i, a := range as {
		switch a.Type {
		case api.ActionTypeAlert:
			parts[i] = "alert(" + a.Severity + ")"
		case api.ActionTypeSetStatus:
			parts[i] = "set_status(" + string(a.Status) + ")"
		case api.ActionTypeCommand:
			parts[i] = "command(" + a.Command + ")"
		default:
			parts[i] = a.Type
		}
	}
	return joinOrDash(parts)
}

func (l *ledgerCmd) renderRule(w io.Writer, r *api.Rule) error {
	return l.render(w, r, func(tw *tabwriter.Writer) {
		row(tw, "ID", r.ID)
		row(tw, "Owner", r.Owner)
		row(tw, "Version", r.Version)
		row(tw, "Enabled", !r.Disabled)
		row(tw, "Description", orDash(r.Description))
		row(tw, "Selector", selector(r.Selector))
		row(tw, "Condition", r.Condition)
		row(tw, "Actions", actionTypes(r.Actions))
		row(tw, "Cooldown", fmt.Sprintf("%ds", r.CooldownSeconds))
		row(tw, "Updated", when(r.UpdatedAt))
	})
}
