package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
)

// ledger is what the device, policy, rule, command, telemetry and events
// verbs need from the SDK. *client.Client implements it; tests use a fake.
type ledger interface {
	Close() error
	MSPID() string

	EnrollDevice(ctx context.Context, req api.EnrollRequest) (*api.Device, error)
	Device(ctx context.Context, id string) (*api.Device, error)
	ListDevices(ctx context.Context, q api.DeviceQuery) (*api.DevicePage, error)
	UpdateDevice(ctx context.Context, u api.DeviceUpdate) (*api.Device, error)
	RotateDeviceKey(ctx context.Context, id, publicKeyPEM string) (*api.Device, error)
	SetDeviceStatus(ctx context.Context, id string, to api.DeviceStatus, reason string) (*api.Device, error)
	OfferTransfer(ctx context.Context, id, toMSPID string) (*api.Device, error)
	AcceptTransfer(ctx context.Context, id string) (*api.Device, error)
	CancelTransfer(ctx context.Context, id string) (*api.Device, error)
	DeviceHistory(ctx context.Context, id string) ([]api.DeviceHistoryEntry, error)

	PutPolicy(ctx context.Context, p api.Policy) (*api.Policy, error)
	Policy(ctx context.Context, id string) (*api.Policy, error)
	ListPolicies(ctx context.Context, q api.PolicyQuery) (*api.PolicyPage, error)
	DeletePolicy(ctx context.Context, id string) error
	CheckAccess(ctx context.Context, req api.AccessRequest) (*api.Decision, error)
	Explain(ctx context.Context, req api.AccessRequest) (*api.Explanation, error)

	PutRule(ctx context.Context, r api.Rule) (*api.Rule, error)
	Rule(ctx context.Context, id string) (*api.Rule, error)
	ListRules(ctx context.Context, q api.RuleQuery) (*api.RulePage, error)
	DeleteRule(ctx context.Context, id string) error

	SendCommand(ctx context.Context, req api.CommandRequest) ([]api.Command, error)
	Command(ctx context.Context, id string) (*api.Command, error)
	ListCommands(ctx context.Context, q api.CommandQuery) (*api.CommandPage, error)

	TrustAnchor(ctx context.Context) (receipt.Anchor, *common.Block, error)
	ReadingReceipt(ctx context.Context, p *reading.Proof) (*receipt.Receipt, error)
	CommandAckReceipt(ctx context.Context, id string) (*receipt.Receipt, error)
	DeviceReceipt(ctx context.Context, device, txID string) (*receipt.Receipt, error)
	CheckReceipt(ctx context.Context, r *receipt.Receipt, res *receipt.Result) (*client.CrossCheck, error)

	Events(ctx context.Context, opts client.EventOptions) (<-chan client.ChaincodeEvent, error)
}

// ledgerOpener connects to the ledger as the flags say.
type ledgerOpener func(ctx context.Context, f ledgerFlags, log *slog.Logger) (ledger, error)

// ledgerFlags say which network, org and identity a verb acts as.
type ledgerFlags struct {
	stateDir string
	org      string
	identity string
	profile  string // explicit connection.json; overrides stateDir/org
	overlay  string // what the profile lacks (a Fabric CCP's channel, chaincode, identities)
}

func (f *ledgerFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.stateDir, "state-dir", network.DefaultStateDir(), "network state directory (env IOTLEDGER_STATE_DIR)")
	pf.StringVar(&f.org, "org", "Org1", "organisation to act for")
	pf.StringVar(&f.identity, "identity", "operator", `identity of the org's connection profile: operator, hub, auditor, admin, ...`)
	pf.StringVar(&f.profile, "profile", "", "connection profile: iotledger's connection.json or a Fabric common connection profile (JSON or YAML); overrides --state-dir and --org")
	pf.StringVar(&f.overlay, "profile-overlay", "", "iotledger profile fields to add to --profile: a common connection profile's channel, chaincode and identities")
}

