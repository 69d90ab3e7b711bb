package chaincode

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// argCase is one transaction argument: a fresh target and its JSON.
type argCase struct {
	name string
	into func() any
	arg  string
}

func marshalArg(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestTransactionArgumentsDecodeAsEncodingJSONDecodedThem(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 2*3600))
	later := at.Add(time.Hour)
	typ, fw := "valve", "2.1"
	groups, attrs := []string{"line-1"}, map[string]string{"site": "Zürich", "floor": ""}
	cases := []argCase{
		{"command request, params with spacing", func() any { return &api.CommandRequest{} },
			`{"device":"d1","name":"open","params": {"percent" : 50, "ramp":[1,2.5e1,{"x":null}]} ,"ttlSeconds":120}`},
		{"command request, params null", func() any { return &api.CommandRequest{} }, `{"device":"d1","name":"open","params":null}`},
		{"command query", func() any { return &api.CommandQuery{} }, marshalArg(t, api.CommandQuery{Device: "d1", Status: api.CommandAcked, PageSize: 5, Bookmark: "b"})},
		{"enroll request", func() any { return &api.EnrollRequest{} },
			marshalArg(t, api.EnrollRequest{ID: "d1", Type: "valve", Groups: groups, Attributes: attrs, PublicKey: "pem", Firmware: "1", Activate: true, Private: true})},
		{"enroll request, empty map", func() any { return &api.EnrollRequest{} }, `{"id":"d1","type":"t","publicKey":"k","attributes":{}}`},
		{"device update, pointers", func() any { return &api.DeviceUpdate{} },
			marshalArg(t, api.DeviceUpdate{ID: "d1", Type: &typ, Groups: &groups, Attributes: &attrs, Firmware: &fw})},
		{"policy, times", func() any { return &api.Policy{} }, marshalArg(t, api.Policy{ID: "p", Statements: []api.Statement{{Effect: api.Allow,
			Principals: []string{"msp:Org2MSP"}, Actions: []string{"device:read"}, Resources: []string{"*"}, Condition: "true"}},
			NotBefore: &at, NotAfter: &later, UpdatedAt: at.UTC()})},
		{"policy, time spellings encoding/json accepted", func() any { return &api.Policy{} },
			`{"id":"p","statements":[],"notBefore":"2026-01-02T03:04:05,5+02:00","notAfter":"2026-01-02T3:04:05Z","updatedAt":"2026-01-02T03:04:05.123456789123Z"}`},
		{"policy, null time", func() any { return &api.Policy{} }, `{"id":"p","statements":null,"notBefore":null,"updatedAt":null}`},
		{"access request, context of any JSON", func() any { return &api.AccessRequest{} },
			`{"action":"device:read","resource":"d1","context":{"n":1.5e300,"s":"\u00e9\ud83d\ude00","l":[true,null],"o":{"k":{}}}}`},
		{"rule", func() any { return &api.Rule{} }, marshalArg(t, api.Rule{ID: "r", Selector: api.DeviceSelector{Types: []string{"valve"}}, Condition: "true",
			Actions: []api.RuleAction{{Type: api.ActionTypeCommand, Command: "close", Params: json.RawMessage(`{"now":true}`), TTL: 5}}, UpdatedAt: at})},
		{"sequence numbers", func() any { return &[]uint64{} }, `[1,18446744073709551615]`},
		{"batch request, base64", func() any { return &api.BatchRequest{} },
			marshalArg(t, api.BatchRequest{Readings: []reading.Envelope{{Payload: []byte(`{"x":1}`), Signature: []byte{0, 1, 254, 255}}}})},
		{"batch request, byte spellings encoding/json accepted", func() any { return &api.BatchRequest{} },
			`{"readings":[{"p":"eyJ4\r\nIjoxfQ==","s":[0,1,254,255]},{"p":"","s":null}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			strict, std := tc.into(), tc.into()
			require.NoError(t, decodeArg("argument", tc.arg, strict))
			require.NoError(t, json.Unmarshal([]byte(tc.arg), std))
			require.Equal(t, std, strict)
			// Times are equal instants in the same zone, not only equal.
			require.Equal(t, mustMarshal(t, std), mustMarshal(t, strict))
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestTransactionArgumentsRefuseBytesWithMoreThanOneMeaning(t *testing.T) {
	for _, tc := range []struct {
		name, arg string
		into      any
		message   string
	}{
		{"duplicate key", `{"id":"a","id":"b","type":"t","publicKey":"k"}`, &api.EnrollRequest{},
			`argument is not valid JSON for this transaction: duplicate key "id"`},
		{"case variant", `{"id":"a","ID":"b","type":"t","publicKey":"k"}`, &api.EnrollRequest{},
			`argument is not valid JSON for this transaction: unknown field "ID" (keys are case-sensitive: the field is "id")`},
		{"duplicate map key", `{"id":"a","type":"t","publicKey":"k","attributes":{"site":"x","site":"y"}}`, &api.EnrollRequest{},
			`argument is not valid JSON for this transaction: duplicate key "site" at "/attributes"`},
		{"duplicate key in params", `{"device":"d1","name":"open","params":{"percent":5,"percent":100}}`, &api.CommandRequest{},
			`argument is not valid JSON for this transaction: duplicate key "percent" at "/params"`},
		{"invalid UTF-8", "{\"id\":\"a\",\"type\":\"t\xff\",\"publicKey\":\"k\"}", &api.EnrollRequest{},
			`argument is not valid JSON for this transaction: invalid UTF-8 in a string at "/type" (byte 19)`},
		{"lone surrogate", `{"id":"a","type":"\udfff","publicKey":"k"}`, &api.EnrollRequest{}, "surrogate"},
		{"trailing data", `{"id":"a","type":"t","publicKey":"k"} {}`, &api.EnrollRequest{}, "argument has trailing data after the JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeArg("argument", tc.arg, reflect.New(reflect.TypeOf(tc.into).Elem()).Interface())
			require.Equal(t, api.CodeInvalidArgument, api.CodeOf(err))
			require.ErrorContains(t, err, tc.message)
		})
	}
}
