package index

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// ReadingView is an indexed reading as tools show it.
type ReadingView struct {
	Device    string          `json:"device"`
	Seq       uint64          `json:"seq"`
	Timestamp int64           `json:"ts"` // device clock, Unix ms
	Values    []reading.Value `json:"values,omitempty"`
	Payload   []byte          `json:"payload,omitempty"`   // the signed bytes (absent for another org's private reading)
	Signature []byte          `json:"signature,omitempty"` // the device's signature
	BatchID   string          `json:"batchId"`             // the transaction that committed its batch
	Index     int             `json:"index"`               // its leaf in the batch
	Block     uint64          `json:"block"`
	Private   bool            `json:"private,omitempty"`
}

// ReadingPage is one page of a device's readings.
type ReadingPage struct {
	Readings []ReadingView `json:"readings"`
	Bookmark string        `json:"bookmark,omitempty"` // the last seq of the page, when there may be more
}

// View turns an indexed reading into a ReadingView.
func View(r Reading) (ReadingView, error) {
	out := ReadingView{
		Device: r.Device, Seq: r.Seq, Timestamp: r.Timestamp, Payload: r.Payload, Signature: r.Signature,
		BatchID: r.BatchTx, Index: r.Index, Block: r.Block, Private: r.Private,
	}
	if len(r.Values) > 0 {
		if err := json.Unmarshal(r.Values, &out.Values); err != nil {
			return out, fmt.Errorf("index: reading %s/%d: values: %w", r.Device, r.Seq, err)
		}
	}
	return out, nil
}

// ListReadings pages through a device's readings from fromSeq on; the
// bookmark of a page continues after it.
func ListReadings(ctx context.Context, st Store, device string, fromSeq uint64, pageSize int, bookmark string) (*ReadingPage, error) {
	q := ReadingQuery{Device: device, Limit: pageSize}
	if fromSeq > 0 {
		q.AfterSeq = fromSeq - 1
	}
	if bookmark != "" {
		after, err := strconv.ParseUint(bookmark, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("index: bookmark %q is not a sequence number", bookmark)
		}
		q.AfterSeq = max(q.AfterSeq, after)
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	rs, err := st.Readings(ctx, q)
	if err != nil {
		return nil, err
	}
	page := &ReadingPage{Readings: make([]ReadingView, 0, len(rs))}
	for _, r := range rs {
		v, err := View(r)
		if err != nil {
			return nil, err
		}
		page.Readings = append(page.Readings, v)
	}
	if len(rs) == q.Limit {
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
