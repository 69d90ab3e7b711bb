// Command gencrls writes testdata/crl-vectors.json: CRLs signed with the test
// PKI's CA keys (testdata/pki), and every truncation, some appended bytes and
// every one-bit flip (bits 0 and 7) of one of them, each with what Go decides
// of it as the Go verifier (receipt/trust) reads a CRL: whether
// x509.ParseRevocationList accepts it, the serials it lists, and which CA
// certificates' CheckSignature accepts its signature. unit.test.js requires
// the same of verify.mjs. From the repository root:
//
//	go run ./test/receipt-node/testdata/gencrls > test/receipt-node/testdata/crl-vectors.json
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // SHA-1 CRL signatures are a vector: Go accepts them for CRLs
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The CAs whose keys sign, and whose certificates are tried on, every vector.
var caNames = []string{"org1-ca", "org2-ca", "org2-ica", "org3-ca", "orderer-ca", "rogue-ca"}

type vector struct {
	Name     string   `json:"name"`
	DER      string   `json:"der"`
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	Serials  []string `json:"serials,omitempty"`
	SignedBy []string `json:"signedBy,omitempty"`
}

type pki struct {
	dir   string
	certs map[string]*x509.Certificate
	keys  map[string]crypto.Signer
}

func (p *pki) load(name string) {
	b, err := os.ReadFile(filepath.Join(p.dir, name+".pem"))
	must(err)
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	must(err)
	b, err = os.ReadFile(filepath.Join(p.dir, name+".key"))
	must(err)
	blk, _ = pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	must(err)
	p.certs[name], p.keys[name] = c, k.(crypto.Signer)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// created is a CRL as Fabric CA makes one (x509.CreateRevocationList).
func (p *pki) created(ca string, revoked ...*big.Int) []byte {
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: base, NextUpdate: base.AddDate(0, 0, 7)}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: base.AddDate(0, 0, -1)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.certs[ca], p.keys[ca])
	must(err)
	return der
}

var (
	oidECDSASHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidReasonCode  = asn1.ObjectIdentifier{2, 5, 29, 21}
)

// tbsCertList and certList are RFC 5280's CertificateList, for what
// CreateRevocationList does not write: SHA-1, GeneralizedTime, no
// nextUpdate, a negative serial, entry extensions.
type tbsCertList struct {
	Version             int
	Signature           pkix.AlgorithmIdentifier
	Issuer              asn1.RawValue
	ThisUpdate          time.Time
	NextUpdate          time.Time            `asn1:"optional"`
	RevokedCertificates []revokedCertificate `asn1:"optional"`
}

type revokedCertificate struct {
	SerialNumber   *big.Int
	RevocationTime time.Time
	Extensions     []pkix.Extension `asn1:"optional"`
}

type certList struct {
	TBS                asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	SignatureValue     asn1.BitString
}

