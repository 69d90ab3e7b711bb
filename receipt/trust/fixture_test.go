package trust

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// base is "now" in the tests: every certificate but the expired one is valid then.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (c *testCA) pem() []byte { return pemCert(c.cert) }

type testSigner struct {
	mspID string
	cert  *x509.Certificate
	key   crypto.Signer
}

func (s *testSigner) serialized(t testing.TB) []byte {
	b, err := proto.Marshal(&msp.SerializedIdentity{Mspid: s.mspID, IdBytes: pemCert(s.cert)})
	require.NoError(t, err)
	return b
}

// sign signs as Fabric's bccsp does: ECDSA over SHA-256, DER, low S.
func (s *testSigner) sign(t testing.TB, data []byte) []byte {
	h := sha256.Sum256(data)
	return s.signDigest(t, h[:])
}

func (s *testSigner) signDigest(t testing.TB, digest []byte) []byte {
	der, err := ecdsa.SignASN1(rand.Reader, s.key.(*ecdsa.PrivateKey), digest)
	require.NoError(t, err)
	var rs struct{ R, S *big.Int }
	_, err = asn1.Unmarshal(der, &rs)
	require.NoError(t, err)
	n := s.key.(*ecdsa.PrivateKey).Curve.Params().N
	if rs.S.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		rs.S.Sub(n, rs.S)
	}
	der, err = asn1.Marshal(rs)
	require.NoError(t, err)
	return der
}

func (s *testSigner) sd(t testing.TB, data []byte) SignedData {
	return SignedData{Data: data, Identity: s.serialized(t), Signature: s.sign(t, data)}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	require.NoError(t, err)
	return n
}

func newCA(t testing.TB, cn string, parent *testCA) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn, Organization: []string{cn}},
		NotBefore: base.AddDate(-1, 0, 0), NotAfter: base.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key}
}

// issue makes a signing certificate as cryptogen does: the NodeOU role as the OU.
func (c *testCA) issue(t testing.TB, mspID, cn string, ous []string, mods ...func(*x509.Certificate)) *testSigner {
	var key crypto.Signer
	var err error
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: ous},
		NotBefore: base.AddDate(0, 0, -7), NotAfter: base.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	for _, m := range mods {
		m(tmpl)
	}
	if tmpl.PublicKey != nil { // a mod asked for another key
		key = tmpl.PublicKey.(crypto.Signer)
		tmpl.PublicKey = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testSigner{mspID: mspID, cert: cert, key: key}
}

func (c *testCA) crl(t testing.TB, revoked ...*x509.Certificate) []byte {
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: base.AddDate(0, 0, -1), NextUpdate: base.AddDate(0, 1, 0)}
	for _, r := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: r.SerialNumber, RevocationTime: base.AddDate(0, 0, -1)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, c.cert, c.key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// fixture is a channel like the test network's: an orderer org and two
