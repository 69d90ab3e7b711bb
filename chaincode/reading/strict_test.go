package reading

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The attack this file is about: encoding/json matches keys case-insensitively
// and keeps the last duplicate, so it reads -40 here while most other parsers
// (Python's json among them) read 4.2 from the same signed bytes.
const attackPayload = `{"device":"d1","seq":1,"ts":1,"values":[{"n":"temp","v":4.2}],"VALUES":[{"n":"temp","v":-40}]}`

// obj joins `"key":value` members into a JSON object.
func obj(members ...string) string { return "{" + strings.Join(members, ",") + "}" }

// member is one `"key":value` pair.
func member(key, value string) string { return `"` + key + `":` + value }

// payloadMembers is a valid payload whose values use every value key.
func payloadMembers() []string {
	return []string{
		member("device", `"d1"`), member("seq", "1"), member("ts", "1"),
		member("values", `[{"n":"temp","u":"Cel","v":4.2},{"n":"state","vs":"ok"},{"n":"door","vb":false}]`),
	}
}

// refusal is what a strict parser must answer for one input.
type refusal struct {
	name    string
	in      string
	problem Problem
	key     string // offending key, for key problems
	message string // exact DecodeError text
}

// keyRefusals lists, for an object with the given valid members, the
// duplicate of every key and a case variant of every key; wrap places the
// object where it is parsed (e.g. inside an array) and at names that place.
func keyRefusals(where string, members []string, wrap func(string) string, at string) []refusal {
	var out []refusal
	suffix := ""
	if at != "" {
		suffix = ` at "` + at + `"`
	}
	for i, m := range members {
		key := m[1 : strings.Index(m[1:], `"`)+1]
		value := m[len(key)+3:]
		dup := append(append([]string{}, members...), m)
		out = append(out, refusal{
			name: where + " duplicate " + key, in: wrap(obj(dup...)), problem: ProblemDuplicateKey, key: key,
			message: `duplicate key "` + key + `"` + suffix,
		})
		for j, variant := range []string{strings.ToUpper(key), strings.ToUpper(key[:1]) + key[1:]} {
			if j == 1 && len(key) == 1 {
				break // one letter has one case variant
			}
			// Alone (encoding/json read it as the field) and after the
			// real key (encoding/json let it win).
			alone := append(append([]string{}, members...), "")
			alone[i] = member(variant, value)
			alone = alone[:len(members)]
			after := append(append([]string{}, members...), member(variant, value))
			for _, in := range []string{obj(alone...), obj(after...)} {
				out = append(out, refusal{
					name: where + " case variant " + variant, in: wrap(in), problem: ProblemUnknownKey, key: variant,
					message: `unknown field "` + variant + `"` + suffix + ` (keys are case-sensitive: the field is "` + key + `")`,
				})
			}
		}
	}
	return out
}

func same(s string) string { return s }

