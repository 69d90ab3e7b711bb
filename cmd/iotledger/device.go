package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

const (
	maxAttrKey   = 64
	maxAttrValue = 256
)

// parseAttrs parses repeated --attr key=value flags. Keys are non-empty,
// without spaces, unique; values may contain "=".
func parseAttrs(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			return nil, usageErrorf("invalid --attr %q: use key=value", p)
		case k == "":
			return nil, usageErrorf("invalid --attr %q: the key is empty", p)
		case len(k) > maxAttrKey:
			return nil, usageErrorf("invalid --attr %q: keys are at most %d bytes", p, maxAttrKey)
		case strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return nil, usageErrorf("invalid --attr %q: keys cannot contain spaces or control characters", p)
		case len(v) > maxAttrValue:
			return nil, usageErrorf("invalid --attr %q: values are at most %d bytes", p, maxAttrValue)
		}
		if _, dup := out[k]; dup {
			return nil, usageErrorf("--attr %q is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// validateIDs checks identifiers given in a flag.
func validateIDs(flag string, ids []string) error {
	for _, id := range ids {
		if err := reading.ValidateID(flag, id); err != nil {
			return usageErrorf("invalid --%s %q: %w", flag, id, err)
		}
	}
	return nil
}

// keyFlags choose a device's public key: a file, or a new key pair.
type keyFlags struct {
	publicKey string
	generate  bool
	alg       string
	keyOut    string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.publicKey, "public-key", "", "PEM file with the device's public key (PKIX, ECDSA P-256 or Ed25519)")
	cmd.Flags().BoolVar(&k.generate, "generate-key", false, "generate a new key pair for the device")
	cmd.Flags().StringVar(&k.alg, "alg", string(reading.ECDSAP256), "algorithm of a generated key: ecdsa-p256 or ed25519")
	cmd.Flags().StringVar(&k.keyOut, "key-out", "", "where to write a generated private key (default <device>.key.pem)")
}

// resolve validates the key flags and returns the public key PEM, plus the
// private key PEM and its path when a key was generated. Nothing is written.
func (k *keyFlags) resolve(deviceID string) (pub string, priv []byte, privPath string, err error) {
	switch {
	case k.publicKey != "" && k.generate:
		return "", nil, "", usageErrorf("give either --public-key FILE or --generate-key, not both")
	case k.publicKey == "" && !k.generate:
		return "", nil, "", usageErrorf("the device needs a key: give --public-key FILE or --generate-key")
	case k.keyOut != "" && !k.generate:
		return "", nil, "", usageErrorf("--key-out only applies with --generate-key")
	}
	if k.publicKey != "" {
		data, err := os.ReadFile(k.publicKey)
		if err != nil {
			return "", nil, "", fmt.Errorf("reading --public-key: %w", err)
		}
		key, err := reading.ParsePublicKey(string(data))
		if err != nil {
			return "", nil, "", fmt.Errorf("--public-key %s: %w", k.publicKey, err)
		}
		return key.PEM(), nil, "", nil
	}
	alg := reading.Algorithm(k.alg)
	if alg != reading.ECDSAP256 && alg != reading.Ed25519 {
		return "", nil, "", usageErrorf("invalid --alg %q: use ecdsa-p256 or ed25519", k.alg)
	}
	path := k.keyOut
	if path == "" {
		path = deviceID + ".key.pem"
	}
	if _, err := os.Stat(path); err == nil {
		return "", nil, "", fmt.Errorf("%s already exists: choose another --key-out or remove it", path)
	}
	signer, err := reading.GenerateKey(alg)
	if err != nil {
		return "", nil, "", err
	}
	privPEM, err := signer.PrivateKeyPEM()
	if err != nil {
		return "", nil, "", err
	}
	return signer.Public().PEM(), privPEM, path, nil
}

// writeNewKey creates the private key file; it never overwrites one.
func writeNewKey(path string, pemBytes []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing the private key: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("writing the private key: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("writing the private key: %w", err)
	}
	return nil
}

// withNewKey saves a generated private key before fn submits its public
// half, and removes it again if the ledger refuses: a refusal leaves no file
// behind, and an enrolled key is never lost.
func withNewKey(cmd *cobra.Command, priv []byte, path string, fn func() error) error {
	if priv == nil {
		return fn()
	}
	if err := writeNewKey(path, priv); err != nil {
		return err
	}
	if err := fn(); err != nil {
		_ = os.Remove(path)
		return err
	}
	_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "private key written to %s (keep it on the device only)\n", path)
	return nil
}

const deviceListCmd = "iotledger device list"

