package client

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
)

// parallelPause is how long a client that named endorsing orgs for
// parallel endorsement and was refused for it leaves the plan to the
// gateway before it names them again.
const parallelPause = time.Minute

// WithParallelEndorsement has every submit that names no endorsing orgs of
// its own endorsed by a peer of each of mspIDs at once, or, with none
// given, of every application org of the channel. Left to plan endorsement
// itself, the gateway asks its own org's peer first, to learn what the
// transaction touches, and the other orgs only once that peer answered:
// with two orgs a transaction is executed twice, one after the other. Named
// orgs are asked together, so a submit's endorsement takes about the time
// of the slowest org, not the sum.
//
// The named orgs must satisfy the endorsement policy of what the
// transaction writes. A submit they fail — an org with no reachable peer
// (the endorsement refused as unavailable or aborted with no chaincode
// error), or a transaction invalidated as ENDORSEMENT_POLICY_FAILURE — is
// submitted again with the gateway's plan, and the client leaves the plan
// to the gateway for a minute before it names them again. A chaincode's
// refusal is never resubmitted. Every org named executes every
// transaction: on a channel of many orgs, name a set that just satisfies
// the policy rather than all of them. The channel's orgs are read once, and
// again after a refusal. WithEndorsingOrganizations, which
// always names its orgs, takes precedence.
func WithParallelEndorsement(mspIDs ...string) Option {
	return func(c *config) {
		c.parallel = true
		c.parallelOrgs = slices.Clone(mspIDs)
	}
}

// parallelEndorsers is the orgs a submit names for parallel endorsement,
// or nil for the gateway's plan.
func (c *Client) parallelEndorsers(ctx context.Context, opts submitOptions) []string {
	if !c.cfg.parallel || len(opts.endorsingOrgs) > 0 || len(c.cfg.endorsingOrgs) > 0 {
		return nil
	}
	if until := c.parallelOff.Load(); until != 0 && time.Now().UnixNano() < until {
		return nil
	}
	if len(c.cfg.parallelOrgs) > 0 {
		return c.cfg.parallelOrgs
	}
	orgs, err := c.ChannelOrgs(ctx)
	if err != nil {
		c.log.DebugContext(ctx, "parallel endorsement: cannot read the channel's orgs; the gateway plans endorsement", "err", err)
		return nil
	}
	return orgs
}

// refusedForParallel reports whether a submit failed because of the orgs it
// named, not because of the transaction: then the gateway's plan may
// succeed.
func refusedForParallel(err error) bool {
	var te *TransactionError
	if !errors.As(err, &te) || te.Code != "" {
		return false
	}
	if te.ValidationCode == "ENDORSEMENT_POLICY_FAILURE" {
		return true
	}
	return te.Stage == StageEndorse && (te.GRPCCode == codes.Unavailable || te.GRPCCode == codes.Aborted)
}

// pauseParallel leaves endorsement to the gateway's plan for parallelPause,
// and has the channel's orgs read again after it (an org that joined since
// may own what the transaction wrote).
func (c *Client) pauseParallel(ctx context.Context, tx string, orgs []string, err error) {
	c.parallelOff.Store(time.Now().Add(parallelPause).UnixNano())
	c.orgsMu.Lock()
	c.orgs = nil
	c.orgsMu.Unlock()
	c.log.WarnContext(ctx, "parallel endorsement refused; submitting again with the gateway's plan, which is used for the next minute",
		"tx", tx, "orgs", orgs, "err", err)
}
