package client

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
)

// retryPolicy bounds how often a transaction that lost a read conflict is
// submitted again, and how long to wait in between.
type retryPolicy struct {
	max     int           // total attempts, >= 1
	backoff time.Duration // first wait; doubles each time
	ceiling time.Duration // longest wait
}

func defaultRetry() retryPolicy {
	return retryPolicy{max: 5, backoff: 100 * time.Millisecond, ceiling: 5 * time.Second}
}

// retryableValidation reports whether a transaction that committed with
// this validation code may succeed as a new transaction. Only read
// conflicts qualify: every other invalid transaction (a policy failure, a
// bad signature, a duplicate ID) would fail the same way again.
func retryableValidation(code string) bool {
	return code == peer.TxValidationCode_MVCC_READ_CONFLICT.String() ||
		code == peer.TxValidationCode_PHANTOM_READ_CONFLICT.String()
}

// delay returns the wait before attempt n+1 (n >= 1): exponential with
// jitter in [d/2, d), so concurrent losers of one conflict spread out.
func (r retryPolicy) delay(n int) time.Duration {
	d := r.backoff
	for i := 1; i < n && d < r.ceiling; i++ {
		d *= 2
	}
	d = min(d, r.ceiling)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half) // #nosec G404 -- jitter, not a secret
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