// handMade encodes a CRL with encoding/asn1 and signs it with ECDSA.
func (p *pki) handMade(ca string, alg asn1.ObjectIdentifier, tbs tbsCertList) []byte {
	tbs.Version = 1
	tbs.Signature = pkix.AlgorithmIdentifier{Algorithm: alg}
	tbs.Issuer = asn1.RawValue{FullBytes: p.certs[ca].RawSubject}
	raw, err := asn1.Marshal(tbs)
	must(err)
	var digest []byte
	if alg.Equal(oidECDSASHA1) {
		d := sha1.Sum(raw) //nolint:gosec // as above
		digest = d[:]
	} else {
		d := sha256.Sum256(raw)
		digest = d[:]
	}
	sig, err := ecdsa.SignASN1(rand.Reader, p.keys[ca].(*ecdsa.PrivateKey), digest)
	must(err)
	der, err := asn1.Marshal(certList{TBS: asn1.RawValue{FullBytes: raw}, SignatureAlgorithm: tbs.Signature,
		SignatureValue: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	must(err)
	return der
}

func (p *pki) verdict(name string, der []byte) vector {
	v := vector{Name: name, DER: base64.StdEncoding.EncodeToString(der)}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.OK = true
	v.Serials = []string{}
	for _, e := range crl.RevokedCertificateEntries {
		v.Serials = append(v.Serials, e.SerialNumber.String())
	}
	for _, ca := range caNames {
		if p.certs[ca].CheckSignature(crl.SignatureAlgorithm, crl.RawTBSRevocationList, crl.Signature) == nil {
			v.SignedBy = append(v.SignedBy, ca)
		}
	}
	return v
}

func main() {
	p := &pki{dir: filepath.Join("test", "receipt-node", "testdata", "pki"), certs: map[string]*x509.Certificate{}, keys: map[string]crypto.Signer{}}
	for _, n := range append(slices.Clone(caNames), "org1-client", "org1-peer0", "org2-peer0", "orderer-client") {
		p.load(n)
	}
	serial := func(n string) *big.Int { return p.certs[n].SerialNumber }
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	reason := func(code int) []pkix.Extension {
		v, err := asn1.Marshal(asn1.Enumerated(code))
		must(err)
		return []pkix.Extension{{Id: oidReasonCode, Value: v}}
	}
	named := []struct {
		name string
		der  []byte
	}{
		{"org1-ca revokes org1-client", p.created("org1-ca", serial("org1-client"))},
		{"org1-ca revokes org1-peer0", p.created("org1-ca", serial("org1-peer0"))},
		{"org1-ca revokes an unknown serial", p.created("org1-ca", big.NewInt(424242))},
		{"org1-ca revokes nothing", p.created("org1-ca")},
		{"rogue-ca revokes org1-client", p.created("rogue-ca", serial("org1-client"))},
		{"org2-ca revokes org2-ica", p.created("org2-ca", serial("org2-ica"))},
		{"org2-ica revokes org2-peer0", p.created("org2-ica", serial("org2-peer0"))},
		{"orderer-ca revokes orderer-client", p.created("orderer-ca", serial("orderer-client"))},
		{"org1-ca SHA-1, GeneralizedTime, no nextUpdate, negative serial, reason code", p.handMade("org1-ca", oidECDSASHA1, tbsCertList{
			ThisUpdate: time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC),
			RevokedCertificates: []revokedCertificate{
				{SerialNumber: big.NewInt(-5), RevocationTime: base, Extensions: reason(1)},
				{SerialNumber: serial("org1-client"), RevocationTime: base},
			},
		})},
		{"org1-ca hand-made, revokes org1-client", p.handMade("org1-ca", oidECDSASHA256, tbsCertList{
			ThisUpdate: base, NextUpdate: base.AddDate(0, 1, 0),
			RevokedCertificates: []revokedCertificate{{SerialNumber: serial("org1-client"), RevocationTime: base, Extensions: reason(4)}},
		})},
	}
	var out []vector
	for _, n := range named {
		v := p.verdict(n.name, n.der)
		if !v.OK {
			panic(fmt.Sprintf("%s does not parse: %s", n.name, v.Error))
		}
		out = append(out, v)
	}
	// Mutations of the first: Go's verdict on each, whatever it is.
	good := named[0].der
	for n := 0; n < len(good); n++ {
		out = append(out, p.verdict(fmt.Sprintf("truncated to %d bytes", n), good[:n]))
	}
	for _, tail := range [][]byte{{0}, {0x30, 0}, []byte("junk")} {
		out = append(out, p.verdict(fmt.Sprintf("with %x appended", tail), append(slices.Clone(good), tail...)))
	}
	for i := range good {
		for _, bit := range []byte{0x01, 0x80} {
			b := slices.Clone(good)
			b[i] ^= bit
			out = append(out, p.verdict(fmt.Sprintf("byte %d xor %02x", i, bit), b))
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	must(enc.Encode(out))
}