func payloadRefusals() []refusal {
	out := []refusal{{
		name: "attack payload", in: attackPayload, problem: ProblemUnknownKey, key: "VALUES",
		message: `unknown field "VALUES" (keys are case-sensitive: the field is "values")`,
	}, {
		name: "attack payload, duplicate", in: `{"device":"d1","seq":1,"ts":1,"values":[{"n":"temp","v":4.2}],"values":[{"n":"temp","v":-40}]}`,
		problem: ProblemDuplicateKey, key: "values", message: `duplicate key "values"`,
	}, {
		name: "duplicate device", in: `{"device":"d1","device":"d2","seq":1,"ts":1,"values":[{"n":"t","v":1}]}`,
		problem: ProblemDuplicateKey, key: "device", message: `duplicate key "device"`,
	}, {
		name: "duplicate seq", in: `{"device":"d1","seq":1,"seq":2,"ts":1,"values":[{"n":"t","v":1}]}`,
		problem: ProblemDuplicateKey, key: "seq", message: `duplicate key "seq"`,
	}, {
		name: "invalid UTF-8 in a string value", in: "{\"device\":\"d\xff1\",\"seq\":1,\"ts\":1,\"values\":[{\"n\":\"t\",\"v\":1}]}",
		problem: ProblemInvalidUTF8, message: `invalid UTF-8 in a string at "/device" (byte 12)`,
	}, {
		name: "invalid UTF-8 in a value's string", in: "{\"device\":\"d1\",\"seq\":1,\"ts\":1,\"values\":[{\"n\":\"t\",\"vs\":\"\xc0\"}]}",
		problem: ProblemInvalidUTF8, message: `invalid UTF-8 in a string at "/values/0/vs" (byte 55)`,
	}, {
		name: "invalid UTF-8 in a key", in: "{\"dev\xe9ice\":\"d1\",\"seq\":1,\"ts\":1,\"values\":[{\"n\":\"t\",\"v\":1}]}",
		problem: ProblemInvalidUTF8, message: `invalid UTF-8 in a string (byte 5)`,
	}, {
		name: "invalid UTF-8 in a value's key", in: "{\"device\":\"d1\",\"seq\":1,\"ts\":1,\"values\":[{\"n\xed\xa0\x80\":\"t\",\"v\":1}]}",
		problem: ProblemInvalidUTF8, message: `invalid UTF-8 in a string at "/values/0" (byte 43)`,
	}, {
		name: "unknown key", in: `{"device":"d","seq":1,"ts":1,"values":[{"n":"a","v":1}],"extra":true}`,
		problem: ProblemUnknownKey, key: "extra", message: `unknown field "extra"`,
	}, {
		name: "trailing data", in: `{"device":"d","seq":1,"ts":1,"values":[{"n":"a","v":1}]} {}`,
		problem: ProblemTrailingData, message: `trailing data after the JSON value`,
	}}
	out = append(out, keyRefusals("payload", payloadMembers(), same, "")...)
	inValues := func(item string) string {
		return obj(member("device", `"d1"`), member("seq", "1"), member("ts", "1"), member("values", "["+item+"]"))
	}
	for _, item := range [][]string{
		{member("n", `"temp"`), member("u", `"Cel"`), member("v", "4.2")},
		{member("n", `"state"`), member("vs", `"ok"`)},
		{member("n", `"door"`), member("vb", "true")},
	} {
		out = append(out, keyRefusals("values item", item, inValues, "/values/0")...)
	}
	return out
}

func TestPayloadParsingRefusesBytesWithMoreThanOneMeaning(t *testing.T) {
	for _, tc := range payloadRefusals() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(tc.in))
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, tc.in)
			require.Equal(t, "p", ve.Field)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.problem, de.Problem)
			require.Equal(t, tc.key, de.Key)
			require.Equal(t, tc.message, de.Error())
			require.Equal(t, "invalid reading: p: payload is not valid reading JSON: "+tc.message, err.Error())
		})
	}
	// The same payload without the case variant is accepted, and means 4.2.
	p, err := ParsePayload([]byte(`{"device":"d1","seq":1,"ts":1,"values":[{"n":"temp","v":4.2}]}`))
	require.NoError(t, err)
	require.Equal(t, 4.2, *p.Values[0].Number)
}

func TestStrictPayloadIsWhatEncodingJSONReadsForValidInput(t *testing.T) {
	in := obj(payloadMembers()...)
	p, err := ParsePayload([]byte(in))
	require.NoError(t, err)
	var std Payload
	require.NoError(t, json.Unmarshal([]byte(in), &std))
	require.Equal(t, std, p)
}

