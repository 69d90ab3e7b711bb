package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/receipt"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	bolt "go.etcd.io/bbolt"
)

// Ledger identity verdicts of Health (identity.go); LedgerIdentityReason
// says why it is not verified.
const (
	IdentityVerified   = "verified"   // the ledger is the one the outbox belongs to: the hub submits
	IdentityUnverified = "unverified" // the ledger's trust anchor is not known yet: the hub submits nothing
	IdentityMismatch   = "mismatch"   // the ledger is another one than the outbox's: the hub submits nothing
)

// Commit verdicts of Health.
const (
	CommitOK      = "ok"      // nothing waits, a batch committed recently, or readings have not waited long yet
	CommitFailing = "failing" // readings wait beyond the bound with no commit within it
)

// Health is the /healthz answer.
type Health struct {
	OK          bool   `json:"ok"`
	Hub         string `json:"hub"`
	Broker      string `json:"broker"`
	Ledger      string `json:"ledger"`
	OutboxDepth int64  `json:"outboxDepth"`
	PendingAcks int64  `json:"pendingAcks"`
	Devices     int    `json:"devices"`

	// Commit is CommitOK or CommitFailing; CommitReason says why it fails.
	Commit       string `json:"commit"`
	CommitReason string `json:"commitReason,omitempty"`
	// CommitBoundSeconds is how long readings may wait without a commit
	// before Commit is failing (3 × LedgerTimeout, at least 30 s).
	CommitBoundSeconds float64 `json:"commitBoundSeconds"`
	// LastCommit is when the ledger last committed a batch of this hub
	// (absent: none since the hub started).
	LastCommit *time.Time `json:"lastCommit,omitempty"`
	// LastSubmitFailure and LastSubmitError are the last submit that
	// failed without an answer from the ledger (or with INTERNAL or
	// CLOCK_SKEW); a chaincode refusal of a reading is not one.
	LastSubmitFailure *time.Time `json:"lastSubmitFailure,omitempty"`
	LastSubmitError   string     `json:"lastSubmitError,omitempty"`
	// OldestPendingAgeSeconds is how long the oldest reading in the outbox
	// has waited since the hub accepted it (0 when the outbox is empty).
	OldestPendingAgeSeconds float64 `json:"oldestPendingAgeSeconds"`

	// LedgerIdentity is IdentityVerified, IdentityUnverified or
	// IdentityMismatch; LedgerIdentityReason says why it is not verified.
	LedgerIdentity       string `json:"ledgerIdentity"`
	LedgerIdentityReason string `json:"ledgerIdentityReason,omitempty"`
	// LedgerAnchor is the ledger's trust anchor, once read.
	LedgerAnchor *receipt.Anchor `json:"ledgerAnchor,omitempty"`
	// Parked is the number of readings parked because the ledger did not
	// know their device (parked.go); ParkedReason says what to do.
	Parked       int64  `json:"parked"`
	ParkedReason string `json:"parkedReason,omitempty"`
}

// commitBound is how long readings may wait with no commit before the hub
// says committing is failing.
func (h *Hub) commitBound() time.Duration { return max(30*time.Second, 3*h.cfg.LedgerTimeout) }

// commitVerdict judges committing from what the hub knows: with readings
// waiting (depth > 0) and no batch committed within bound, it fails when
// the oldest reading has waited longer than bound or submits have kept
// failing for longer than bound. oldest is zero when nothing waits.
func commitVerdict(now time.Time, c commitSnapshot, depth int64, oldest time.Time, bound time.Duration) (verdict, reason string) {
	if depth == 0 {
		return CommitOK, ""
	}
	if !c.lastCommit.IsZero() && now.Sub(c.lastCommit) <= bound {
		return CommitOK, ""
	}
	since := "no batch committed since the hub started"
	if !c.lastCommit.IsZero() {
		since = "no batch committed since " + c.lastCommit.UTC().Format(time.RFC3339)
	}
	if !oldest.IsZero() && now.Sub(oldest) > bound {
		r := fmt.Sprintf("%d readings wait, the oldest for %s (bound %s); %s", depth, now.Sub(oldest).Round(time.Second), bound, since)
		if c.lastError != "" && !c.failingSince.IsZero() {
			r += "; last submit error: " + c.lastError
		}
		return CommitFailing, r
	}
	if !c.failingSince.IsZero() && now.Sub(c.failingSince) > bound {
		return CommitFailing, fmt.Sprintf("submits have failed since %s (bound %s); %s; last error: %s",
			c.failingSince.UTC().Format(time.RFC3339), bound, since, c.lastError)
	}
	return CommitOK, ""
}

