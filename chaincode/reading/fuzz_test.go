package reading

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func FuzzParseEnvelope(f *testing.F) {
	s, err := GenerateKey(ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	env, err := s.SignReading(samplePayload())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env.Encode())
	f.Add([]byte(`{"p":"e30=","s":"AA=="}`))
	f.Add([]byte(`{"p":null}`))
	f.Add([]byte(`{"p":"` + base64.StdEncoding.EncodeToString([]byte(attackPayload)) + `","s":"AQID"}`))
	f.Add([]byte(`{"p":"e30=","s":"AQID","P":"e30="}`))
	f.Add([]byte(`{"p":"e30=","p":"e30=","s":"AQID"}`))
	f.Add([]byte("{\"p\":\"e30=\",\"s\":\"AQ\xffID\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if err != nil {
			return
		}
		r, err := env.Decode()
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded payload does not validate: %v", err)
		}
		// Verification of arbitrary input must fail cleanly, never panic.
		if r.Verify(s.Public()) == nil && string(r.Raw) != string(env.Payload) {
			t.Fatal("verified bytes differ from the envelope's")
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	good, err := json.Marshal(samplePayload())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, r := range payloadRefusals() {
		f.Add([]byte(r.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePayload(data)
		if err != nil {
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			return
		}
		require.NoError(t, p.Validate())
		require.True(t, utf8.Valid(data), "accepted invalid UTF-8")
		// What was accepted reads the same under the old decoder.
		var legacy Payload
		require.NoError(t, legacyDecode(data, &legacy))
		require.Equal(t, normalPayload(p), normalPayload(legacy))
	})
}

// FuzzParseAck is the hub's and the chaincode's one ack parser.
func FuzzParseAck(f *testing.F) {
	f.Add([]byte(`{"device":"cold-1","command":"cmd-1","status":"acked","result":"ok","ts":1}`), []byte{1})
	f.Add([]byte(`{"device":"cold-1","command":"cmd-1","status":"failed","ts":1}{}`), []byte{1})
	f.Add([]byte(`{"device":"","command":"x","status":"acked"}`), []byte{1, 2})
	f.Add([]byte(`{"device":"d1","command":"c1","status":"acked","STATUS":"failed","ts":1}`), []byte{1})
	f.Add([]byte(`{"device":"d1","command":"c1","status":"failed","status":"acked","ts":1}`), []byte{1})
	f.Add([]byte("{\"device\":\"d1\",\"command\":\"c1\",\"status\":\"acked\",\"result\":\"\xe2\x82\",\"ts\":1}"), []byte{1})
	f.Add([]byte(`{}`), []byte{})
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		a, err := ParseAck(Envelope{Payload: payload, Signature: sig})
		if err != nil {
			var ae *AckError
			require.ErrorAs(t, err, &ae)
			return
		}
		require.Contains(t, []CommandStatus{CommandAcked, CommandFailed}, a.Status)
		require.NoError(t, ValidateID("device", a.Device))
		require.NoError(t, ValidateID("command", a.Command))
		require.LessOrEqual(t, len(a.Result), MaxAckResultBytes)
		require.True(t, utf8.Valid(payload), "accepted invalid UTF-8")
		var legacy Ack
		require.NoError(t, legacyDecode(payload, &legacy))
		require.Equal(t, a, legacy)
	})
}

func FuzzParsePublicKey(f *testing.F) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		s, err := GenerateKey(alg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Public().PEM())
	}
	f.Add("-----BEGIN PUBLIC KEY-----\nMA==\n-----END PUBLIC KEY-----\n")
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParsePublicKey(in)
		if err != nil {
			return
		}
		again, err := ParsePublicKey(k.PEM())
		if err != nil || !again.Equal(k) {
			t.Fatalf("key does not round-trip: %v", err)
		}
		if k.Verify([]byte("m"), []byte{1, 2, 3}) == nil {
			t.Fatal("garbage signature verified")
		}
	})
}

func FuzzProofVerify(f *testing.F) {
	f.Add([]byte(`{"batchId":"x","root":"` + Hash{}.String() + `","size":1,"index":0,"path":[],"payload":"e30=","signature":"AA==","publicKey":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Proof
		if json.Unmarshal(data, &p) != nil {
			return
		}
		_, _ = p.Verify() // must not panic on any input
	})
}
