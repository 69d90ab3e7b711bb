package hub

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/hubtest"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/stretchr/testify/require"
)

func TestCommitVerdict(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	bound := 30 * time.Second
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name   string
		c      commitSnapshot
		depth  int64
		oldest time.Time
		want   string
		reason string // substring of the reason
	}{
		{name: "nothing waits, nothing ever committed", want: CommitOK},
		{name: "nothing waits after failures", c: commitSnapshot{failingSince: ago(time.Hour), lastFailure: ago(time.Minute), lastError: "down"}, want: CommitOK},
		{name: "young readings, no commit yet", depth: 3, oldest: ago(time.Second), want: CommitOK},
		{name: "old readings but a recent commit", depth: 3, oldest: ago(time.Hour), c: commitSnapshot{lastCommit: ago(time.Second)}, want: CommitOK},
		{name: "old readings, no commit ever", depth: 3, oldest: ago(bound + time.Second), want: CommitFailing, reason: "no batch committed since the hub started"},
		{name: "old readings, last commit long ago", depth: 3, oldest: ago(bound + time.Second), c: commitSnapshot{lastCommit: ago(time.Hour)}, want: CommitFailing, reason: "no batch committed since"},
		{
			name: "old readings name the submit error", depth: 1, oldest: ago(2 * bound),
			c:    commitSnapshot{failingSince: ago(bound), lastFailure: ago(time.Second), lastError: "connection refused"},
			want: CommitFailing, reason: "last submit error: connection refused",
		},
		{
			name: "submits failing for a moment", depth: 1, oldest: ago(time.Second),
			c:    commitSnapshot{failingSince: ago(time.Second), lastFailure: ago(time.Second), lastError: "x"},
			want: CommitOK,
		},
		{
			name: "submits failing beyond the bound", depth: 1, oldest: ago(time.Second),
			c:    commitSnapshot{lastCommit: ago(time.Hour), failingSince: ago(bound + time.Second), lastFailure: ago(time.Second), lastError: "Unavailable"},
			want: CommitFailing, reason: "submits have failed since",
		},
		{name: "exactly at the bound is still ok", depth: 1, oldest: ago(bound), want: CommitOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := commitVerdict(now, tc.c, tc.depth, tc.oldest, bound)
			require.Equal(t, tc.want, got)
			if tc.want == CommitOK {
				require.Empty(t, reason)
			} else {
				require.Contains(t, reason, tc.reason)
			}
		})
	}
}

func TestCommitRecordKeepsTheFirstFailureUntilACommit(t *testing.T) {
	var c commitRecord
	t0 := time.Unix(1_700_000_000, 0)
	c.failed(t0, errors.New("one"))
	c.failed(t0.Add(time.Second), errors.New("two"))
	s := c.snapshot()
	require.Equal(t, t0, s.failingSince)
	require.Equal(t, t0.Add(time.Second), s.lastFailure)
	require.Equal(t, "two", s.lastError)
	c.committed(t0.Add(2 * time.Second))
	s = c.snapshot()
	require.True(t, s.failingSince.IsZero())
	require.Equal(t, t0.Add(2*time.Second), s.lastCommit)
	require.Equal(t, "two", s.lastError, "the last failure stays reported")
}

func healthz(t *testing.T, fx *fixture) (int, Health) {
	t.Helper()
	code, body := get(t, "http://"+fx.hub.HTTPAddr()+"/healthz")
	var h Health
	require.NoError(t, json.Unmarshal([]byte(body), &h), body)
	return code, h
}

func TestHealthSaysCommitFailingWhileSubmitsFailAndOKOnceACommitLands(t *testing.T) {
	clock := &fakeClock{t: time.UnixMilli(time.Now().UnixMilli())}
	fx := newFixture(t, func(c *Config) { c.HTTPAddr = "127.0.0.1:0"; c.Now = clock.Now })
	fx.ledger.Set(func(f *hubtest.Ledger) { f.FailSubmit = func(int) string { return "before" } })
	t0 := clock.Now()

	code, h := healthz(t, fx)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, CommitOK, h.Commit, "nothing waits")
	require.Nil(t, h.LastCommit)
	require.Equal(t, 30.0, h.CommitBoundSeconds)

	d := fx.enroll(t, "cold-1", api.StatusActive)
	m := fx.connect(t, d)
	_, err := m.publish(t, wire.Topic(d.id, wire.KindTelemetry), d.reading(t, 1, 3))
	require.NoError(t, err)
	eventually(t, func() bool {
		_, h = healthz(t, fx)
		return h.LastSubmitFailure != nil
	}, "no failed submit recorded")
	code, h = healthz(t, fx)
	require.Equal(t, http.StatusOK, code, "a reading that has not waited long is no failure yet")
	require.Equal(t, CommitOK, h.Commit)
	require.Equal(t, int64(1), h.OutboxDepth)
	require.Contains(t, h.LastSubmitError, "Unavailable")

	clock.Set(t0.Add(31 * time.Second))
	code, h = healthz(t, fx)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.False(t, h.OK)
	require.Equal(t, "reachable", h.Ledger, "the ledger answers evaluates; only committing fails")
	require.Equal(t, CommitFailing, h.Commit)
	require.True(t, strings.Contains(h.CommitReason, "no batch committed since the hub started"), h.CommitReason)
	require.GreaterOrEqual(t, h.OldestPendingAgeSeconds, 30.0)

	fx.ledger.Set(func(f *hubtest.Ledger) { f.FailSubmit = nil })
	eventually(t, func() bool {
		code, h = healthz(t, fx)
		return code == http.StatusOK && h.LastCommit != nil && h.OutboxDepth == 0
	}, "never healthy after the ledger took the batch: %+v", h)
	require.Equal(t, CommitOK, h.Commit)
	require.Equal(t, 1, fx.ledger.Committed()["cold-1/1"])
	require.Zero(t, h.OldestPendingAgeSeconds)
}