// application orgs (Org2 with an intermediate CA), NodeOUs on everywhere.
type fixture struct {
	ordererCA, org1CA, org1CA2, org2Root, org2Inter, org3CA *testCA
	s                                                       map[string]*testSigner
	org1CRL, org2CRL                                        [][]byte
	app                                                     map[string]*common.ConfigPolicy // extra /Channel/Application policies
	org1                                                    map[string]*common.ConfigPolicy // extra /Channel/Application/Org1MSP policies
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{s: map[string]*testSigner{}, app: map[string]*common.ConfigPolicy{}, org1: map[string]*common.ConfigPolicy{}}
	f.ordererCA = newCA(t, "ca.example.com", nil)
	f.org1CA = newCA(t, "ca.org1.example.com", nil)
	f.org1CA2 = newCA(t, "ca2.org1.example.com", nil)
	f.org2Root = newCA(t, "rca.org2.example.com", nil)
	f.org2Inter = newCA(t, "ica.org2.example.com", f.org2Root)
	f.org3CA = newCA(t, "ca.org3.example.com", nil)

	f.s["orderer0"] = f.ordererCA.issue(t, "OrdererMSP", "orderer0.example.com", []string{"orderer"})
	for _, n := range []string{"peer0", "peer1"} {
		f.s[n+".org1"] = f.org1CA.issue(t, "Org1MSP", n+".org1.example.com", []string{"peer"})
	}
	f.s["client.org1"] = f.org1CA.issue(t, "Org1MSP", "User1@org1.example.com", []string{"client"})
	f.s["admin.org1"] = f.org1CA.issue(t, "Org1MSP", "Admin@org1.example.com", []string{"admin"})
	f.s["listed.org1"] = f.org1CA.issue(t, "Org1MSP", "Listed@org1.example.com", []string{"client"})
	f.s["revoked.org1"] = f.org1CA.issue(t, "Org1MSP", "revoked.org1.example.com", []string{"peer"})
	f.s["expired.org1"] = f.org1CA.issue(t, "Org1MSP", "expired.org1.example.com", []string{"peer"}, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = base.AddDate(0, 0, -30), base.AddDate(0, 0, -1)
	})
	f.s["noou.org1"] = f.org1CA.issue(t, "Org1MSP", "noou.org1.example.com", nil)
	f.s["twoou.org1"] = f.org1CA.issue(t, "Org1MSP", "twoou.org1.example.com", []string{"peer", "client"})
	f.s["rsa.org1"] = f.org1CA.issue(t, "Org1MSP", "rsa.org1.example.com", []string{"peer"}, func(c *x509.Certificate) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		c.PublicKey = k
	})
	for name, curve := range map[string]elliptic.Curve{"p384.org1": elliptic.P384(), "p521.org1": elliptic.P521()} {
		f.s[name] = f.org1CA.issue(t, "Org1MSP", name+".example.com", []string{"peer"}, func(c *x509.Certificate) {
			k, err := ecdsa.GenerateKey(curve, rand.Reader)
			require.NoError(t, err)
			c.PublicKey = k
		})
	}
	f.s["ca2.org1"] = f.org1CA2.issue(t, "Org1MSP", "peer9.org1.example.com", []string{"peer"})
	f.s["fake.org1"] = f.org3CA.issue(t, "Org1MSP", "peer0.org1.example.com", []string{"peer"})
	f.s["cross.org1"] = f.org2Inter.issue(t, "Org1MSP", "peer0.org2.example.com", []string{"peer"})
	f.s["peer0.org2"] = f.org2Inter.issue(t, "Org2MSP", "peer0.org2.example.com", []string{"peer"})
	f.s["client.org2"] = f.org2Inter.issue(t, "Org2MSP", "User1@org2.example.com", []string{"client"})
	f.s["rootissued.org2"] = f.org2Root.issue(t, "Org2MSP", "peer5.org2.example.com", []string{"peer"})
	f.s["peer0.org3"] = f.org3CA.issue(t, "Org3MSP", "peer0.org3.example.com", []string{"peer"})
	f.s["orderer-as-org1"] = f.org1CA.issue(t, "Org1MSP", "orderer9.org1.example.com", []string{"orderer"})

	f.org1CRL = [][]byte{f.org1CA.crl(t, f.s["revoked.org1"].cert)}
	return f
}

func (f *fixture) sd(t testing.TB, name string, data []byte) SignedData {
	s, ok := f.s[name]
	require.True(t, ok, name)
	return s.sd(t, data)
}

func nodeOUs(ca *testCA) *msp.FabricNodeOUs {
	id := func(ou string) *msp.FabricOUIdentifier {
		o := &msp.FabricOUIdentifier{OrganizationalUnitIdentifier: ou}
		if ca != nil {
			o.Certificate = ca.pem()
		}
		return o
	}
	return &msp.FabricNodeOUs{Enable: true, ClientOuIdentifier: id("client"), PeerOuIdentifier: id("peer"), AdminOuIdentifier: id("admin"), OrdererOuIdentifier: id("orderer")}
}