func (f *ledgerFlags) validate() error {
	if f.profile == "" {
		if strings.TrimSpace(f.org) == "" {
			return usageErrorf("--org must not be empty (e.g. --org Org1)")
		}
		if strings.ContainsAny(f.org, `/\`) || f.org == "." || f.org == ".." {
			return usageErrorf("invalid --org %q: use an organisation name such as Org1", f.org)
		}
		if f.stateDir == "" {
			return usageErrorf("--state-dir must not be empty")
		}
	}
	if strings.TrimSpace(f.identity) == "" {
		return usageErrorf("--identity must not be empty (e.g. --identity operator)")
	}
	return nil
}

func (f *ledgerFlags) profilePath() string {
	if f.profile != "" {
		return f.profile
	}
	return filepath.Join(f.stateDir, strings.ToLower(f.org), "connection.json")
}

// loadProfile reads the connection profile, saying how to get one if it
// is missing.
func (f *ledgerFlags) loadProfile() (*client.Profile, error) {
	path := f.profilePath()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if f.profile != "" {
			return nil, fmt.Errorf("no connection profile at %s: check --profile", path)
		}
		if _, err := os.Stat(f.stateDir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no network at %s: start one with `iotledger network up`", f.stateDir)
		}
		return nil, fmt.Errorf("no connection profile for org %q in %s: check --org, or start the network with `iotledger network up`", f.org, f.stateDir)
	}
	p, err := client.LoadProfileWithOverlay(path, f.overlay)
	var ie *client.IncompleteProfileError
	if errors.As(err, &ie) {
		return nil, fmt.Errorf("%w\ngive them with --profile-overlay FILE, e.g. %s", err, client.OverlayExample)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// connectLedger is the real ledgerOpener.
func connectLedger(ctx context.Context, f ledgerFlags, log *slog.Logger) (ledger, error) {
	p, err := f.loadProfile()
	if err != nil {
		return nil, err
	}
	if _, err := p.Identity(f.identity); err != nil {
		return nil, fmt.Errorf("--identity: %w", err)
	}
	c, err := client.Connect(ctx, p, f.identity, client.WithLogger(log))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ledgerCmd is shared by the verbs of one group: its flags and how to connect.
type ledgerCmd struct {
	g     *globalOptions
	lf    ledgerFlags
	open  ledgerOpener
	index string // --index: the index database that serves readings
}

// registerIndex adds --index to a group whose reads an index can serve.
func (l *ledgerCmd) registerIndex(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&l.index, "index", "default", `the org's index that serves readings: "sqlite:PATH", a PostgreSQL URL, or "default" for <state-dir>/<org>/index.db (kept by `+"`iotledger index`"+`)`)
}

func newLedgerCmd(g *globalOptions, open ledgerOpener) *ledgerCmd {
	if open == nil {
		open = connectLedger
	}
	return &ledgerCmd{g: g, open: open}
}

// logger logs to stderr at the --log-level.
func (l *ledgerCmd) logger(cmd *cobra.Command) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// run connects (after the flags were validated) and calls fn.
func (l *ledgerCmd) run(cmd *cobra.Command, fn func(ctx context.Context, lg ledger) error) error {
	if err := l.lf.validate(); err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	lg, err := l.open(ctx, l.lf, l.logger(cmd))
	if err != nil {
		return err
	}
	defer func() { _ = lg.Close() }()
	return l.explain(fn(ctx, lg))
}

// explain turns a ledger error into one that says what to do.
func (l *ledgerCmd) explain(err error) error {
	if err == nil {
		return nil
	}
	var te *client.TransactionError
	if errors.As(err, &te) {
		switch {
		case te.Unavailable():
			return fmt.Errorf("%w\ncannot reach the org's peer: is the network running? check with `iotledger network status`", err)
		case te.IdentityRefused():
			return fmt.Errorf("%w\nthe peers refuse identity %q of %s itself: its certificate is revoked (`iotledger network identity revoke`), expired or of no channel MSP; use another identity (--identity)", err, l.lf.identity, l.lf.org)
		case te.Code == api.CodeAccessDenied:
			return fmt.Errorf("%w\nthe ledger refused identity %q of %s: see why with `iotledger policy explain`", err, l.lf.identity, l.lf.org)
		case te.ValidationCode != "" && client.IsConflict(err):
			return fmt.Errorf("%w\nothers kept changing the same record: try again", err)
		}
	}
	return err
}

// hintError replaces a ledger error's text with what to do about it; the
// original stays reachable with errors.As.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// notFound rewrites a NOT_FOUND error about one thing into a hint.
// getCmd is the "get ID" verb of a kind of ledger object: fetch it by ID,
// explain a miss with the verb that lists them, render it.
func getCmd[T any](l *ledgerCmd, what, listCmd string,
	fetch func(ledger, context.Context, string) (*T, error), render func(io.Writer, *T) error,
) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a " + what,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return l.run(cmd, func(ctx context.Context, lg ledger) error {
				v, err := fetch(lg, ctx, args[0])
				if err != nil {
					return notFound(err, what, args[0], listCmd)
				}
				return render(cmd.OutOrStdout(), v)
			})
		},
	}
}

func notFound(err error, what, id, listCmd string) error {
	if api.CodeOf(err) == api.CodeNotFound {
		return &hintError{msg: fmt.Sprintf("no %s %q on the ledger; list %ss with `%s`", what, id, what, listCmd), err: err}
	}
	return err
}

func dirExists(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
