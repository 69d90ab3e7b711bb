// Command gencrls writes testdata/crl-vectors.json: CRLs signed with the test
// PKI's CA keys (testdata/pki), some hundred CRLs that each change one field
// of a hand-encoded one (times, name strings, OIDs, versions, algorithm
// identifiers, entries, extensions, trailing bytes), and every truncation,
// some appended bytes and every one-bit flip (bits 0 and 7) of one
// CRL, each with what Go decides
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

// tlv is one DER element; der builds what Go's encoders refuse to write.
func tlv(tag byte, content ...[]byte) []byte {
	var c []byte
	for _, x := range content {
		c = append(c, x...)
	}
	n := len(c)
	switch {
	case n < 0x80:
		return append([]byte{tag, byte(n)}, c...)
	case n < 0x100:
		return append([]byte{tag, 0x81, byte(n)}, c...)
	default:
		return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, c...)
	}
}

// rawTBS are the fields of a tbsCertList as raw DER, each replaceable.
type rawTBS struct {
	version, alg, issuer, thisUpdate, nextUpdate, revoked, extensions, extra []byte
	outerAlg                                                                 []byte // nil: alg
}

var ecdsaSHA256AI = tlv(0x30, tlv(0x06, []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}))

func (p *pki) rawDefaults(ca string) rawTBS {
	serial := p.certs["org1-client"].SerialNumber.Bytes()
	if serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	return rawTBS{
		version:    tlv(0x02, []byte{1}),
		alg:        ecdsaSHA256AI,
		issuer:     p.certs[ca].RawSubject,
		thisUpdate: tlv(0x17, []byte("270101000000Z")),
		nextUpdate: tlv(0x17, []byte("270108000000Z")),
		revoked:    tlv(0x30, tlv(0x30, tlv(0x02, serial), tlv(0x17, []byte("261231000000Z")))),
		extensions: tlv(0xa0, tlv(0x30, tlv(0x30, tlv(0x06, []byte{0x55, 0x1d, 0x14}), tlv(0x04, tlv(0x02, []byte{7}))))),
	}
}

// raw encodes and signs (ECDSA with SHA-256, whatever alg says) a CRL from
// raw fields.
func (p *pki) raw(ca string, r rawTBS) []byte {
	tbs := tlv(0x30, r.version, r.alg, r.issuer, r.thisUpdate, r.nextUpdate, r.revoked, r.extensions, r.extra)
	d := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, p.keys[ca].(*ecdsa.PrivateKey), d[:])
	must(err)
	outer := r.outerAlg
	if outer == nil {
		outer = r.alg
	}
	return tlv(0x30, tbs, outer, tlv(0x03, []byte{0}, sig))
}

