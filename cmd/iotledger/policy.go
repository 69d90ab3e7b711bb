package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/policy"
)

const maxDocumentBytes = 1 << 20

// readDocument reads a JSON document from a file, or stdin for "-", into v,
// refusing unknown fields and trailing data so typos are caught here.
func readDocument(cmd *cobra.Command, path string, v any) error {
	if path == "" {
		return usageErrorf("give the document with -f FILE (or -f - for stdin)")
	}
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("reading -f: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxDocumentBytes {
		return fmt.Errorf("%s is larger than %d bytes", path, maxDocumentBytes)
	}
	return decodeStrict(path, data, v)
}

func decodeStrict(name string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s is not valid: %w", name, err)
	}
	// Anything but white space after the value (a second value, a stray
	// brace) means the document is not what the operator thinks it is.
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s is not valid: unexpected data after the JSON value", name)
	}
	return nil
}

const policyListCmd = "iotledger policy list"

func newPolicyCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage access policies and ask the ledger who may do what",
	}
	l.lf.register(cmd)
	cmd.AddCommand(l.policyPutCmd(), l.policyGetCmd(), l.policyListCmd(), l.policyDeleteCmd(),
		l.policyDecisionCmd(false), l.policyDecisionCmd(true))
	return cmd
}

func (l *ledgerCmd) policyPutCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "put -f policy.json",
		Short: "Create or replace a policy of your org (checked locally first)",
		Example: `  iotledger policy put -f share-with-org2.json
  cat policy.json | iotledger policy put -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p api.Policy
			if err := readDocument(cmd, file, &p); err != nil {
				return err
			}
			engine, err := policy.NewEngine()
			if err != nil {
				return err
			}
			if err := engine.Validate(p); err != nil {
				return fmt.Errorf("policy %q is not valid: %w", p.ID, err)
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				out, err := lg.PutPolicy(ctx, p)
				if err != nil {
					return err
				}
				return l.renderPolicy(cmd.OutOrStdout(), out)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy JSON file, or - for stdin")
	return cmd
}

func (l *ledgerCmd) policyGetCmd() *cobra.Command {
	return getCmd(l, "policy", policyListCmd, ledger.Policy, l.renderPolicy)
}

func (l *ledgerCmd) policyListCmd() *cobra.Command {
	var (
		q   api.PolicyQuery
		all bool
	)
	cmd := &cobra.Command{
		Use:   "list [--owner MSPID]",
		Short: "List policies (your org's by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPage(q.PageSize, all, q.Bookmark); err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				page, err := collectPages(cmd, all, func(bm string) (*api.PolicyPage, string, error) {
					q.Bookmark = bm
					p, err := lg.ListPolicies(ctx, q)
					if err != nil {
						return nil, "", err
					}
					return p, p.Bookmark, nil
				}, func(acc, next *api.PolicyPage) {
					acc.Policies = append(acc.Policies, next.Policies...)
					acc.Bookmark = next.Bookmark
				})
				if err != nil {
					return err
				}
				if page.Policies == nil {
					page.Policies = []api.Policy{}
				}
				return l.render(cmd.OutOrStdout(), page, func(tw *tabwriter.Writer) {
					row(tw, "ID", "OWNER", "VERSION", "STATEMENTS", "VALID", "UPDATED", "DESCRIPTION")
					for _, p := range page.Policies {
						row(tw, p.ID, p.Owner, p.Version, len(p.Statements), window(p), when(p.UpdatedAt), orDash(p.Description))
					}
					moreHint(cmd, page.Bookmark)
				})
			})
		},
	}
	cmd.Flags().StringVar(&q.Owner, "owner", "", "list the policies of this MSP ID")
	pageFlags(cmd, &q.PageSize, &q.Bookmark, &all)
	return cmd
}

func (l *ledgerCmd) policyDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a policy of your org",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				if err := lg.DeletePolicy(ctx, args[0]); err != nil {
					return notFound(err, "policy", args[0], policyListCmd)
				}
				return l.render(cmd.OutOrStdout(), map[string]string{"deleted": args[0]}, func(tw *tabwriter.Writer) {
					row(tw, "deleted policy", args[0])
				})
			})
		},
	}
}

// accessFlags build an api.AccessRequest.
type accessFlags struct {
	req     api.AccessRequest
	context string
}

func (a *accessFlags) build() (api.AccessRequest, error) {
	r := a.req
	if !strings.Contains(r.Action, ":") || strings.HasPrefix(r.Action, ":") || strings.HasSuffix(r.Action, ":") {
		return r, usageErrorf("invalid --action %q: use area:verb, e.g. telemetry:read", r.Action)
	}
	if r.Resource == "" {
		return r, usageErrorf("--resource is required: the device ID the action is on")
	}
	if a.context != "" {
		if err := decodeStrict("--context", []byte(a.context), &r.Context); err != nil {
			return r, usageErrorf("%w (give a JSON object, e.g. --context '{\"site\":\"lyon\"}')", err)
		}
	}
	return r, nil
}

func (l *ledgerCmd) policyDecisionCmd(explain bool) *cobra.Command {
	var a accessFlags
	use, short := "check", "Ask whether you (or --device) may do --action on --resource now"
	if explain {
		use, short = "explain", "Like check, and show which statements matched and why"
	}
	cmd := &cobra.Command{
		Use:     use + " --action ACTION --resource DEVICE [--device ID] [--context JSON]",
		Short:   short,
		Example: "  iotledger policy " + use + " --action telemetry:read --resource fridge-01 --identity auditor --org Org2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := a.build()
			if err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				if !explain {
					d, err := lg.CheckAccess(ctx, req)
					if err != nil {
						return err
					}
					return l.render(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) { decisionRows(tw, d) })
				}
				e, err := lg.Explain(ctx, req)
				if err != nil {
					return err
				}
				return l.render(cmd.OutOrStdout(), e, func(tw *tabwriter.Writer) {
					decisionRows(tw, &e.Decision)
					p := e.Principal
					who := p.MSPID + " " + orDash(p.Role) + " " + clientName(p.ClientID)
					if p.Device != "" {
						who = "device " + p.Device + " (" + joinOrDash(p.Groups) + ")"
					}
					row(tw, "Principal", who)
					row(tw, "Resource owner", orDash(e.Owner))
					row(tw, "Default", orDash(e.Default))
					row(tw, "")
					row(tw, "POLICY", "STATEMENT", "EFFECT", "MATCHED", "WHY")
					for _, s := range e.Statements {
						sid := s.Sid
						if sid == "" {
							sid = fmt.Sprintf("#%d", s.Index)
						}
						row(tw, s.PolicyID, sid, s.Effect, s.Matched, s.Why)
					}
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.req.Action, "action", "", "action, e.g. telemetry:read, device:command")
	f.StringVar(&a.req.Resource, "resource", "", "device ID the action is on")
	f.StringVar(&a.req.Device, "device", "", "ask about this device as the principal instead of yourself")
	f.StringVar(&a.context, "context", "", "extra request attributes for conditions, a JSON object")
	return cmd
}

func decisionRows(tw io.Writer, d *api.Decision) {
	verdict := "DENIED"
	if d.Allowed {
		verdict = "ALLOWED"
	}
	row(tw, "Decision", verdict)
	row(tw, "Reason", d.Reason)
	if d.PolicyID != "" {
		row(tw, "Decided by", strings.TrimSpace(d.PolicyID+" "+d.Sid))
	}
}

func window(p api.Policy) string {
	if p.NotBefore == nil && p.NotAfter == nil {
		return "always"
	}
	return whenPtr(p.NotBefore) + " .. " + whenPtr(p.NotAfter)
}

func (l *ledgerCmd) renderPolicy(w io.Writer, p *api.Policy) error {
	return l.render(w, p, func(tw *tabwriter.Writer) {
		row(tw, "ID", p.ID)
		row(tw, "Owner", p.Owner)
		row(tw, "Version", p.Version)
		row(tw, "Description", orDash(p.Description))
		row(tw, "Valid", window(*p))
		row(tw, "Updated", when(p.UpdatedAt))
		row(tw, "")
		row(tw, "SID", "EFFECT", "PRINCIPALS", "ACTIONS", "RESOURCES", "CONDITION")
		for i, s := range p.Statements {
			sid := s.Sid
			if sid == "" {
				sid = fmt.Sprintf("#%d", i)
			}
			row(tw, sid, s.Effect, joinOrDash(s.Principals), joinOrDash(s.Actions), joinOrDash(s.Resources), orDash(s.Condition))
		}
	})
}
