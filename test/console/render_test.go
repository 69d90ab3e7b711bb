package console_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
	"github.com/iotledger/iotledger/test/testnet"
)

// TestDevicePageDrawsADayOf100kReadings measures how long the device page
// takes to draw the last day of a device with 100,000 readings (about 1.2
// a second). Committing that many readings would take the test network
// minutes, so they go into an index of the test's own, beside the real
// ledger the device is enrolled on. The time is logged; the test asserts
// only that the page got there.
func TestDevicePageDrawsADayOf100kReadings(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	op := connect(t, "Org1", "operator")
	device := testnet.UniqueID(t, "console-100k")
	enroll(t, op, api.EnrollRequest{ID: device, Type: "thermometer"})

	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	const total, perBlock = 100_000, 1000
	// The readings span the day up to now, leaving the first five minutes
	// of it out: the page asks for the day before its own now, later.
	const margin = 5 * time.Minute
	start := time.Now().Add(-24*time.Hour + margin).UnixMilli()
	step := int64((24*time.Hour-margin)/time.Millisecond) / total
	for n := range uint64(total / perBlock) {
		require.NoError(t, st.Apply(t.Context(), syntheticBlock(n, device, n*perBlock, perBlock, start, step)))
	}
	org1 := startConsoleWith(t, "Org1", st)
	ctx := browser(t)
	began := time.Now()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(org1.signIn(t, "operator")+"/devices/"+device),
		chromedp.WaitVisible(chromedp.CSS(`#chart[data-render-ms]`)),
	))
	wall := time.Since(began)
	attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.CSS(`#chart`)))
	require.NoError(t, err)
	readings, _ := strconv.Atoi(attrs["data-readings"])
	require.Equal(t, total, readings, "the day's summary covers every reading")
	t.Logf("device page with %d readings: chart of the last day drawn %s ms after the script asked (summary + draw); %s from navigation; %s points",
		readings, attrs["data-render-ms"], wall.Round(time.Millisecond), attrs["data-points"])
	screenshot(t, ctx, "100k")
}

// syntheticBlock is block n of a test-only index: count readings of
// device, seq from first+1, step ms apart from start.
func syntheticBlock(n uint64, device string, first uint64, count int, start, step int64) *index.Block {
	txID := fmt.Sprintf("synthetic-%d", n)
	rs := make([]index.Reading, count)
	for i := range rs {
		seq := first + uint64(i) + 1
		v := 4 + float64(seq%100)/50
		values, _ := json.Marshal([]reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}})
		ts := start + int64(seq)*step
		// The payload holds the values, as a device's does: the index reads them from it.
		payload, _ := json.Marshal(reading.Payload{Device: device, Seq: seq, Timestamp: ts, Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}})
		rs[i] = index.Reading{Device: device, Seq: seq, Timestamp: ts, Values: values,
			Payload: payload, Signature: []byte("s"), BatchTx: txID, Index: i, Block: n}
	}
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
	ts := time.UnixMilli(start).UTC()
	return &index.Block{Number: n, Hash: h[:], Time: ts, Transactions: []index.Transaction{{
		Block: n, TxID: txID, Time: ts, ValidationCode: "VALID", Function: "telemetry:SubmitBatch", CreatorMSP: "Org1MSP",
		Devices: []string{device}, Readings: rs,
		Batch: &index.Batch{TxID: txID, Root: make([]byte, 32), Size: count, MSPID: "Org1MSP", Block: n},
	}}}
}