// oldestWaiting returns when the oldest reading still in the outbox
// (pending or in a batch) was accepted; zero when there is none. Pending
// readings are keyed by their id, in order of acceptance, so the first one
// is the oldest of them; batches in flight are few and read whole.
func oldestWaiting(o *Outbox) (time.Time, error) {
	var oldest int64
	take := func(ms int64) {
		if ms > 0 && (oldest == 0 || ms < oldest) {
			oldest = ms
		}
	}
	err := o.db.View(func(tx *bolt.Tx) error {
		if _, v := tx.Bucket(bucketPending).Cursor().First(); v != nil {
			var r struct {
				ReceivedMS int64 `json:"receivedMs"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			take(r.ReceivedMS)
		}
		return tx.Bucket(bucketBatches).ForEach(func(_, v []byte) error {
			var b struct {
				Readings []struct {
					ReceivedMS int64 `json:"receivedMs"`
				} `json:"readings"`
			}
			if err := json.Unmarshal(v, &b); err != nil {
				return err
			}
			for _, r := range b.Readings {
				take(r.ReceivedMS)
			}
			return nil
		})
	})
	if err != nil || oldest == 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(oldest), nil
}

// Health reports whether the broker is up, the ledger answers and the hub
// commits. A classified chaincode error (such as NOT_FOUND for a probe id)
// proves the ledger is reachable; committing is judged by commitVerdict.
func (h *Hub) Health(ctx context.Context) Health {
	out := Health{Hub: h.cfg.HubID, Broker: "up", Ledger: "reachable", OutboxDepth: h.outbox.Depth(), PendingAcks: h.outbox.PendingAcks()}
	now := h.cfg.Now()
	bound := h.commitBound()
	out.CommitBoundSeconds = bound.Seconds()
	c := h.metrics.commit.snapshot()
	if !c.lastCommit.IsZero() {
		t := c.lastCommit.UTC()
		out.LastCommit = &t
	}
	if !c.lastFailure.IsZero() {
		t := c.lastFailure.UTC()
		out.LastSubmitFailure = &t
		out.LastSubmitError = c.lastError
	}
	oldest, err := oldestWaiting(h.outbox)
	if err != nil {
		out.Commit, out.CommitReason = CommitFailing, "read the outbox: "+err.Error()
	} else {
		if !oldest.IsZero() {
			out.OldestPendingAgeSeconds = max(0, now.Sub(oldest).Seconds())
		}
		out.Commit, out.CommitReason = commitVerdict(now, c, out.OutboxDepth, oldest, bound)
	}
	if h.ctx == nil || h.ctx.Err() != nil {
		out.Broker = "stopped"
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
	defer cancel()
	if _, err := h.cfg.Ledger.Device(cctx, "healthz-probe"); err != nil && api.CodeOf(err) == "" {
		if identityRefused(err) {
			out.Ledger = LedgerIdentityRefused + ": " + identityRefusedAdvice + ": " + err.Error()
		} else {
			out.Ledger = "unreachable: " + err.Error()
		}
	}
	h.sessMu.Lock()
	out.Devices = len(h.sessions)
	h.sessMu.Unlock()
	verified, anchor, ierr := h.identity.get()
	var mismatch *LedgerMismatchError
	switch {
	case verified:
		out.LedgerIdentity = IdentityVerified
	case errors.As(ierr, &mismatch):
		out.LedgerIdentity, out.LedgerIdentityReason = IdentityMismatch, ierr.Error()
	default:
		out.LedgerIdentity, out.LedgerIdentityReason = IdentityUnverified, "nothing is submitted until the ledger's trust anchor is read: "+ierr.Error()
	}
	if anchor != (receipt.Anchor{}) {
		out.LedgerAnchor = &anchor
	}
	if out.Parked = h.outbox.Parked(); out.Parked > 0 {
		out.ParkedReason = fmt.Sprintf("%d accepted readings are parked because the ledger did not know their device: they are submitted again once it does; "+
			"with the hub stopped, `iotledger hub parked list --data %s` shows them, `retry` and `drop` deal with them", out.Parked, h.cfg.DataDir)
	}
	out.OK = out.Broker == "up" && out.Ledger == "reachable" && out.Commit == CommitOK &&
		out.LedgerIdentity == IdentityVerified && out.Parked == 0
	return out
}

func (h *Hub) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(h.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		hl := h.Health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !hl.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(hl)
	})
	if h.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