func newDeviceCmd(g *globalOptions, open ledgerOpener) *cobra.Command {
	l := newLedgerCmd(g, open)
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Enroll and manage devices: identity, keys, lifecycle, ownership",
	}
	l.lf.register(cmd)
	cmd.AddCommand(
		l.deviceEnrollCmd(), l.deviceGetCmd(), l.deviceListCmd(), l.deviceUpdateCmd(), l.deviceRotateKeyCmd(),
		l.deviceStatusCmd("activate", api.StatusActive, "Activate a provisioned or suspended device"),
		l.deviceStatusCmd("suspend", api.StatusSuspended, "Suspend a device: it can no longer submit telemetry"),
		l.deviceStatusCmd("revoke", api.StatusRevoked, "Revoke a device for good (its key is compromised)"),
		l.deviceStatusCmd("decommission", api.StatusDecommissioned, "Retire a device for good"),
		l.deviceTransferCmd(), l.deviceAcceptCmd(), l.deviceHistoryCmd(),
	)
	return cmd
}

func (l *ledgerCmd) deviceEnrollCmd() *cobra.Command {
	var (
		req   api.EnrollRequest
		attrs []string
		keys  keyFlags
	)
	cmd := &cobra.Command{
		Use:   "enroll --id ID --type TYPE (--public-key FILE | --generate-key)",
		Short: "Enroll a device of your org with its public key",
		Example: `  iotledger device enroll --id fridge-01 --type fridge --group cold-chain --attr site=lyon --generate-key --activate
  iotledger device enroll --id pump-7 --type pump --public-key pump-7.pub.pem
  iotledger device enroll --id icu-monitor-3 --type vitals-monitor --private --generate-key --activate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := reading.ValidateID("id", req.ID); err != nil {
				return usageErrorf("invalid --id %q: %w", req.ID, err)
			}
			if strings.TrimSpace(req.Type) == "" {
				return usageErrorf("--type is required (e.g. --type fridge)")
			}
			if err := validateIDs("group", req.Groups); err != nil {
				return err
			}
			a, err := parseAttrs(attrs)
			if err != nil {
				return err
			}
			req.Attributes = a
			pub, priv, privPath, err := keys.resolve(req.ID)
			if err != nil {
				return err
			}
			req.PublicKey = pub
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				var d *api.Device
				err := withNewKey(cmd, priv, privPath, func() error {
					var err error
					d, err = lg.EnrollDevice(ctx, req)
					return err
				})
				if err != nil {
					return err
				}
				return l.renderDevice(cmd.OutOrStdout(), d)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ID, "id", "", "device ID (letters, digits and . _ - : @)")
	f.StringVar(&req.Type, "type", "", "device type, e.g. fridge")
	f.StringArrayVar(&req.Groups, "group", nil, "device group (repeatable)")
	f.StringArrayVar(&attrs, "attr", nil, "attribute key=value (repeatable)")
	f.StringVar(&req.Firmware, "firmware", "", "firmware version")
	f.BoolVar(&req.Activate, "activate", false, "enroll straight into the active state")
	f.BoolVar(&req.Private, "private", false, "keep the device's reading values in your org's private data: only hashes reach the channel (hubs submit them with telemetry:SubmitPrivateBatch)")
	keys.register(cmd)
	return cmd
}

func (l *ledgerCmd) deviceGetCmd() *cobra.Command {
	return getCmd(l, "device", deviceListCmd, ledger.Device, l.renderDevice)
}

func (l *ledgerCmd) deviceListCmd() *cobra.Command {
	var (
		q   api.DeviceQuery
		all bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List one org's devices (your org's by default, or --owner's), optionally of one --type or --group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.Type != "" && q.Group != "" {
				return usageErrorf("give at most one of --type and --group (types and groups are per owner org; --owner picks the org)")
			}
			if err := checkPage(q.PageSize, all, q.Bookmark); err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				page, err := collectPages(cmd, all, func(bookmark string) (*api.DevicePage, string, error) {
					q.Bookmark = bookmark
					p, err := lg.ListDevices(ctx, q)
					if err != nil {
						return nil, "", err
					}
					return p, p.Bookmark, nil
				}, func(acc, next *api.DevicePage) {
					acc.Devices = append(acc.Devices, next.Devices...)
					acc.Bookmark = next.Bookmark
				})
				if err != nil {
					return err
				}
				if page.Devices == nil {
					page.Devices = []api.Device{}
				}
				return l.render(cmd.OutOrStdout(), page, func(tw *tabwriter.Writer) {
					row(tw, "ID", "TYPE", "STATUS", "OWNER", "GROUPS", "KEY", "FIRMWARE", "UPDATED")
					for _, d := range page.Devices {
						row(tw, d.ID, d.Type, d.Status, d.Owner, joinOrDash(d.Groups),
							fmt.Sprintf("%s v%d", d.KeyAlg, d.KeyVersion), orDash(d.Firmware), when(d.UpdatedAt))
					}
					for _, sk := range page.Skipped {
						fmt.Fprintf(cmd.ErrOrStderr(), "skipped device %s of %s: %s\n", sk.ID, sk.Owner, sk.Reason)
					}
					moreHint(cmd, page.Bookmark)
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Owner, "owner", "", "list the devices of this MSP ID (default: your org)")
	f.StringVar(&q.Type, "type", "", "list the owner's devices of this type")
	f.StringVar(&q.Group, "group", "", "list the owner's devices of this group")
	pageFlags(cmd, &q.PageSize, &q.Bookmark, &all)
	return cmd
}

func (l *ledgerCmd) deviceUpdateCmd() *cobra.Command {
	var (
		typ, firmware string
		groups, attrs []string
	)
	cmd := &cobra.Command{
		Use:   "update ID [--type T] [--group G]... [--attr k=v]... [--firmware V]",
		Short: "Change a device's type, groups, attributes or firmware (given lists replace the old ones)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := api.DeviceUpdate{ID: args[0]}
			f := cmd.Flags()
			if f.Changed("type") {
				if strings.TrimSpace(typ) == "" {
					return usageErrorf("--type must not be empty")
				}
				u.Type = &typ
			}
			if f.Changed("group") {
				if err := validateIDs("group", groups); err != nil {
					return err
				}
				u.Groups = &groups
			}
			if f.Changed("attr") {
				a, err := parseAttrs(attrs)
				if err != nil {
					return err
				}
				if a == nil {
					a = map[string]string{}
				}
				u.Attributes = &a
			}
			if f.Changed("firmware") {
				u.Firmware = &firmware
			}
			if u.Type == nil && u.Groups == nil && u.Attributes == nil && u.Firmware == nil {
				return usageErrorf("nothing to update: give --type, --group, --attr or --firmware")
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				d, err := lg.UpdateDevice(ctx, u)
				if err != nil {
					return notFound(err, "device", u.ID, deviceListCmd)
				}
				return l.renderDevice(cmd.OutOrStdout(), d)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "new device type")
	f.StringArrayVar(&groups, "group", nil, "new groups (repeatable; replaces all groups)")
	f.StringArrayVar(&attrs, "attr", nil, "new attributes key=value (repeatable; replaces all attributes)")
	f.StringVar(&firmware, "firmware", "", "new firmware version")
	return cmd
}

func (l *ledgerCmd) deviceRotateKeyCmd() *cobra.Command {
	var keys keyFlags
	cmd := &cobra.Command{
		Use:   "rotate-key ID (--public-key FILE | --generate-key [--key-out FILE])",
		Short: "Replace a device's key (the old key stays in the device's history)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := reading.ValidateID("id", id); err != nil {
				return usageErrorf("invalid device ID %q: %w", id, err)
			}
			pub, priv, privPath, err := keys.resolve(id)
			if err != nil {
				return err
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				var d *api.Device
				err := withNewKey(cmd, priv, privPath, func() error {
					var err error
					d, err = lg.RotateDeviceKey(ctx, id, pub)
					return err
				})
				if err != nil {
					return notFound(err, "device", id, deviceListCmd)
				}
				return l.renderDevice(cmd.OutOrStdout(), d)
			})
		},
	}
	keys.register(cmd)
	return cmd
}

func (l *ledgerCmd) deviceStatusCmd(verb string, to api.DeviceStatus, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   verb + " ID [--reason TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				d, err := lg.SetDeviceStatus(ctx, args[0], to, reason)
				if err != nil {
					return notFound(err, "device", args[0], deviceListCmd)
				}
				return l.renderDevice(cmd.OutOrStdout(), d)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the device's history)")
	return cmd
}

func (l *ledgerCmd) deviceTransferCmd() *cobra.Command {
	var (
		to     string
		cancel bool
	)
	cmd := &cobra.Command{
		Use:   "transfer ID (--to MSPID | --cancel)",
		Short: "Offer a device to another org (it moves when they accept), or withdraw the offer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case to != "" && cancel:
				return usageErrorf("give either --to MSPID or --cancel, not both")
			case to == "" && !cancel:
				return usageErrorf("give --to MSPID (e.g. --to Org2MSP) to offer the device, or --cancel to withdraw an offer")
			}
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				var (
					d   *api.Device
					err error
				)
				if cancel {
					d, err = lg.CancelTransfer(ctx, args[0])
				} else {
					d, err = lg.OfferTransfer(ctx, args[0], to)
				}
				if err != nil {
					return notFound(err, "device", args[0], deviceListCmd)
				}
				return l.renderDevice(cmd.OutOrStdout(), d)
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "MSP ID of the org offered the device")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "withdraw a pending offer")
	return cmd
}

func (l *ledgerCmd) deviceAcceptCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "accept ID",
		Short: "Accept a device another org offered to yours",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				d, err := lg.AcceptTransfer(ctx, args[0])
				if err != nil {
					return notFound(err, "device", args[0], deviceListCmd)
				}
				return l.renderDevice(cmd.OutOrStdout(), d)
			})
		},
	}
}

func (l *ledgerCmd) deviceHistoryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "history ID",
		Short: "Show every committed version of a device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				h, err := lg.DeviceHistory(ctx, args[0])
				if err != nil {
					return notFound(err, "device", args[0], deviceListCmd)
				}
				if h == nil {
					h = []api.DeviceHistoryEntry{}
				}
				return l.render(cmd.OutOrStdout(), h, func(tw *tabwriter.Writer) {
					row(tw, "TIME", "TX", "STATUS", "OWNER", "KEY", "NOTE")
					for _, e := range h {
						if e.Deleted || e.Device == nil {
							row(tw, when(e.Timestamp), e.TxID, "(deleted)", "-", "-", "-")
							continue
						}
						d := e.Device
						row(tw, when(e.Timestamp), e.TxID, d.Status, d.Owner,
							fmt.Sprintf("v%d %s", d.KeyVersion, shortID(d.KeyID)), orDash(d.StatusNote))
					}
				})
			})
		},
	}
}

func (l *ledgerCmd) renderDevice(w io.Writer, d *api.Device) error {
	return l.render(w, d, func(tw *tabwriter.Writer) {
		row(tw, "ID", d.ID)
		row(tw, "Owner", d.Owner)
		row(tw, "Type", d.Type)
		row(tw, "Status", d.Status)
		if d.StatusNote != "" {
			row(tw, "Status note", d.StatusNote)
		}
		row(tw, "Groups", joinOrDash(d.Groups))
		row(tw, "Attributes", attrs(d.Attributes))
		row(tw, "Key", fmt.Sprintf("%s v%d %s", d.KeyAlg, d.KeyVersion, d.KeyID))
		row(tw, "Firmware", orDash(d.Firmware))
		if d.Private {
			row(tw, "Telemetry", "private to "+d.Owner+" (only hashes on the channel)")
		}
		if d.PendingTo != "" {
			row(tw, "Transfer offered to", d.PendingTo)
		}
		row(tw, "Enrolled", when(d.EnrolledAt)+" by "+clientName(d.EnrolledBy))
		row(tw, "Updated", when(d.UpdatedAt)+" in tx "+orDash(d.UpdatedByTx))
	})
}

// pageFlags registers the paging flags of a list verb.
func pageFlags(cmd *cobra.Command, size *int32, bookmark *string, all *bool) {
	cmd.Flags().Int32Var(size, "page-size", 0, "results per page (default 50, at most 500)")
	cmd.Flags().StringVar(bookmark, "bookmark", "", "continue a previous listing from its bookmark")
	cmd.Flags().BoolVar(all, "all", false, "fetch every page")
}

func checkPage(size int32, all bool, bookmark string) error {
	if size < 0 || size > 500 {
		return usageErrorf("invalid --page-size %d: use 1 to 500", size)
	}
	if all && bookmark != "" {
		return usageErrorf("give either --all or --bookmark, not both")
	}
	return nil
}

// collectPages fetches one page, or with all every page, merging them.
func collectPages[P any](cmd *cobra.Command, all bool, fetch func(bookmark string) (*P, string, error), merge func(acc, next *P)) (*P, error) {
	acc, next, err := fetch(currentBookmark(cmd))
	if err != nil {
		return nil, err
	}
	pages := 1
	for all && next != "" {
		p, bm, err := fetch(next)
		if err != nil {
			return nil, err
		}
		merge(acc, p)
		next = bm
		pages++
		_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "\rfetched %d pages", pages)
	}
	if pages > 1 {
		_, _ = fmt.Fprintln(cmd.ErrOrStderr())
	}
	return acc, nil
}

func currentBookmark(cmd *cobra.Command) string {
	bm, err := cmd.Flags().GetString("bookmark")
	if err != nil {
		return ""
	}
	return bm
}

// moreHint tells a person how to get the next page.
func moreHint(cmd *cobra.Command, bookmark string) {
	if bookmark != "" {
		_, _ = fmt.Fprintf(cmd.ErrOrStderr(), "more results: add --bookmark %s (or --all)\n", bookmark)
	}
}
