package adversary_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// A device signs bytes, and every reader of those bytes (each endorser, an
// auditor, a hub's pre-check, another JSON library) must find the same
// reading in them. Payloads that different decoders read differently are
// refused: a second spelling of a field, a field given twice, a string that
// is not UTF-8.
func TestSignedReadingHasOneMeaning(t *testing.T) {
	e := env(t)
	ctx := e.ctx(t)
	for _, c := range []struct {
		name, payload, refusal string
	}{
		{"a second spelling of values", `{"device":%q,"seq":1,"ts":%d,"values":[{"n":"temp","v":4.2}],"VALUES":[{"n":"temp","v":-40}]}`, "VALUES"},
		{"seq twice", `{"device":%q,"seq":1,"seq":2,"ts":%d,"values":[{"n":"temp","v":4.2}]}`, "duplicate"},
		{"a string value that is not UTF-8", `{"device":%q,"seq":1,"ts":%d,"values":[{"n":"note","vs":"ok` + "\xff\xfe" + `"}]}`, "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDevice(t, "one-meaning")
			e.enroll(ctx, t, e.org1Operator, d, api.EnrollRequest{Type: "thermometer"})
			env := d.signed(t, fmt.Appendf(nil, c.payload, d.id, time.Now().UnixMilli()))
			_, err := e.org1Hub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{env}})
			requireRefused(t, err, api.CodeInvalidArgument, c.refusal)
			seen, err := e.org1Operator.Seen(ctx, d.id, []uint64{1, 2})
			require.NoError(t, err)
			for _, s := range seen.Seqs {
				require.Equal(t, api.SeqNotSeen, s.State, "seq %d", s.Seq)
			}
		})
	}
}