func mspValue(t testing.TB, fc *msp.FabricMSPConfig) map[string]*common.ConfigValue {
	b, err := proto.Marshal(fc)
	require.NoError(t, err)
	v, err := proto.Marshal(&msp.MSPConfig{Type: 0, Config: b})
	require.NoError(t, err)
	return map[string]*common.ConfigValue{"MSP": {Value: v, ModPolicy: "Admins"}}
}

func signedBy(i int32) *common.SignaturePolicy {
	return &common.SignaturePolicy{Type: &common.SignaturePolicy_SignedBy{SignedBy: i}}
}

func outOf(n int32, rules ...*common.SignaturePolicy) *common.SignaturePolicy {
	return &common.SignaturePolicy{Type: &common.SignaturePolicy_NOutOf_{NOutOf: &common.SignaturePolicy_NOutOf{N: n, Rules: rules}}}
}

func role(t testing.TB, mspID string, r msp.MSPRole_MSPRoleType) *msp.MSPPrincipal {
	b, err := proto.Marshal(&msp.MSPRole{MspIdentifier: mspID, Role: r})
	require.NoError(t, err)
	return &msp.MSPPrincipal{PrincipalClassification: msp.MSPPrincipal_ROLE, Principal: b}
}

func sigPol(t testing.TB, rule *common.SignaturePolicy, ids ...*msp.MSPPrincipal) *common.ConfigPolicy {
	b, err := proto.Marshal(&common.SignaturePolicyEnvelope{Version: 0, Rule: rule, Identities: ids})
	require.NoError(t, err)
	return &common.ConfigPolicy{Policy: &common.Policy{Type: int32(common.Policy_SIGNATURE), Value: b}, ModPolicy: "Admins"}
}

func metaPol(t testing.TB, rule common.ImplicitMetaPolicy_Rule, sub string) *common.ConfigPolicy {
	b, err := proto.Marshal(&common.ImplicitMetaPolicy{SubPolicy: sub, Rule: rule})
	require.NoError(t, err)
	return &common.ConfigPolicy{Policy: &common.Policy{Type: int32(common.Policy_IMPLICIT_META), Value: b}, ModPolicy: "Admins"}
}

// orgPolicies are configtxgen's defaults for an org: Readers, Writers, Admins,
// and Endorsement OR('<msp>.peer').
func orgPolicies(t testing.TB, mspID string) map[string]*common.ConfigPolicy {
	return map[string]*common.ConfigPolicy{
		"Readers":     sigPol(t, outOf(1, signedBy(0), signedBy(1), signedBy(2)), role(t, mspID, msp.MSPRole_ADMIN), role(t, mspID, msp.MSPRole_PEER), role(t, mspID, msp.MSPRole_CLIENT)),
		"Writers":     sigPol(t, outOf(1, signedBy(0), signedBy(1)), role(t, mspID, msp.MSPRole_ADMIN), role(t, mspID, msp.MSPRole_CLIENT)),
		"Admins":      sigPol(t, outOf(1, signedBy(0)), role(t, mspID, msp.MSPRole_ADMIN)),
		"Endorsement": sigPol(t, outOf(1, signedBy(0)), role(t, mspID, msp.MSPRole_PEER)),
	}
}

func standardMeta(t testing.TB) map[string]*common.ConfigPolicy {
	return map[string]*common.ConfigPolicy{
		"Readers": metaPol(t, common.ImplicitMetaPolicy_ANY, "Readers"),
		"Writers": metaPol(t, common.ImplicitMetaPolicy_ANY, "Writers"),
		"Admins":  metaPol(t, common.ImplicitMetaPolicy_MAJORITY, "Admins"),
	}
}

