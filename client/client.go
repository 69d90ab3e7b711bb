// Package client is the Go SDK of iotledger: typed calls to the iotledger
// chaincode over the Fabric Gateway, with the retry rules Fabric needs
// (only read conflicts are resubmitted, as new transactions), errors that
// carry the chaincode's classified message and the endorsers' details, and
// chaincode event streams that resume from a checkpoint.
//
// One gRPC connection serves a process: Connect opens one for a single
// identity; NewConnection plus Dial let several identities (say a hub and
// an operator) share it.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// KeepaliveTime is the client's gRPC keepalive interval. Peers answer
// pings more often than once a minute with too_many_pings.
const KeepaliveTime = 120 * time.Second

// Timeouts of the four gateway steps.
type Timeouts struct {
	Evaluate time.Duration
	Endorse  time.Duration
	Submit   time.Duration
	// CommitStatus bounds the whole wait for a submitted transaction's
	// commit status, every lookup of it included: past it the outcome is
	// unknown (a *TransactionError at StageCommitStatus that says the
	// transaction may still commit). A transaction the orderer lost (its
	// leader killed before the transaction was in a block) never commits,
	// and the peer's CommitStatus call waits for it for as long as it is
	// let; this bound is what turns that wait into an answer.
	CommitStatus time.Duration
}

// DefaultTimeouts suit a local network. CommitStatus is many blocks (a
// block is cut every BatchTimeout, 250 ms locally, a few seconds on a
// production network, and a commit under load takes a few of them), and
// short enough that a caller who resubmits after an unknown outcome (the
// hub, through the ledger's replay state) does so within seconds.
var DefaultTimeouts = Timeouts{
	Evaluate:     5 * time.Second,
	Endorse:      15 * time.Second,
	Submit:       5 * time.Second,
	CommitStatus: 20 * time.Second,
}

type config struct {
	timeouts      Timeouts
	endorsingOrgs []string
	parallel      bool     // WithParallelEndorsement
	parallelOrgs  []string // its orgs; none: the channel's
	logger        *slog.Logger
	retry         retryPolicy
	dialer        Dialer
}

// Dialer opens the connection to a peer's address, as gRPC's
// WithContextDialer takes it.
type Dialer func(ctx context.Context, address string) (net.Conn, error)

// WithDialer has Connect open its connection to the peer with d instead of
// the default dialer: hosts mode uses it to connect from inside an org's
// network namespace (network/netns). Dial, given a connection, ignores it.
func WithDialer(d Dialer) Option {
	return func(c *config) { c.dialer = d }
}

// Option configures a Client.
type Option func(*config)

// WithTimeouts sets the four gateway timeouts; zero fields keep their defaults.
func WithTimeouts(t Timeouts) Option {
	return func(c *config) {
		if t.Evaluate > 0 {
			c.timeouts.Evaluate = t.Evaluate
		}
		if t.Endorse > 0 {
			c.timeouts.Endorse = t.Endorse
		}
		if t.Submit > 0 {
			c.timeouts.Submit = t.Submit
		}
		if t.CommitStatus > 0 {
			c.timeouts.CommitStatus = t.CommitStatus
		}
	}
}

// WithEndorsingOrganizations sends every submitted proposal to exactly these
// orgs instead of letting the gateway plan endorsement (tests use it to show
// that a write endorsed by the wrong org is invalidated).
func WithEndorsingOrganizations(mspIDs ...string) Option {
	return func(c *config) { c.endorsingOrgs = append([]string(nil), mspIDs...) }
}

// WithLogger sets the logger for retries, reconnects and skipped events.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithRetry bounds read-conflict retries: maxAttempts transactions in all
// (1 disables retry), the first wait being backoff, doubling with jitter.
// The same bound applies to looking up a commit status again after a failed
// lookup, all of them within Timeouts.CommitStatus.
func WithRetry(maxAttempts int, backoff time.Duration) Option {
	return func(c *config) {
		if maxAttempts >= 1 {
			c.retry.max = maxAttempts
		}
		if backoff > 0 {
			c.retry.backoff = backoff
		}
	}
}

// Client makes typed calls to the iotledger chaincode as one identity.
type Client struct {
	cfg     config
	log     *slog.Logger
	mspID   string
	channel string
	conn    *grpc.ClientConn // closed by Close when the client opened it
	gateway *gw.Gateway
	network *gw.Network
	chain   string // chaincode name
	tr      transport

	orgsMu sync.Mutex
	orgs   []string // channel's application orgs, once read

	// parallelOff is until when (Unix ns) parallel endorsement is paused.
	parallelOff atomic.Int64
}

// NewConnection opens the gRPC connection to the profile's gateway peer:
// TLS verified against the profile's CA, with its server name, and a
// keepalive the peer accepts. No I/O happens until the first call.
// A non-nil dialer opens the connection instead of gRPC's own.
func NewConnection(p *Profile, dialer ...Dialer) (*grpc.ClientConn, error) {
	pool, err := p.Peer.TLSRoots()
	if err != nil {
		return nil, err
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, p.Peer.ServerName)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: 20 * time.Second}),
	}
	for _, d := range dialer {
		if d != nil {
			dialOpts = append(dialOpts, grpc.WithContextDialer(d))
		}
	}
	conn, err := grpc.NewClient(p.Peer.Address, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to peer %s: %w", p.Peer.Address, err)
	}
	return conn, nil
}

