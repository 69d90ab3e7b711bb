package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"google.golang.org/grpc"

	"github.com/iotledger/iotledger/client"
)

// RawValueSize is the size of every value the raw baseline writes.
const RawValueSize = 64

// RawGateway talks to the reference chaincode through fabric-gateway's
// pkg/client directly, with no iotledger code in between: it is the
// baseline every iotledger figure is divided by.
type RawGateway struct {
	gateway  *gw.Gateway
	contract *gw.Contract
	value    string

	mu      sync.Mutex
	written []string // keys known to be committed, for the Get workload
}

// maxKnownKeys bounds the keys remembered for reads.
const maxKnownKeys = 4096

// NewRawGateway opens a gateway over conn as the profile's identity, for
// the chaincode named refcc on the profile's channel.
func NewRawGateway(conn grpc.ClientConnInterface, p *client.Profile, identityName, refcc string) (*RawGateway, error) {
	files, err := p.Identity(identityName)
	if err != nil {
		return nil, err
	}
	id, sign, err := loadGatewayIdentity(files)
	if err != nil {
		return nil, fmt.Errorf("identity %q: %w", identityName, err)
	}
	g, err := gw.Connect(id,
		gw.WithSign(sign),
		gw.WithClientConnection(conn),
		gw.WithEvaluateTimeout(client.DefaultTimeouts.Evaluate),
		gw.WithEndorseTimeout(client.DefaultTimeouts.Endorse),
		gw.WithSubmitTimeout(client.DefaultTimeouts.Submit),
		gw.WithCommitStatusTimeout(client.DefaultTimeouts.CommitStatus),
	)
	if err != nil {
		return nil, fmt.Errorf("raw gateway: %w", err)
	}
	return &RawGateway{
		gateway:  g,
		contract: g.GetNetwork(p.Channel).GetContract(refcc),
		value:    strings.Repeat("v", RawValueSize),
	}, nil
}

// Close releases the gateway (not the connection).
func (r *RawGateway) Close() error { return r.gateway.Close() }

// Put submits Put(key, 64-byte value) and waits for it to commit.
func (r *RawGateway) Put(ctx context.Context, key string) error {
	commit, err := r.submitAsync(ctx, "Put", key, r.value)
	if err != nil {
		return err
	}
	status, err := commit.StatusWithContext(ctx)
	if err != nil {
		return fmt.Errorf("raw Put %s: commit status: %w", key, err)
	}
	if !status.Successful {
		return fmt.Errorf("raw Put %s: transaction %s invalid: %s", key, status.TransactionID, status.Code)
	}
	r.remember(key)
	return nil
}

func (r *RawGateway) submitAsync(ctx context.Context, tx string, args ...string) (*gw.Commit, error) {
	proposal, err := r.contract.NewProposal(tx, gw.WithArguments(args...))
	if err != nil {
		return nil, fmt.Errorf("raw %s: %w", tx, err)
	}
	txn, err := proposal.EndorseWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw %s: endorse: %w", tx, err)
	}
	commit, err := txn.SubmitWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw %s: submit: %w", tx, err)
	}
	return commit, nil
}

// Get evaluates Get(key) and checks the value came back.
func (r *RawGateway) Get(ctx context.Context, key string) error {
	proposal, err := r.contract.NewProposal("Get", gw.WithArguments(key))
	if err != nil {
		return fmt.Errorf("raw Get: %w", err)
	}
	out, err := proposal.EvaluateWithContext(ctx)
	if err != nil {
		return fmt.Errorf("raw Get %s: %w", key, err)
	}
	if len(out) == 0 {
		return fmt.Errorf("raw Get %s: empty result", key)
	}
	return nil
}

func (r *RawGateway) remember(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.written) < maxKnownKeys {
		r.written = append(r.written, key)
	}
}

// KnownKeys returns keys the Put workload committed.
func (r *RawGateway) KnownKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.written...)
}

// PutOp is the raw Put workload: distinct keys per run, worker and
// iteration, so no two transactions ever touch the same key.
func (r *RawGateway) PutOp(run string) Op {
	return func(ctx context.Context, worker int, iter uint64) (int, error) {
		key := run + "-" + strconv.Itoa(worker) + "-" + strconv.FormatUint(iter, 10)
		return 1, r.Put(ctx, key)
	}
}

// GetOp is the raw Get workload over keys known to exist.
func (r *RawGateway) GetOp(keys []string) (Op, error) {
	if len(keys) == 0 {
		return nil, errors.New("raw Get: no committed keys to read (the Put workload wrote none)")
	}
	return func(ctx context.Context, worker int, iter uint64) (int, error) {
		key := keys[(uint64(worker)*7919+iter)%uint64(len(keys))]
		return 1, r.Get(ctx, key)
	}, nil
}

// Seed commits n keys with the given number of concurrent writers, for a
// Get run that has no Put run before it.
func (r *RawGateway) Seed(ctx context.Context, run string, n, workers int) error {
	res, err := RunLoad(ctx, Load{Workers: workers, MaxOps: int64(n), StopAfterErrors: 20}, r.PutOp(run))
	if err != nil {
		return err
	}
	if res.Ops == 0 {
		return fmt.Errorf("raw: seeding keys failed: %s", strings.Join(res.ErrorText, "; "))
	}
	return nil
}

func loadGatewayIdentity(f client.IdentityFiles) (*identity.X509Identity, identity.Sign, error) {
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	cert, err := identity.CertificateFromPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate %s: %w", f.Cert, err)
	}
	id, err := identity.NewX509Identity(f.MSPID, cert)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("read private key: %w", err)
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parse private key %s: %w", f.Key, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, nil, fmt.Errorf("private key %s: %w", f.Key, err)
	}
	return id, sign, nil
}
