package testnet

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/receipt"
)

// Index is an org's index (SQLite) following the test network, as
// `iotledger index` would: the ledger keeps no readings, so tests read them
// here.
type Index struct {
	index.Store
	c *client.Client
}

// StartIndex starts org's index, following from its peer as the org's
// auditor and verifying every block from the network's genesis block; it
// stops with the test.
func StartIndex(t testing.TB, n *network.Network, org string) *Index {
	t.Helper()
	p, err := n.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(context.Background(), p, "auditor")
	require.NoError(t, err)
	anchor, err := receipt.AnchorOfFile(n.GenesisBlockPath())
	require.NoError(t, err)
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "index.db"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- index.NewFollower(st, c, anchor, p.Chaincode, nil).WithPrivate(c, p.MSPID).Run(ctx) }()
	ix := &Index{Store: st, c: c}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the %s index stopped: %v", org, err)
		}
		_ = st.Close()
		_ = c.Close()
	})
	return ix
}

// Sync waits until the index holds every block the org's peer has
// committed now.
func (ix *Index) Sync(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := ix.c.Height(ctx)
	require.NoError(t, err)
	require.NoError(t, index.CaughtUp(ctx, ix.Store, h))
}
