package reading

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func num(f float64) *float64 { return &f }
func str(s string) *string   { return &s }
func boolean(b bool) *bool   { return &b }

func samplePayload() Payload {
	return Payload{Device: "truck-7.sensor-1", Seq: 1, Timestamp: 1764000000000, Values: []Value{
		{Name: "temperature", Unit: "Cel", Number: num(4.2)},
		{Name: "door", Bool: boolean(false)},
		{Name: "state", String: str("ok")},
	}}
}

func TestSignedReadingVerifiesWithEnrolledKey(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			s, err := GenerateKey(alg)
			require.NoError(t, err)
			env, err := s.SignReading(samplePayload())
			require.NoError(t, err)

			got, err := ParseEnvelope(env.Encode())
			require.NoError(t, err)
			r, err := got.Decode()
			require.NoError(t, err)
			require.Equal(t, samplePayload(), r.Payload)

			key, err := ParsePublicKey(s.Public().PEM())
			require.NoError(t, err)
			require.Equal(t, alg, key.Algorithm())
			require.NoError(t, r.Verify(key))
		})
	}
}

func TestForgedOrTamperedReadingIsRejected(t *testing.T) {
	device, err := GenerateKey(ECDSAP256)
	require.NoError(t, err)
	attacker, err := GenerateKey(ECDSAP256)
	require.NoError(t, err)

	env, err := attacker.SignReading(samplePayload())
	require.NoError(t, err)
	r, err := env.Decode()
	require.NoError(t, err)
	require.ErrorIs(t, r.Verify(device.Public()), ErrBadSignature, "signature by another key")

	env, err = device.SignReading(samplePayload())
	require.NoError(t, err)
	tampered := strings.Replace(string(env.Payload), "4.2", "9.9", 1)
	r, err = Envelope{Payload: []byte(tampered), Signature: env.Signature}.Decode()
	require.NoError(t, err)
	require.ErrorIs(t, r.Verify(device.Public()), ErrBadSignature, "payload changed after signing")

	// A signature made for another purpose (domain) is not a reading signature.
	sig, err := device.Sign(DomainAuth, env.Payload)
	require.NoError(t, err)
	r, err = Envelope{Payload: env.Payload, Signature: sig}.Decode()
	require.NoError(t, err)
	require.ErrorIs(t, r.Verify(device.Public()), ErrBadSignature, "cross-domain signature")
}

func TestPayloadValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Payload)
		field  string
	}{
		{"missing device", func(p *Payload) { p.Device = "" }, "device"},
		{"bad device chars", func(p *Payload) { p.Device = "a b" }, "device"},
		{"long device", func(p *Payload) { p.Device = strings.Repeat("a", 129) }, "device"},
		{"zero seq", func(p *Payload) { p.Seq = 0 }, "seq"},
		{"zero ts", func(p *Payload) { p.Timestamp = 0 }, "ts"},
		{"no values", func(p *Payload) { p.Values = nil }, "values"},
		{"too many values", func(p *Payload) {
			p.Values = nil
			for i := range MaxValues + 1 {
				p.Values = append(p.Values, Value{Name: fmt.Sprint("v", i), Number: num(1)})
			}
		}, "values"},
		{"duplicate name", func(p *Payload) { p.Values[1].Name = "temperature" }, "values[1]"},
		{"two kinds", func(p *Payload) { p.Values[0].Bool = boolean(true) }, "values[0]"},
		{"no kind", func(p *Payload) { p.Values[0].Number = nil }, "values[0]"},
		{"NaN", func(p *Payload) { p.Values[0].Number = num(math.NaN()) }, "values[0].v"},
		{"empty name", func(p *Payload) { p.Values[0].Name = "" }, "values[0].n"},
		{"control in unit", func(p *Payload) { p.Values[0].Unit = "C\n" }, "values[0].u"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := samplePayload()
			tc.mutate(&p)
			err := p.Validate()
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
		})
	}
	require.NoError(t, samplePayload().Validate())
}