func (f *fixture) config(t testing.TB) *common.Config {
	ordererOrg := &common.ConfigGroup{
		Values: mspValue(t, &msp.FabricMSPConfig{Name: "OrdererMSP", RootCerts: [][]byte{f.ordererCA.pem()}, FabricNodeOus: nodeOUs(f.ordererCA)}),
		Policies: map[string]*common.ConfigPolicy{
			"Readers": sigPol(t, outOf(1, signedBy(0)), role(t, "OrdererMSP", msp.MSPRole_MEMBER)),
			"Writers": sigPol(t, outOf(1, signedBy(0)), role(t, "OrdererMSP", msp.MSPRole_MEMBER)),
			"Admins":  sigPol(t, outOf(1, signedBy(0)), role(t, "OrdererMSP", msp.MSPRole_ADMIN)),
		},
	}
	orderer := &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{"OrdererOrg": ordererOrg}, Policies: standardMeta(t)}
	orderer.Policies["BlockValidation"] = metaPol(t, common.ImplicitMetaPolicy_ANY, "Writers")

	org1 := &common.ConfigGroup{
		Values: mspValue(t, &msp.FabricMSPConfig{
			Name: "Org1MSP", RootCerts: [][]byte{f.org1CA.pem(), f.org1CA2.pem()}, FabricNodeOus: nodeOUs(f.org1CA),
			Admins: [][]byte{pemCert(f.s["listed.org1"].cert)}, RevocationList: f.org1CRL,
		}),
		Policies: orgPolicies(t, "Org1MSP"),
	}
	for k, v := range f.org1 {
		org1.Policies[k] = v
	}
	org2 := &common.ConfigGroup{
		Values: mspValue(t, &msp.FabricMSPConfig{
			Name: "Org2MSP", RootCerts: [][]byte{f.org2Root.pem()}, IntermediateCerts: [][]byte{f.org2Inter.pem()},
			FabricNodeOus: nodeOUs(nil), RevocationList: f.org2CRL,
		}),
		Policies: orgPolicies(t, "Org2MSP"),
	}
	app := &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{"Org1MSP": org1, "Org2MSP": org2}, Policies: standardMeta(t)}
	app.Policies["Endorsement"] = metaPol(t, common.ImplicitMetaPolicy_MAJORITY, "Endorsement")
	app.Policies["LifecycleEndorsement"] = metaPol(t, common.ImplicitMetaPolicy_MAJORITY, "Endorsement")
	for k, v := range f.app {
		app.Policies[k] = v
	}
	root := &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{"Orderer": orderer, "Application": app}, Policies: standardMeta(t)}
	return &common.Config{Sequence: 7, ChannelGroup: root}
}

func (f *fixture) channel(t testing.TB) *Channel {
	c, err := FromConfig("iotledger", f.config(t))
	require.NoError(t, err)
	return c
}

// configBlock wraps a config in a block shaped as the orderer makes one.
func configBlock(t testing.TB, channelID string, cfg *common.Config, typ common.HeaderType) *common.Block {
	ce, err := proto.Marshal(&common.ConfigEnvelope{Config: cfg})
	require.NoError(t, err)
	chdr, err := proto.Marshal(&common.ChannelHeader{Type: int32(typ), ChannelId: channelID, Version: 1})
	require.NoError(t, err)
	shdr, err := proto.Marshal(&common.SignatureHeader{Nonce: []byte("nonce")})
	require.NoError(t, err)
	payload, err := proto.Marshal(&common.Payload{Header: &common.Header{ChannelHeader: chdr, SignatureHeader: shdr}, Data: ce})
	require.NoError(t, err)
	env, err := proto.Marshal(&common.Envelope{Payload: payload, Signature: []byte("sig")})
	require.NoError(t, err)
	h := sha256.Sum256(env)
	return &common.Block{
		Header:   &common.BlockHeader{Number: 3, DataHash: h[:], PreviousHash: make([]byte, 32)},
		Data:     &common.BlockData{Data: [][]byte{env}},
		Metadata: &common.BlockMetadata{Metadata: make([][]byte, 5)},
	}
}
