package receipts_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt"
	"github.com/iotledger/iotledger/test/testnet"
)

func TestAFollowerVerifiesEveryBlockOfTheChannelFromTheAnchor(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// A private batch: endorsed by its owner alone, its records in the
	// owner's implicit collection (the org's Endorsement policy governs them).
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	pd := device{id: testnet.UniqueID(t, "rcpt-priv"), signer: s}
	_, err = f.op1.EnrollDevice(ctx, api.EnrollRequest{ID: pd.id, Type: "meter", PublicKey: s.Public().PEM(), Activate: true, Private: true})
	require.NoError(t, err)
	rc, err := f.hub1.SubmitPrivateBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{pd.reading(t, 1, 5)}})
	require.NoError(t, err)
	top, err := f.op1.BlockByTxID(ctx, rc.BatchID)
	require.NoError(t, err)
	chain, err := receipt.NewChain(f.anchor, f.r.Chaincode)
	require.NoError(t, err)
	blocks, err := f.op1.Blocks(ctx, 0)
	require.NoError(t, err)
	var valid, invalid, foreign, config int
	found := false
	for chain.Next() <= top.GetHeader().GetNumber() {
		b := <-blocks
		vb, err := chain.Verify(b)
		require.NoError(t, err, "block %d", b.GetHeader().GetNumber())
		if vb.Config != nil {
			config++
		}
		for _, tx := range vb.Txs {
			switch {
			case tx.Foreign:
				foreign++
			case tx.Valid():
				valid++
			default:
				invalid++
			}
			if tx.TxID == f.r.TxID {
				found = true
				require.Equal(t, "telemetry:SubmitBatch", tx.Function)
				require.Equal(t, []string{"Org1MSP", "Org2MSP"}, tx.Endorsers)
			}
		}
	}
	require.True(t, found)
	require.Equal(t, top.GetHeader().GetNumber()+1, chain.Next())
	// The genesis block, and any config update (an org's CRL) made on a reused network.
	require.GreaterOrEqual(t, config, 1, "the genesis block")
	require.Positive(t, foreign, "the chaincode's lifecycle transactions are another namespace's")
	t.Logf("verified %d blocks: %d valid, %d invalid, %d foreign transactions", chain.Next(), valid, invalid, foreign)

	// A block out of order, or one that does not chain to the previous one, is refused.
	fresh, err := receipt.NewChain(f.anchor, f.r.Chaincode)
	require.NoError(t, err)
	genesis, err := f.op1.BlockByNumber(ctx, 0)
	require.NoError(t, err)
	_, err = fresh.Verify(genesis)
	require.NoError(t, err)
	two, err := f.op1.BlockByNumber(ctx, 2)
	require.NoError(t, err)
	_, err = fresh.Verify(two)
	require.ErrorContains(t, err, "is not the next block")
	one, err := f.op1.BlockByNumber(ctx, 1)
	require.NoError(t, err)
	one.Header.PreviousHash = []byte("not the previous block's hash")
	_, err = fresh.Verify(one)
	require.ErrorContains(t, err, "does not chain")
}
