package receipt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
)

func TestBatchRecordsOfBothLayoutsAreRead(t *testing.T) {
	root := strings.Repeat("0", 62) + "ff"
	leaf := strings.Repeat("0", 63) + "1"
	for _, rec := range []string{
		`{"id":"t","root":"` + root + `","size":1,"submitter":"x","mspId":"Org1MSP","timestamp":"2026-03-01T12:00:00Z"}`,
		`{"id":"t","root":"` + root + `","size":1,"leaves":["` + leaf + `"],"submitter":"x","mspId":"Org1MSP","timestamp":"2026-03-01T12:00:00Z"}`,
	} {
		var b batchRecord
		require.NoError(t, reading.DecodeStrict([]byte(rec), &b))
		require.Equal(t, "t", b.ID)
		require.Equal(t, 1, b.Size)
		require.Equal(t, root, b.Root.String())
	}
	for _, rec := range []string{`{"id":"t","extra":1}`, `{"id":"t","ID":"u"}`, `{"id":"t","Leaves":[]}`} {
		var b batchRecord
		require.Error(t, reading.DecodeStrict([]byte(rec), &b), rec)
	}
}
