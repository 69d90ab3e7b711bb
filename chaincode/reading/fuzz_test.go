package reading

import (
	"encoding/json"
	"testing"
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