func TestEnvelopeParsingRefusesMalformedInput(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"p":"!!"}`, `{"p":"e30=","s":"AA==","x":1}`, `{"p":"e30=","s":"AA=="} {}`, `[]`} {
		env, err := ParseEnvelope([]byte(in))
		if err == nil {
			_, err = env.Decode()
		}
		require.Error(t, err, "input %q", in)
	}
	_, err := ParsePayload([]byte(`{"device":"d","seq":1,"ts":1,"values":[{"n":"a","v":1}],"extra":true}`))
	require.ErrorContains(t, err, "extra")
}

func TestParsePublicKeyRefusesUnsupportedKeys(t *testing.T) {
	for _, in := range []string{"", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", strings.Repeat("A", MaxPublicKeyPEM+1)} {
		_, err := ParsePublicKey(in)
		var ke *KeyError
		require.ErrorAs(t, err, &ke, "input %q", in)
	}
	s, err := GenerateKey(Ed25519)
	require.NoError(t, err)
	_, err = ParsePublicKey(s.Public().PEM() + "junk")
	require.ErrorContains(t, err, "trailing")
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		s, err := GenerateKey(alg)
		require.NoError(t, err)
		pemBytes, err := s.PrivateKeyPEM()
		require.NoError(t, err)
		back, err := ParsePrivateKey(pemBytes)
		require.NoError(t, err)
		require.True(t, back.Public().Equal(s.Public()))
		require.Equal(t, s.Public().Fingerprint(), back.Public().Fingerprint())
	}
}

func leavesOf(n int) [][32]byte {
	out := make([][32]byte, n)
	for i := range out {
		out[i] = LeafHash([]byte(fmt.Sprint("payload", i)), []byte{byte(i)})
	}
	return out
}

func TestEveryLeafHasAVerifiableInclusionProof(t *testing.T) {
	for n := 1; n <= 33; n++ {
		leaves := leavesOf(n)
		root, err := MerkleRoot(leaves)
		require.NoError(t, err)
		for i := range n {
			p, err := InclusionPath(leaves, i)
			require.NoError(t, err)
			require.NoError(t, VerifyInclusion(leaves[i], i, n, p, root), "n=%d i=%d", n, i)
			if n > 1 {
				other := (i + 1) % n
				require.ErrorIs(t, VerifyInclusion(leaves[other], i, n, p, root), ErrProofMismatch, "wrong leaf n=%d i=%d", n, i)
				require.Error(t, VerifyInclusion(leaves[i], other, n, p, root), "wrong index n=%d i=%d", n, i)
			}
		}
	}
}

func TestMerkleRootMatchesRFC6962Shape(t *testing.T) {
	l := leavesOf(3)
	root, err := MerkleRoot(l)
	require.NoError(t, err)
	require.Equal(t, nodeHash(nodeHash(l[0], l[1]), l[2]), root)
	_, err = MerkleRoot(nil)
	require.Error(t, err)
}

func TestProofVerifiesOfflineAndDetectsTampering(t *testing.T) {
	s, err := GenerateKey(ECDSAP256)
	require.NoError(t, err)
	var leaves [][32]byte
	var envs []Envelope
	for i := range 5 {
		p := samplePayload()
		p.Seq = uint64(i + 1)
		env, err := s.SignReading(p)
		require.NoError(t, err)
		envs = append(envs, env)
		leaves = append(leaves, LeafHash(env.Payload, env.Signature))
	}
	root, err := MerkleRoot(leaves)
	require.NoError(t, err)
	path, err := InclusionPath(leaves, 3)
	require.NoError(t, err)
	proof := Proof{BatchID: "tx1", Root: root, Size: 5, Index: 3, Payload: envs[3].Payload, Signature: envs[3].Signature, PublicKey: s.Public().PEM()}
	for _, h := range path {
		proof.Path = append(proof.Path, h)
	}
	data, err := json.Marshal(proof)
	require.NoError(t, err)
	var back Proof
	require.NoError(t, json.Unmarshal(data, &back))
	got, err := back.Verify()
	require.NoError(t, err)
	require.Equal(t, uint64(4), got.Seq)

	bad := back
	bad.Root[0] ^= 1
	_, err = bad.Verify()
	var ve *VerifyError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "inclusion", ve.Step)

	bad = back
	bad.Payload = envs[2].Payload
	_, err = bad.Verify()
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "signature", ve.Step)
}

func TestHashJSON(t *testing.T) {
	var h Hash
	require.Error(t, json.Unmarshal([]byte(`"abc"`), &h))
	require.Error(t, json.Unmarshal([]byte(`12`), &h))
	h[0] = 0xab
	data, err := json.Marshal(h)
	require.NoError(t, err)
	var back Hash
	require.NoError(t, json.Unmarshal(data, &back))
	require.Equal(t, h, back)
	require.True(t, errors.Is(ErrProofMismatch, ErrProofMismatch))
}
