package store

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	rd "github.com/iotledger/iotledger/chaincode/reading"
)

func TestPayloadValues(t *testing.T) {
	for _, c := range []struct {
		name, payload, want string
		err                 bool
	}{
		{"values", `{"device":"d1","seq":1,"ts":5,"values":[{"n":"t","v":1.5}]}`, `[{"n":"t","v":1.5}]`, false},
		{"values first, spaced", `{ "values" : [ {"n":"t","vb":true} ] , "device":"d1"}`, `[ {"n":"t","vb":true} ]`, false},
		{"a string holding the key", `{"device":"d1","values":[{"n":"x","vs":"\"values\":[1]"}]}`, `[{"n":"x","vs":"\"values\":[1]"}]`, false},
		{"no values", `{"device":"d1","seq":1}`, ``, false},
		{"nested values key only", `{"device":"d1","x":{"values":[1]}}`, ``, false},
		{"none (another org's private reading)", ``, ``, false},
		{"not JSON", `payload 7`, ``, true},
		{"cut short", `{"device":"d1","values":[{"n":"t"`, ``, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := payloadValues([]byte(c.payload))
			if c.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, string(got))
		})
	}
}

// FuzzPayloadValues: for every payload the follower would store (one that
// reading.ParsePayload accepts), the values read back decode to the
// payload's values.
func FuzzPayloadValues(f *testing.F) {
	for _, s := range []string{
		`{"device":"d1","seq":1,"ts":5,"values":[{"n":"t","u":"Cel","v":1.5}]}`,
		`{"values":[{"n":"s","vs":"a \"values\": b"},{"n":"b","vb":false}],"ts":1,"seq":2,"device":"x"}`,
		`{"device":"d\u0031","seq":1,"ts":5,"values":[{"n":"t","v":-0.5e3}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := payloadValues(payload)
		p, perr := rd.ParsePayload(payload)
		if perr != nil {
			return
		}
		require.NoError(t, err)
		var values []rd.Value
		require.NoError(t, json.Unmarshal(got, &values))
		require.Equal(t, p.Values, values)
	})
}

// BenchmarkPayloadValues: the cost, per reading read, of not storing its
// values beside its payload.
func BenchmarkPayloadValues(b *testing.B) {
	payload := []byte(`{"device":"soak-heavy","seq":123456,"ts":1772366400000,"values":[{"n":"temperature","u":"Cel","v":5.23},{"n":"door","vb":false}]}`)
	for b.Loop() {
		if _, err := payloadValues(payload); err != nil {
			b.Fatal(err)
		}
	}
}
