package receipt

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const tx = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func doc(fields string) string {
	return `{"format":"iotledger-receipt/1","channel":"c","chaincode":"cc","device":"d","txId":"` + tx + `","config":["AA=="],"blocks":["AA=="]` + fields + `}`
}

func TestParseRefusesWhatIsNotAReceipt(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"ok reading", doc(`,"kind":"reading","reading":{"payload":"","signature":"","index":0,"size":1,"path":[]}`), ""},
		{"ok ack", doc(`,"kind":"command-ack","command":"c1"`), ""},
		{"ok status", doc(`,"kind":"device-status"`), ""},
		{"other format", strings.Replace(doc(`,"kind":"device-status"`), "receipt/1", "receipt/2", 1), `reads "iotledger-receipt/1"`},
		{"unknown kind", doc(`,"kind":"balance"`), "is not one of"},
		{"reading without reading", doc(`,"kind":"reading"`), "needs the reading field"},
		{"reading without its payload", doc(`,"kind":"reading","reading":{"signature":"","index":0,"size":1,"path":[]}`), "reading.payload is missing"},
		{"reading without its path", doc(`,"kind":"reading","reading":{"payload":"","signature":"","index":0,"size":1}`), "reading.path is missing"},
		{"null command", doc(`,"kind":"reading","command":null,"reading":{"payload":"","signature":"","index":0,"size":1,"path":[]}`), "null at"},
		{"ack without command", doc(`,"kind":"command-ack"`), "needs the command field"},
		{"status with command", doc(`,"kind":"device-status","command":"x"`), "has no command field"},
		{"status with reading", doc(`,"kind":"device-status","reading":{"payload":"","signature":"","index":0,"size":1,"path":[]}`), "has no reading field"},
		{"upper-case tx", strings.Replace(doc(`,"kind":"device-status"`), tx, strings.ToUpper(tx), 1), "lowercase hex"},
		{"duplicate key", doc(`,"kind":"device-status","kind":"reading"`), "duplicate key"},
		{"case variant", doc(`,"kind":"device-status","Kind":"reading"`), "case-sensitive"},
		{"unknown key", doc(`,"kind":"device-status","root":"x"`), "unknown field"},
		{"no config", strings.Replace(doc(`,"kind":"device-status"`), `"config":["AA=="]`, `"config":[]`, 1), "genesis block comes first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestBase64MustBeCanonical(t *testing.T) {
	_, err := decodeB64("f", "AB==") // non-zero padding bits
	require.ErrorContains(t, err, "not standard base64")
	_, err = decodeB64("f", "AA")
	require.Error(t, err)
	b, err := decodeB64("f", "AA==")
	require.NoError(t, err)
	require.Equal(t, []byte{0}, b)
}

func TestParseAnchorIsStrict(t *testing.T) {
	good := `{"channel":"iotledger","genesis":"` + tx + `"}`
	a, err := ParseAnchor([]byte(good))
	require.NoError(t, err)
	require.Equal(t, "iotledger", a.Channel)
	for _, bad := range []string{
		`{"channel":"iotledger","genesis":"abc"}`,
		`{"genesis":"` + tx + `"}`,
		`{"channel":"a","channel":"b","genesis":"` + tx + `"}`,
		good + `x`,
	} {
		_, err := ParseAnchor([]byte(bad))
		require.Error(t, err, bad)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(doc(`,"kind":"device-status"`)))
	f.Add([]byte(doc(`,"kind":"reading","reading":{"payload":"AA==","signature":"AA==","index":0,"size":1,"path":[]}`)))
	f.Add([]byte(`{}`))
	anchor := Anchor{Channel: "c", Genesis: tx}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(data, anchor)
		if err == nil || res != nil {
			t.Fatalf("a receipt without a real genesis block verified: %v", res)
		}
	})
}