// rawVariants are CRLs that differ from a good one in one field each, for
// the rules of Go's parser that bit flips rarely reach: times, name
// strings, OIDs, versions, algorithm identifiers, extensions, and what Go
// leaves unread.
func (p *pki) rawVariants() []vector {
	var out []vector
	add := func(name string, edit func(r *rawTBS)) {
		r := p.rawDefaults("org1-ca")
		edit(&r)
		out = append(out, p.verdict("raw: "+name, p.raw("org1-ca", r)))
	}
	add("as made", func(*rawTBS) {})
	for _, s := range []string{"270101000000Z", "2701010000Z", "270101000000+0100", "270101000000-2359", "270101000000+2400", "270101000000+2460",
		"270101000000+0000", "270101000000-0000", "270101000000+0060", "270101000000", "270101000060Z", "270229000000Z", "280229000000Z",
		"000229000000Z", "270431000000Z", "271301000000Z", "270100000000Z", "270101240000Z", "27010100000Z", "2701010000000Z", "270101000000z",
		"270101000000.5Z", " 70101000000Z", "+70101000000Z", "270101000000+01", "270101000000Z0"} {
		add("UTCTime "+s, func(r *rawTBS) { r.thisUpdate = tlv(0x17, []byte(s)) })
	}
	for _, s := range []string{"20270101000000Z", "20270101000000.5Z", "20270101000000.123456789Z", "20270101000000.1234567891Z",
		"20270101000000.50Z", "20270101000000.0Z", "20270101000000.Z", "20270101000000,5Z", "20270101000000+0130", "20270101000000.25-0700",
		"202701010000Z", "20270101000000", "00000101000000Z", "20000229000000Z", "21000229000000Z", "20270101000060Z", "20270101235959Z"} {
		add("GeneralizedTime "+s, func(r *rawTBS) { r.thisUpdate = tlv(0x18, []byte(s)) })
	}
	add("expired long ago", func(r *rawTBS) {
		r.thisUpdate, r.nextUpdate = tlv(0x17, []byte("900101000000Z")), tlv(0x17, []byte("900108000000Z"))
	})
	add("issued in the future", func(r *rawTBS) {
		r.thisUpdate, r.nextUpdate = tlv(0x18, []byte("20990101000000Z")), tlv(0x18, []byte("20990108000000Z"))
	})
	add("GeneralizedTime nextUpdate", func(r *rawTBS) { r.nextUpdate = tlv(0x18, []byte("20270108000000Z")) })
	add("no nextUpdate", func(r *rawTBS) { r.nextUpdate = nil })
	add("no thisUpdate", func(r *rawTBS) { r.thisUpdate = nil })
	add("thisUpdate an INTEGER", func(r *rawTBS) { r.thisUpdate = tlv(0x02, []byte{1}) })
	cn := []byte{0x55, 0x04, 0x03}
	name := func(oid []byte, tag byte, v []byte) []byte {
		return tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, oid), tlv(tag, v))))
	}
	for _, c := range []struct {
		name string
		tag  byte
		v    []byte
	}{
		{"PrintableString", 0x13, []byte("ca.org1.test")}, {"PrintableString with * and &", 0x13, []byte("*.a&b")},
		{"PrintableString with @", 0x13, []byte("a@b")}, {"PrintableString with _", 0x13, []byte("a_b")},
		{"UTF8String", 0x0c, []byte("caf\xc3\xa9")}, {"UTF8String invalid", 0x0c, []byte{0x61, 0xc3}},
		{"UTF8String surrogate", 0x0c, []byte{0xed, 0xa0, 0x80}}, {"IA5String", 0x16, []byte("a@b")},
		{"IA5String 8-bit", 0x16, []byte{0x61, 0x80}}, {"T61String 8-bit", 0x14, []byte{0x61, 0xe9}},
		{"NumericString", 0x12, []byte("12 34")}, {"NumericString letter", 0x12, []byte("12a")},
		{"BMPString", 0x1e, []byte{0, 0x61, 0, 0x62}}, {"BMPString odd", 0x1e, []byte{0, 0x61, 0}},
		{"BMPString with terminator", 0x1e, []byte{0, 0x61, 0, 0}}, {"BMPString surrogate", 0x1e, []byte{0xd8, 0x00}},
		{"BMPString noncharacter", 0x1e, []byte{0xff, 0xfe}}, {"BMPString fdd0", 0x1e, []byte{0xfd, 0xd0}},
		{"VisibleString", 0x1a, []byte("abc")}, {"empty PrintableString", 0x13, nil}, {"an INTEGER", 0x02, []byte{1}},
	} {
		add("issuer "+c.name, func(r *rawTBS) { r.issuer = name(cn, c.tag, c.v) })
	}
	for _, o := range []struct {
		name string
		oid  []byte
	}{{"non-minimal arc", []byte{0x55, 0x80, 0x04}}, {"empty", nil}, {"truncated arc", []byte{0x55, 0x84}}, {"five-byte arc", []byte{0x55, 0x8f, 0xff, 0xff, 0xff, 0x7f}},
		{"arc of 2^31", []byte{0x55, 0x88, 0x80, 0x80, 0x80, 0x00}}, {"large first arc", []byte{0x88, 0x37, 0x03}}, {"six-byte arc", []byte{0x55, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00}}} {
		add("issuer attribute OID "+o.name, func(r *rawTBS) { r.issuer = name(o.oid, 0x13, []byte("x")) })
	}
	add("empty issuer", func(r *rawTBS) { r.issuer = tlv(0x30) })
	add("empty RDN set", func(r *rawTBS) { r.issuer = tlv(0x30, tlv(0x31)) })
	add("issuer a SET", func(r *rawTBS) { r.issuer = tlv(0x31) })
	add("issuer attribute with trailing bytes", func(r *rawTBS) {
		r.issuer = tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, cn), tlv(0x13, []byte("x")), tlv(0x05))))
	})
	for _, v := range []struct {
		name string
		der  []byte
	}{{"absent", nil}, {"0", tlv(0x02, []byte{0})}, {"2", tlv(0x02, []byte{2})}, {"non-minimal 1", tlv(0x02, []byte{0, 1})}, {"empty", tlv(0x02)},
		{"an ENUMERATED", tlv(0x0a, []byte{1})}, {"huge", tlv(0x02, []byte{1, 0, 0, 0, 0, 0, 0, 0, 1})}} {
		add("version "+v.name, func(r *rawTBS) { r.version = v.der })
	}
	add("outer algorithm differs", func(r *rawTBS) {
		r.outerAlg = tlv(0x30, tlv(0x06, []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}))
	})
	add("NULL parameters", func(r *rawTBS) {
		r.alg = tlv(0x30, tlv(0x06, []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}), tlv(0x05))
	})
	add("parameters and trailing bytes", func(r *rawTBS) {
		r.alg = tlv(0x30, tlv(0x06, []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}), tlv(0x05), tlv(0x05))
	})
	add("unknown algorithm", func(r *rawTBS) { r.alg = tlv(0x30, tlv(0x06, []byte{0x2a, 0x03})) })
	add("algorithm without OID", func(r *rawTBS) { r.alg = tlv(0x30, tlv(0x05)) })
	add("RSA-PSS algorithm", func(r *rawTBS) {
		r.alg = tlv(0x30, tlv(0x06, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}))
	})
	add("Ed25519 algorithm", func(r *rawTBS) { r.alg = tlv(0x30, tlv(0x06, []byte{0x2b, 0x65, 0x70})) })
	entry := func(serial []byte, rest ...[]byte) []byte {
		return tlv(0x30, tlv(0x30, append([][]byte{tlv(0x02, serial), tlv(0x17, []byte("261231000000Z"))}, rest...)...))
	}
	ext := func(oid []byte, rest ...[]byte) []byte {
		return tlv(0x30, append([][]byte{tlv(0x06, oid)}, rest...)...)
	}
	reasonOID := []byte{0x55, 0x1d, 0x15}
	for _, e := range []struct {
		name string
		der  []byte
	}{
		{"no entries", nil}, {"empty list", tlv(0x30)}, {"serial 0", entry([]byte{0})}, {"serial -1", entry([]byte{0xff})},
		{"serial non-minimal", entry([]byte{0, 1})}, {"serial non-minimal negative", entry([]byte{0xff, 0x80})}, {"serial empty", entry(nil)},
		{"serial 20 bytes", entry([]byte{0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})},
		{"no revocation date", tlv(0x30, tlv(0x30, tlv(0x02, []byte{5})))},
		{"entry trailing bytes", entry([]byte{5}, tlv(0x30), tlv(0x05))},
		{"entry reason code", entry([]byte{5}, tlv(0x30, ext(reasonOID, tlv(0x04, tlv(0x0a, []byte{1})))))},
		{"entry reason code an INTEGER", entry([]byte{5}, tlv(0x30, ext(reasonOID, tlv(0x04, tlv(0x02, []byte{1})))))},
		{"entry reason code non-minimal", entry([]byte{5}, tlv(0x30, ext(reasonOID, tlv(0x04, tlv(0x0a, []byte{0, 1})))))},
		{"entry reason code critical", entry([]byte{5}, tlv(0x30, ext(reasonOID, tlv(0x01, []byte{0xff}), tlv(0x04, tlv(0x0a, []byte{1})))))},
		{"entry critical not DER", entry([]byte{5}, tlv(0x30, ext(reasonOID, tlv(0x01, []byte{0x01}), tlv(0x04, tlv(0x0a, []byte{1})))))},
		{"entry unknown extension", entry([]byte{5}, tlv(0x30, ext([]byte{0x2a, 0x03}, tlv(0x04, []byte("anything")))))},
		{"entry extension without value", entry([]byte{5}, tlv(0x30, ext(reasonOID)))},
		{"entry extensions not a SEQUENCE", entry([]byte{5}, tlv(0x31))},
		{"an entry not a SEQUENCE", tlv(0x30, tlv(0x31))},
	} {
		add("revoked "+e.name, func(r *rawTBS) { r.revoked = e.der })
	}
	akiOID, numOID := []byte{0x55, 0x1d, 0x23}, []byte{0x55, 0x1d, 0x14}
	for _, e := range []struct {
		name string
		der  []byte
	}{
		{"none", nil}, {"empty", tlv(0xa0, tlv(0x30))}, {"not explicit", tlv(0xa0)},
		{"AKI", tlv(0xa0, tlv(0x30, ext(akiOID, tlv(0x04, tlv(0x30, tlv(0x80, []byte{1, 2}))))))},
		{"AKI without key id", tlv(0xa0, tlv(0x30, ext(akiOID, tlv(0x04, tlv(0x30)))))},
		{"AKI critical", tlv(0xa0, tlv(0x30, ext(akiOID, tlv(0x01, []byte{0xff}), tlv(0x04, tlv(0x30)))))},
		{"AKI not a SEQUENCE", tlv(0xa0, tlv(0x30, ext(akiOID, tlv(0x04, tlv(0x04)))))},
		{"CRL number non-minimal", tlv(0xa0, tlv(0x30, ext(numOID, tlv(0x04, tlv(0x02, []byte{0, 7})))))},
		{"CRL number negative", tlv(0xa0, tlv(0x30, ext(numOID, tlv(0x04, tlv(0x02, []byte{0x80})))))},
		{"CRL number an OCTET STRING", tlv(0xa0, tlv(0x30, ext(numOID, tlv(0x04, tlv(0x04, []byte{7})))))},
		{"unknown critical extension", tlv(0xa0, tlv(0x30, ext([]byte{0x2a, 0x03}, tlv(0x01, []byte{0xff}), tlv(0x04, nil))))},
		{"trailing after the SEQUENCE", tlv(0xa0, tlv(0x30), tlv(0x05))},
		{"[1] instead of [0]", tlv(0xa1, tlv(0x30))},
	} {
		add("extensions "+e.name, func(r *rawTBS) { r.extensions = e.der })
	}
	add("junk between thisUpdate and the revoked list", func(r *rawTBS) { r.nextUpdate = tlv(0x02, []byte{1}) })
	add("junk at the end of the tbsCertList", func(r *rawTBS) { r.extra = tlv(0x05) })
	add("malformed junk at the end of the tbsCertList", func(r *rawTBS) { r.extra = []byte{0x05} })
	add("high tag number at the end", func(r *rawTBS) { r.extra = []byte{0x1f, 0x01, 0x00} })
	add("revoked list twice", func(r *rawTBS) { r.extra = r.revoked })
	return out
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
	out = append(out, p.rawVariants()...)
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
