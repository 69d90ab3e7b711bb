package main

import (
	"context"
	"encoding/json"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func newCommandCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "command",
		Short: "Send commands to devices and follow them (pending → delivered → acked | failed | expired)",
	}
	l.lf.register(cmd)
	cmd.AddCommand(l.commandSendCmd(), l.commandListCmd(), l.commandGetCmd())
	return cmd
}

func (l *ledgerCmd) commandSendCmd() *cobra.Command {
	var (
		req    api.CommandRequest
		params string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "send (--device ID | --group G [--owner MSPID]) --name NAME [--params JSON] [--ttl 1h]",
		Short: "Send a command to a device or to every device of a group",
		Example: `  iotledger command send --device fridge-01 --name set-setpoint --params '{"celsius":4}'
  iotledger command send --group cold-chain --name reboot --ttl 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case req.Device != "" && req.Group != "":
				return usageErrorf("give either --device or --group, not both")
			case req.Device == "" && req.Group == "":
				return usageErrorf("give the target: --device ID or --group G")
			case req.Owner != "" && req.Group == "":
				return usageErrorf("--owner names the org of a --group (groups are per org); a --device needs no owner")
			}
			if req.Owner != "" {
				if err := reading.ValidateID("owner", req.Owner); err != nil {
					return usageErrorf("invalid --owner %q: %w", req.Owner, err)
				}
			}
			if req.Device != "" {
				if err := reading.ValidateID("device", req.Device); err != nil {
					return usageErrorf("invalid --device %q: %w", req.Device, err)
				}
			}
			if req.Group != "" {
				if err := reading.ValidateID("group", req.Group); err != nil {
					return usageErrorf("invalid --group %q: %w", req.Group, err)
				}
			}
			if err := reading.ValidateID("name", req.Name); err != nil {
				return usageErrorf("invalid --name %q: %w", req.Name, err)
			}
			if params != "" {
				var obj map[string]any
				if err := json.Unmarshal([]byte(params), &obj); err != nil {
					return usageErrorf("invalid --params: give a JSON object, e.g. '{\"celsius\":4}' (%w)", err)
				}
				req.Params = json.RawMessage(params)
			}
			if ttl < 0 || (ttl > 0 && ttl < time.Second) {
				return usageErrorf("invalid --ttl %s: use at least 1s", ttl)
			}
			req.TTLSeconds = int64(ttl / time.Second)
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				cmds, err := lg.SendCommand(ctx, req)
				if err != nil {
					if req.Device != "" {
						return notFound(err, "device", req.Device, deviceListCmd)
					}
					return err
				}
				if cmds == nil {
					cmds = []api.Command{}
				}
				return l.render(cmd.OutOrStdout(), cmds, func(tw *tabwriter.Writer) { commandRows(tw, cmds) })
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Device, "device", "", "target device")
	f.StringVar(&req.Group, "group", "", "target group: every device in it that you may command gets the command")
	f.StringVar(&req.Owner, "owner", "", "the MSP ID whose --group is meant (groups are per org; default: your org)")
	f.StringVar(&req.Name, "name", "", "command name, e.g. reboot")
	f.StringVar(&params, "params", "", "command parameters, a JSON object")
	f.DurationVar(&ttl, "ttl", 0, "time to live before the command expires (default 1h)")
	return cmd
}

func (l *ledgerCmd) commandListCmd() *cobra.Command {
	var (
		q      api.CommandQuery
		status string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "list --device ID [--status S]",
		Short: "List a device's commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := reading.ValidateID("device", q.Device); err != nil {
				return usageErrorf("invalid --device %q: %w", q.Device, err)
			}
			switch api.CommandStatus(status) {
			case "", api.CommandPending, api.CommandDelivered, api.CommandAcked, api.CommandFailed, api.CommandExpired:
				q.Status = api.CommandStatus(status)
			default:
				return usageErrorf("invalid --status %q: use pending, delivered, acked, failed or expired", status)
			}
			if err := checkPage(q.PageSize, all, q.Bookmark); err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				page, err := collectPages(cmd, all, func(bm string) (*api.CommandPage, string, error) {
					q.Bookmark = bm
					p, err := lg.ListCommands(ctx, q)
					if err != nil {
						return nil, "", err
					}
					return p, p.Bookmark, nil
				}, func(acc, next *api.CommandPage) {
					acc.Commands = append(acc.Commands, next.Commands...)
					acc.Bookmark = next.Bookmark
				})
				if err != nil {
					return notFound(err, "device", q.Device, deviceListCmd)
				}
				if page.Commands == nil {
					page.Commands = []api.Command{}
				}
				return l.render(cmd.OutOrStdout(), page, func(tw *tabwriter.Writer) {
					commandRows(tw, page.Commands)
					moreHint(cmd, page.Bookmark)
				})
			})
		},
	}
	cmd.Flags().StringVar(&q.Device, "device", "", "device whose commands to list")
	cmd.Flags().StringVar(&status, "status", "", "only commands in this state")
	pageFlags(cmd, &q.PageSize, &q.Bookmark, &all)
	return cmd
}

func (l *ledgerCmd) commandGetCmd() *cobra.Command {
	return getCmd(l, "command", "iotledger command list --device ID", ledger.Command,
		func(w io.Writer, c *api.Command) error {
			return l.render(w, c, func(tw *tabwriter.Writer) { commandDetail(tw, c) })
		})
}

func commandRows(tw io.Writer, cmds []api.Command) {
	row(tw, "ID", "DEVICE", "NAME", "STATUS", "ISSUED", "BY", "EXPIRES")
	for _, c := range cmds {
		row(tw, c.ID, c.Device, c.Name, c.Status, when(c.IssuedAt), clientName(c.IssuedBy), when(c.ExpiresAt))
	}
}

func commandDetail(tw io.Writer, c *api.Command) {
	row(tw, "ID", c.ID)
	row(tw, "Device", c.Device)
	row(tw, "Owner", c.Owner)
	row(tw, "Name", c.Name)
	params := "-"
	if len(c.Params) > 0 {
		params = string(c.Params)
	}
	row(tw, "Params", params)
	row(tw, "Status", c.Status)
	row(tw, "Issued", when(c.IssuedAt)+" by "+clientName(c.IssuedBy))
	row(tw, "Expires", when(c.ExpiresAt))
	row(tw, "Delivered", whenPtr(c.DeliveredAt)+" by "+clientName(c.DeliveredBy))
	row(tw, "Completed", whenPtr(c.CompletedAt))
	row(tw, "Result", orDash(c.Result))
}