func TestEnvelopeParsingRefusesBytesWithMoreThanOneMeaning(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte(`{"device":"d1","seq":1,"ts":1,"values":[{"n":"temp","v":4.2}]}`))
	evil := base64.StdEncoding.EncodeToString([]byte(`{"device":"d1","seq":1,"ts":1,"values":[{"n":"temp","v":-40}]}`))
	members := []string{member("p", `"`+good+`"`), member("s", `"AQID"`)}
	tests := []refusal{{
		name: "attack envelope", in: obj(append(members, member("P", `"`+evil+`"`))...), problem: ProblemUnknownKey, key: "P",
		message: `unknown field "P" (keys are case-sensitive: the field is "p")`,
	}, {
		name: "invalid UTF-8 in a string value", in: "{\"p\":\"" + good + "\",\"s\":\"AQ\xffID\"}", problem: ProblemInvalidUTF8,
		message: `invalid UTF-8 in a string at "/s" (byte ` + strconv.Itoa(len(good)+15) + `)`,
	}, {
		name: "invalid UTF-8 in a key", in: "{\"p\":\"" + good + "\",\"s\xff\":\"AQID\"}", problem: ProblemInvalidUTF8,
		message: `invalid UTF-8 in a string (byte ` + strconv.Itoa(len(good)+10) + `)`,
	}, {
		name: "unknown key", in: obj(append(members, member("x", "1"))...), problem: ProblemUnknownKey, key: "x", message: `unknown field "x"`,
	}, {
		name: "trailing data", in: obj(members...) + "{}", problem: ProblemTrailingData, message: "trailing data after the JSON value",
	}}
	tests = append(tests, keyRefusals("envelope", members, same, "")...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tc.in))
			var de *DecodeError
			require.ErrorAs(t, err, &de, tc.in)
			require.Equal(t, tc.problem, de.Problem)
			require.Equal(t, tc.key, de.Key)
			require.Equal(t, tc.message, de.Error())
			require.Equal(t, `invalid reading: envelope is not {"p": base64, "s": base64}: `+tc.message, err.Error())
		})
	}
	// A signed envelope whose payload carries the attack is refused by Decode.
	env, err := ParseEnvelope([]byte(`{"p":"` + base64.StdEncoding.EncodeToString([]byte(attackPayload)) + `","s":"AQID"}`))
	require.NoError(t, err)
	_, err = env.Decode()
	require.ErrorContains(t, err, `unknown field "VALUES" (keys are case-sensitive`)
}

func ackMembers() []string {
	return []string{member("device", `"d1"`), member("command", `"c1"`), member("status", `"acked"`), member("result", `"done"`), member("ts", "1")}
}

func TestAckParsingRefusesBytesWithMoreThanOneMeaning(t *testing.T) {
	tests := []refusal{{
		name: "attack ack", in: `{"device":"d1","command":"c1","status":"acked","STATUS":"failed","ts":1}`, problem: ProblemUnknownKey, key: "STATUS",
		message: `unknown field "STATUS" (keys are case-sensitive: the field is "status")`,
	}, {
		name: "duplicate status", in: `{"device":"d1","command":"c1","status":"failed","status":"acked","ts":1}`, problem: ProblemDuplicateKey, key: "status",
		message: `duplicate key "status"`,
	}, {
		name: "invalid UTF-8 in a string value", in: "{\"device\":\"d1\",\"command\":\"c1\",\"status\":\"acked\",\"result\":\"\xe2\x82\",\"ts\":1}", problem: ProblemInvalidUTF8,
		message: `invalid UTF-8 in a string at "/result" (byte 57)`,
	}, {
		name: "invalid UTF-8 in a key", in: "{\"device\":\"d1\",\"comm\x80and\":\"c1\",\"status\":\"acked\",\"ts\":1}", problem: ProblemInvalidUTF8,
		message: `invalid UTF-8 in a string (byte 20)`,
	}, {
		name: "unknown key", in: `{"device":"d1","command":"c1","status":"acked","ts":1,"extra":true}`, problem: ProblemUnknownKey, key: "extra",
		message: `unknown field "extra"`,
	}, {
		name: "trailing data", in: obj(ackMembers()...) + "[]", problem: ProblemTrailingData, message: "trailing data after the JSON value",
	}}
	tests = append(tests, keyRefusals("ack", ackMembers(), same, "")...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAck(Envelope{Payload: []byte(tc.in), Signature: []byte{1}})
			var ae *AckError
			require.ErrorAs(t, err, &ae, tc.in)
			require.Equal(t, "payload", ae.Field)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.problem, de.Problem)
			require.Equal(t, tc.key, de.Key)
			require.Equal(t, tc.message, de.Error())
			require.Equal(t, "ack payload: not JSON of {device, command, status, result, ts}: "+tc.message, err.Error())
		})
	}
}

