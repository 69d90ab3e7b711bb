package chaincode

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func TestStoredRecordRoundTripsWhatItKeeps(t *testing.T) {
	committed := time.Date(2026, 11, 25, 22, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		rec  api.StoredReading
		want api.StoredReading
	}{
		{
			name: "public reading keeps payload, signature, key, batch, index and commit time",
			rec: api.StoredReading{
				Device: "a", Seq: 7, Timestamp: 1_700_000_000_000, Values: []reading.Value{{Name: "t"}},
				Payload: []byte(`{"device":"a","seq":7}`), Signature: []byte{0x30, 0x45, 0x00, 0xff},
				KeyID: "k1", BatchID: "tx1", Index: 499, Committed: committed,
			},
			want: api.StoredReading{
				Payload: []byte(`{"device":"a","seq":7}`), Signature: []byte{0x30, 0x45, 0x00, 0xff},
				KeyID: "k1", BatchID: "tx1", Index: 499, Committed: committed,
			},
		},
		{
			name: "hex key and batch ids are kept as the bytes they spell, in lowercase",
			rec: api.StoredReading{
				Payload: []byte("p"), Signature: []byte("s"), Committed: committed,
				KeyID: strings.Repeat("0123456789abcdef", 4), BatchID: strings.Repeat("fedcba9876543210", 4),
			},
			want: api.StoredReading{
				Payload: []byte("p"), Signature: []byte("s"), Committed: committed,
				KeyID: strings.Repeat("0123456789abcdef", 4), BatchID: strings.Repeat("fedcba9876543210", 4),
			},
		},
		{
			name: "ids that are not 64 lowercase hex digits are kept as they are",
			rec: api.StoredReading{
				Payload: []byte("p"), Signature: []byte("s"), Committed: committed,
				KeyID: strings.Repeat("0123456789ABCDEF", 4), BatchID: strings.Repeat("ab", 31),
			},
			want: api.StoredReading{
				Payload: []byte("p"), Signature: []byte("s"), Committed: committed,
				KeyID: strings.Repeat("0123456789ABCDEF", 4), BatchID: strings.Repeat("ab", 31),
			},
		},
		{
			name: "commit time before 1970 and far after 2262",
			rec:  api.StoredReading{Payload: []byte("p"), Signature: []byte("s"), Committed: time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC)},
			want: api.StoredReading{Payload: []byte("p"), Signature: []byte("s"), Committed: time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRecord(encodeRecord(&tc.rec))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestStoredRecordHoldsPayloadAndSignatureOnceAndRaw(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	env := a.reading(t, 4.5)
	_, err := w.submitBatch(org1Hub, env)
	require.NoError(t, err)
	rec := w.state[readingKey("a", 1)]
	require.True(t, hex32(w.lastTx.id) && hex32(w.getDevice("a").KeyID))
	// payload, signature, 32-byte key and batch ids, and a few bytes of
	// version, flags, lengths, index and commit time
	overhead := len(rec) - len(env.Payload) - len(env.Signature) - 2*32
	require.LessOrEqual(t, overhead, 16, "record %q", rec)
}

func TestReadingsStoredAsJSONRecordsStayReadable(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	envs := []reading.Envelope{a.reading(t, 1.5), a.reading(t, 2.5)}
	_, err := w.submitBatch(org1Hub, envs...)
	require.NoError(t, err)
	batchID := w.lastTx.id
	get := func() api.StoredReading {
		return must[api.StoredReading](w, org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.Get(ctx, "a", "2")
		})
	}
	want := get()
	require.Equal(t, 2.5, *want.Values[0].Number)

	// The first layout of the record: the whole api.StoredReading as JSON
	// without values.
	old := want
	old.Values = nil
	b, err := json.Marshal(old)
	require.NoError(t, err)
	w.state[readingKey("a", 2)] = b
	require.Equal(t, want, get())

	page := must[api.ReadingPage](w, org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.List(ctx, jsonArg(t, api.ReadingQuery{Device: "a"}))
	})
	require.Len(t, page.Readings, 2)
	require.Equal(t, want, page.Readings[1])
	require.Equal(t, batchID, page.Readings[0].BatchID)
	require.Equal(t, 1.5, *page.Readings[0].Values[0].Number)
}

func TestMalformedStoredRecordIsAnInternalError(t *testing.T) {
	w := newWorld(t)
	a := w.enroll(org1Operator, "a", "fridge")
	b := w.enroll(org1Operator, "b", "fridge")
	_, err := w.submitBatch(org1Hub, a.reading(t, 1), b.reading(t, 2))
	require.NoError(t, err)
	good := w.state[readingKey("a", 1)]
	cases := map[string][]byte{
		"unknown version":  append([]byte{0x02}, good[1:]...),
		"unknown flags":    append([]byte{recordVersion, 0x80}, good[2:]...),
		"truncated":        good[:len(good)-1],
		"trailing bytes":   append(append([]byte{}, good...), 0),
		"broken JSON":      []byte(`{"payload":`),
		"another reading":  w.state[readingKey("b", 1)],
		"empty":            {},
		"payload unparsed": encodeRecord(&api.StoredReading{Payload: []byte("x"), Signature: []byte("s")}),
	}
	for name, rec := range cases {
		t.Run(name, func(t *testing.T) {
			w.state[readingKey("a", 1)] = rec
			refused(t, w, org1Auditor, api.CodeInternal, "stored reading", func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.Get(ctx, "a", "1")
			})
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&api.StoredReading{Payload: []byte("p"), Signature: []byte("s"), KeyID: "k", BatchID: "b", Index: 3, Committed: time.Unix(1, 2)}))
	f.Add([]byte{recordVersion, 1, 0, 0, 0, 0, 0, 0, 0}) // the retired private-layout flag
	f.Add([]byte(`{"device":"a","seq":1}`))
	f.Add([]byte{recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil || len(b) == 0 || b[0] == '{' {
			return
		}
		// A record that decodes encodes back to the same bytes.
		require.Equal(t, b, encodeRecord(&r))
	})
}
