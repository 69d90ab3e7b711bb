package index

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// StoredReading is an indexed reading in the SDK's shape (what
// telemetry:Get answers), so that tools read either source alike.
func StoredReading(r Reading) (api.StoredReading, error) {
	out := api.StoredReading{
		Device: r.Device, Seq: r.Seq, Timestamp: r.Timestamp, Payload: r.Payload, Signature: r.Signature,
		BatchID: r.BatchTx, Index: r.Index, Private: r.Private,
	}
	if len(r.Values) > 0 {
		if err := json.Unmarshal(r.Values, &out.Values); err != nil {
			return out, fmt.Errorf("index: reading %s/%d: values: %w", r.Device, r.Seq, err)
		}
	}
	return out, nil
}

// ListReadings answers a telemetry:List query from the index. The bookmark
// is the last sequence number of the page.
func ListReadings(ctx context.Context, st Store, q api.ReadingQuery) (*api.ReadingPage, error) {
	iq := ReadingQuery{Device: q.Device, Limit: int(q.PageSize)}
	if q.FromSeq > 0 {
		iq.AfterSeq = q.FromSeq - 1
	}
	if q.Bookmark != "" {
		after, err := strconv.ParseUint(q.Bookmark, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("index: bookmark %q is not a sequence number", q.Bookmark)
		}
		iq.AfterSeq = max(iq.AfterSeq, after)
	}
	if iq.Limit <= 0 {
		iq.Limit = 50
	}
	rs, err := st.Readings(ctx, iq)
	if err != nil {
		return nil, err
	}
	page := &api.ReadingPage{Readings: make([]api.StoredReading, 0, len(rs))}
	for _, r := range rs {
		sr, err := StoredReading(r)
		if err != nil {
			return nil, err
		}
		page.Readings = append(page.Readings, sr)
	}
	if len(rs) == iq.Limit {
		page.Bookmark = strconv.FormatUint(rs[len(rs)-1].Seq, 10)
	}
	return page, nil
}

// ReadingProof is the material of a reading's receipt, from the index:
// the reading, its batch's Merkle root and its path, computed from the
// batch's readings as the block holds them.
func ReadingProof(ctx context.Context, st Store, device string, seq uint64) (*reading.Proof, error) {
	r, err := st.Reading(ctx, device, seq)
	if err != nil {
		return nil, err
	}
	if r.Private {
		return nil, fmt.Errorf("reading %d of device %s is private: it gets no receipt", seq, device)
	}
	batch, err := st.BatchReadings(ctx, r.BatchTx)
	if err != nil {
		return nil, err
	}
	leaves := make([][32]byte, len(batch))
	for i, b := range batch {
		if b.Index != i {
			return nil, fmt.Errorf("index: batch %s lacks reading %d", r.BatchTx, i)
		}
		leaves[i] = reading.LeafHash(b.Payload, b.Signature)
	}
	root, err := reading.MerkleRoot(leaves)
	if err != nil {
		return nil, err
	}
	path, err := reading.InclusionPath(leaves, r.Index)
	if err != nil {
		return nil, err
	}
	p := &reading.Proof{BatchID: r.BatchTx, Root: root, Size: len(leaves), Index: r.Index,
		Payload: r.Payload, Signature: r.Signature, Path: make([]reading.Hash, len(path))}
	for i, h := range path {
		p.Path[i] = h
	}
	return p, nil
}