func TestAckParsingChecksEveryField(t *testing.T) {
	ok := Ack{Device: "d1", Command: "c1", Status: CommandAcked, Result: "done", Ts: 1}
	tests := []struct {
		name    string
		env     Envelope
		field   string
		message string
	}{
		{"empty payload", Envelope{Signature: []byte{1}}, "payload", "ack payload: must be 1..8192 bytes, got 0"},
		{"large payload", Envelope{Payload: make([]byte, MaxPayloadBytes+1), Signature: []byte{1}}, "payload", "ack payload: must be 1..8192 bytes, got 8193"},
		{"no signature", Envelope{Payload: []byte(`{}`)}, "signature", "ack signature: must be 1..128 bytes, got 0"},
		{"large signature", Envelope{Payload: []byte(`{}`), Signature: make([]byte, MaxSignatureBytes+1)}, "signature", "ack signature: must be 1..128 bytes, got 129"},
		{"no device", ackEnv(t, Ack{Command: "c1", Status: CommandAcked}), "device", "ack device: is required"},
		{"bad command id", ackEnv(t, Ack{Device: "d1", Command: "a b", Status: CommandAcked}), "command", `ack command: "a b" contains ' '; use letters, digits and . _ - : @`},
		{"bad status", ackEnv(t, Ack{Device: "d1", Command: "c1", Status: "expired"}), "status", `ack status: "expired" must be "acked" or "failed"`},
		{"long result", ackEnv(t, Ack{Device: "d1", Command: "c1", Status: CommandFailed, Result: strings.Repeat("x", MaxAckResultBytes+1)}), "result",
			"ack result: must be UTF-8 of at most 1024 bytes (got 1025 bytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAck(tc.env)
			var ae *AckError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.field, ae.Field)
			require.Equal(t, tc.message, err.Error())
		})
	}
	a, err := ParseAck(ackEnv(t, ok))
	require.NoError(t, err)
	require.Equal(t, ok, a)
	ok.Result = strings.Repeat("é", MaxAckResultBytes/2)
	a, err = ParseAck(ackEnv(t, ok))
	require.NoError(t, err, "a result of exactly the limit is accepted")
	require.Equal(t, ok, a)
}

func ackEnv(t *testing.T, a Ack) Envelope {
	t.Helper()
	b, err := json.Marshal(a)
	require.NoError(t, err)
	return Envelope{Payload: b, Signature: []byte{1}}
}

func TestDecodeStrictRefusesLoneSurrogatesAndDuplicatesAtAnyDepth(t *testing.T) {
	var v any
	err := DecodeStrict([]byte(`{"a":"\ud800"}`), &v)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	require.Equal(t, ProblemInvalid, de.Problem)
	require.ErrorContains(t, err, "surrogate")

	err = DecodeStrict([]byte(`{"a":[{"b":{"c":1,"c":2}}]}`), &v)
	require.ErrorAs(t, err, &de)
	require.Equal(t, `duplicate key "c" at "/a/0/b"`, err.Error())

	err = DecodeStrict([]byte(`{"`+strings.Repeat("k", 100)+`":1,"`+strings.Repeat("k", 100)+`":2}`), &v)
	require.ErrorAs(t, err, &de)
	require.Equal(t, strings.Repeat("k", 100), de.Key)
	require.Equal(t, `duplicate key "`+strings.Repeat("k", 64)+`"…`, err.Error(), "long keys are shortened in the message")

	require.NoError(t, DecodeStrict([]byte(` {"a":[1,"x",null,true,{"b":{}}]} `+"\n"), &v))
}