// Connect opens a connection to the profile's peer and returns a client
// acting as the named identity of the profile ("operator", "hub", ...).
// Close closes the connection too.
func Connect(ctx context.Context, p *Profile, identityName string, opts ...Option) (*Client, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	conn, err := NewConnection(p, cfg.dialer)
	if err != nil {
		return nil, err
	}
	c, err := Dial(ctx, conn, p, identityName, opts...)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	c.conn = conn
	return c, nil
}

// Dial returns a client acting as the named identity over an existing
// connection, which Close leaves open: several identities may share it.
func Dial(_ context.Context, conn grpc.ClientConnInterface, p *Profile, identityName string, opts ...Option) (*Client, error) {
	if p == nil {
		return nil, errors.New("no connection profile")
	}
	cfg := config{timeouts: DefaultTimeouts, logger: slog.New(slog.DiscardHandler), retry: defaultRetry()}
	for _, o := range opts {
		o(&cfg)
	}
	files, err := p.Identity(identityName)
	if err != nil {
		return nil, err
	}
	id, sign, err := loadIdentity(files)
	if err != nil {
		return nil, fmt.Errorf("identity %q: %w", identityName, err)
	}
	g, err := gw.Connect(id,
		gw.WithSign(sign),
		gw.WithClientConnection(conn),
		gw.WithEvaluateTimeout(cfg.timeouts.Evaluate),
		gw.WithEndorseTimeout(cfg.timeouts.Endorse),
		gw.WithSubmitTimeout(cfg.timeouts.Submit),
		gw.WithCommitStatusTimeout(cfg.timeouts.CommitStatus),
	)
	if err != nil {
		return nil, fmt.Errorf("creating gateway for %q: %w", identityName, err)
	}
	network := g.GetNetwork(p.Channel)
	c := &Client{
		cfg:     cfg,
		log:     cfg.logger,
		mspID:   id.MspID(),
		channel: p.Channel,
		gateway: g,
		network: network,
		chain:   p.Chaincode,
	}
	c.tr = &gatewayTransport{network: network, chaincode: p.Chaincode, timeouts: cfg.timeouts, endorsingOrgs: cfg.endorsingOrgs}
	return c, nil
}

// newClientWithTransport builds a client over any transport (unit tests).
func newClientWithTransport(tr transport, mspID string, opts ...Option) *Client {
	cfg := config{timeouts: DefaultTimeouts, logger: slog.New(slog.DiscardHandler), retry: defaultRetry()}
	for _, o := range opts {
		o(&cfg)
	}
	return &Client{cfg: cfg, log: cfg.logger, mspID: mspID, tr: tr}
}

func loadIdentity(f IdentityFiles) (*identity.X509Identity, identity.Sign, error) {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate: %w", err)
	}
	cert, err := identity.CertificateFromPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate %s: %w", f.Cert, err)
	}
	id, err := identity.NewX509Identity(f.MSPID, cert)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("reading private key: %w", err)
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing private key %s: %w", f.Key, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, nil, fmt.Errorf("private key %s: %w", f.Key, err)
	}
	return id, sign, nil
}

// Close releases the gateway, and the connection if Connect opened it.
func (c *Client) Close() error {
	var errs []error
	if c.gateway != nil {
		errs = append(errs, c.gateway.Close())
	}
	if c.conn != nil {
		errs = append(errs, c.conn.Close())
	}
	return errors.Join(errs...)
}

// MSPID is the MSP ID of the client's identity (its org).
func (c *Client) MSPID() string { return c.mspID }

// evaluate runs a query and decodes its JSON result into out (if non-nil).
func (c *Client) evaluate(ctx context.Context, contract, tx string, out any, args ...string) error {
	result, err := c.tr.evaluate(ctx, contract, tx, args)
	if err != nil {
		return newCallError(contract+":"+tx, "", StageEvaluate, err)
	}
	return decodeResult(contract+":"+tx, result, out)
}

// submit runs a transaction to commit and decodes its JSON result into out
// (if non-nil). A transaction that loses a read conflict
// (MVCC_READ_CONFLICT, PHANTOM_READ_CONFLICT) is submitted again as a new
// transaction, with backoff, up to the retry bound; nothing else is retried.
// When the commit status cannot be read, it is looked up again rather than
// resubmitted: the transaction may have committed.
func (c *Client) submit(ctx context.Context, contract, tx string, out any, args ...string) error {
	return c.submitWith(ctx, submitOptions{}, contract, tx, out, args...)
}

