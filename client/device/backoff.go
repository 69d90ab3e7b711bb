package device

import (
	"math/rand/v2"
	"time"
)

// Backoff is how long a device waits before each reconnection attempt: Min,
// doubling up to Max, each wait drawn at random from its upper half so that
// a fleet cut off at once does not come back at once.
type Backoff struct {
	Min time.Duration // first wait (default 1 s)
	Max time.Duration // longest wait (default 60 s)
}

// DefaultBackoff is the back-off docs/protocol.md asks of devices.
var DefaultBackoff = Backoff{Min: time.Second, Max: time.Minute}

// Delay is the wait before attempt number attempt (0 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultBackoff.Min
	}
	if hi < lo {
		hi = max(lo, DefaultBackoff.Max)
	}
	d := hi
	if attempt < 32 {
		if v := lo << attempt; v > 0 && v < hi {
			d = v
		}
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter spreads reconnections; it protects nothing
}