// submitWith is submit with per-transaction options (transient data,
// endorsing orgs); a resubmission carries the same options. With parallel
// endorsement, a submit the named orgs fail goes again with the gateway's
// plan (WithParallelEndorsement).
func (c *Client) submitWith(ctx context.Context, opts submitOptions, contract, tx string, out any, args ...string) error {
	if orgs := c.parallelEndorsers(ctx, opts); orgs != nil {
		po := opts
		po.endorsingOrgs = orgs
		err := c.submitAttempts(ctx, po, contract, tx, out, args...)
		if err == nil || !refusedForParallel(err) || ctx.Err() != nil {
			return err
		}
		c.pauseParallel(ctx, contract+":"+tx, orgs, err)
	}
	return c.submitAttempts(ctx, opts, contract, tx, out, args...)
}

// submitAttempts is one submit: a transaction that loses a read conflict,
// or whose endorsers disagreed, is tried again as a new one.
func (c *Client) submitAttempts(ctx context.Context, opts submitOptions, contract, tx string, out any, args ...string) error {
	name := contract + ":" + tx
	var last *TransactionError
	for attempt := 1; attempt <= c.cfg.retry.max; attempt++ {
		p, err := c.tr.submit(ctx, contract, tx, args, opts)
		if err != nil {
			var se *stageError
			stage, txID := StageEndorse, ""
			if errors.As(err, &se) {
				stage, txID, err = se.stage, se.txID, se.err
				if stage == StageSubmit {
					traceStage(ctx, name, StageEndorse, se.endorsed, nil)
				}
				traceStage(ctx, name, stage, se.took, err)
			}
			te := newCallError(name, txID, stage, err)
			te.Attempts = attempt
			if !te.endorsersDisagreed() || attempt == c.cfg.retry.max {
				return te
			}
			// Endorsers that answered differently usually read different
			// states: one peer had not committed the latest block yet.
			// Nothing was submitted; ask again once it has caught up.
			wait := c.cfg.retry.delay(attempt)
			c.log.DebugContext(ctx, "endorsers disagreed; endorsing again as a new transaction",
				"tx", name, "attempt", attempt, "wait", wait)
			last = te
			if err := sleep(ctx, wait); err != nil {
				return last
			}
			continue
		}
		traceStage(ctx, name, StageEndorse, p.endorsed, nil)
		traceStage(ctx, name, StageSubmit, p.submitted, nil)
		start := time.Now()
		st, cerr := c.awaitCommit(ctx, name, p)
		if cerr != nil {
			traceStage(ctx, name, StageCommitStatus, time.Since(start), cerr)
			cerr.Attempts = attempt
			return cerr
		}
		traceStage(ctx, name, StageCommitStatus, time.Since(start), nil)
		if st.valid {
			return decodeResult(name, p.result, out)
		}
		last = &TransactionError{
			Tx: name, TxID: p.txID, Stage: StageCommit, ValidationCode: st.code,
			Message: "transaction committed as invalid: " + st.code, Attempts: attempt,
		}
		if !retryableValidation(st.code) || attempt == c.cfg.retry.max {
			return last
		}
		wait := c.cfg.retry.delay(attempt)
		c.log.DebugContext(ctx, "read conflict; submitting again as a new transaction",
			"tx", name, "txId", p.txID, "code", st.code, "attempt", attempt, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return last
		}
	}
	return last
}

// awaitCommit asks for the commit status of p, asking again (not
// resubmitting) when the question itself fails: at most retry.max lookups,
// and Timeouts.CommitStatus in all, whatever each lookup does. A lookup
// that waits for a transaction that never commits takes the whole bound;
// then the outcome is unknown, and the caller decides (the hub asks the
// ledger's replay state before it submits again).
func (c *Client) awaitCommit(ctx context.Context, name string, p *pending) (commitStatus, *TransactionError) {
	bound := c.cfg.timeouts.CommitStatus
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var lastErr error
	for lookup := 1; lookup <= c.cfg.retry.max; lookup++ {
		st, err := p.status(wctx)
		if err == nil {
			return st, nil
		}
		lastErr = err
		if wctx.Err() != nil {
			break
		}
		wait := c.cfg.retry.delay(lookup)
		c.log.WarnContext(ctx, "commit status unknown; looking it up again",
			"tx", name, "txId", p.txID, "err", err, "wait", wait)
		if sleep(wctx, wait) != nil {
			break
		}
	}
	te := newCallError(name, p.txID, StageCommitStatus, lastErr)
	if ctx.Err() == nil && wctx.Err() != nil {
		te.Message = fmt.Sprintf("no commit status within %s (%s)", bound, te.Message)
	}
	te.Message = "commit status unknown, the transaction may still commit: " + te.Message
	return commitStatus{}, te
}

func decodeResult(name string, result []byte, out any) error {
	if out == nil {
		return nil
	}
	if len(result) == 0 {
		return fmt.Errorf("%s returned an empty result", name)
	}
	if err := json.Unmarshal(result, out); err != nil {
		return fmt.Errorf("decoding the result of %s: %w", name, err)
	}
	return nil
}

func mustJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding argument: %w", err)
	}
	return string(b), nil
}
