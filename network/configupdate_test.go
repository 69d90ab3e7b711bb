package network

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// testCA is an org's root CA, as cryptogen makes it (it may sign CRLs).
type testCA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca." + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, SubjectKeyId: []byte(name),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return testCA{cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
}

// crl is a PEM CRL of the CA listing serials, numbered number.
func (ca testCA) crl(t *testing.T, number int64, serials ...int64) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(24 * time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func mspValue(t *testing.T, mspID string, ca testCA, crls ...[]byte) *cb.ConfigValue {
	t.Helper()
	inner, err := proto.Marshal(&mb.FabricMSPConfig{Name: mspID, RootCerts: [][]byte{ca.certPEM}, RevocationList: crls,
		FabricNodeOus: &mb.FabricNodeOUs{Enable: true, ClientOuIdentifier: &mb.FabricOUIdentifier{OrganizationalUnitIdentifier: "client"}}})
	require.NoError(t, err)
	outer, err := proto.Marshal(&mb.MSPConfig{Type: 0, Config: inner})
	require.NoError(t, err)
	return &cb.ConfigValue{Version: 0, ModPolicy: "Admins", Value: outer}
}

func orgGroup(value *cb.ConfigValue) *cb.ConfigGroup {
	return &cb.ConfigGroup{
		ModPolicy: "Admins",
		Values:    map[string]*cb.ConfigValue{"MSP": value},
		Policies:  map[string]*cb.ConfigPolicy{"Admins": {ModPolicy: "Admins", Policy: &cb.Policy{Type: 1, Value: []byte("admins")}}},
	}
}

// testChannelConfig is a channel configuration with an orderer org and two
// application orgs; org1CRLs are already in Org1's MSP.
func testChannelConfig(t *testing.T, org1, org2, orderer testCA, org1CRLs ...[]byte) *cb.Config {
	t.Helper()
	return &cb.Config{Sequence: 3, ChannelGroup: &cb.ConfigGroup{
		Version: 1, ModPolicy: "Admins",
		Groups: map[string]*cb.ConfigGroup{
			"Application": {Version: 1, ModPolicy: "Admins", Groups: map[string]*cb.ConfigGroup{
				"Org1": orgGroup(mspValue(t, "Org1MSP", org1, org1CRLs...)),
				"Org2": orgGroup(mspValue(t, "Org2MSP", org2)),
			}},
			"Orderer": {ModPolicy: "Admins", Groups: map[string]*cb.ConfigGroup{
				"OrdererOrg": orgGroup(mspValue(t, "OrdererMSP", orderer)),
			}, Values: map[string]*cb.ConfigValue{"BatchSize": {ModPolicy: "Admins", Value: []byte{8, 10}}}},
		},
		Values: map[string]*cb.ConfigValue{"HashingAlgorithm": {ModPolicy: "Admins", Value: []byte("SHA256")}},
	}}
}

func fabricMSPOf(t *testing.T, v *cb.ConfigValue) *mb.FabricMSPConfig {
	t.Helper()
	m := &mb.MSPConfig{}
	require.NoError(t, proto.Unmarshal(v.Value, m))
	f := &mb.FabricMSPConfig{}
	require.NoError(t, proto.Unmarshal(m.Config, f))
	return f
}

func TestRevocationUpdateWritesTheCRLIntoTheOrgsMSPAndNothingElse(t *testing.T) {
	org1, org2, orderer := newTestCA(t, "org1"), newTestCA(t, "org2"), newTestCA(t, "orderer")
	otherIssuer := newTestCA(t, "org1-intermediate").crl(t, 1, 7)
	oldOrg1 := org1.crl(t, 1, 41)
	newOrg1 := org1.crl(t, 2, 41, 42)
	for _, tc := range []struct {
		name     string
		existing [][]byte // CRLs already in Org1's MSP
		crl      []byte
		want     [][]byte // Org1's revocation list after the update
	}{
		{"first CRL", nil, newOrg1, [][]byte{newOrg1}},
		{"a newer CRL of the same CA replaces the older one", [][]byte{oldOrg1}, newOrg1, [][]byte{newOrg1}},
		{"a CRL of another issuer is kept", [][]byte{otherIssuer, oldOrg1}, newOrg1, [][]byte{otherIssuer, newOrg1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			current := testChannelConfig(t, org1, org2, orderer, tc.existing...)
			before := proto.Clone(current).(*cb.Config)
			raw, err := computeChannelUpdate("iotledger", current, SetMSPRevocationList("Org1MSP", tc.crl))
			require.NoError(t, err)
			require.True(t, proto.Equal(before, current), "the current configuration was modified")

			update := &cb.ConfigUpdate{}
			require.NoError(t, proto.Unmarshal(raw, update))
			require.Equal(t, "iotledger", update.ChannelId)

			// The write set holds exactly the path to Org1's MSP value,
			// at the next version; everything on the way is read at
			// the version the channel has.
			ws := update.WriteSet
			require.Empty(t, ws.Values)
			require.Equal(t, []string{"Application"}, keys(ws.Groups))
			app := ws.Groups["Application"]
			require.Equal(t, uint64(1), app.Version)
			require.Equal(t, []string{"Org1"}, keys(app.Groups))
			o1 := app.Groups["Org1"]
			require.Equal(t, uint64(0), o1.Version, "the org group itself is not modified")
			require.Empty(t, o1.Policies)
			require.Equal(t, []string{"MSP"}, keys(o1.Values))
			require.Equal(t, uint64(1), o1.Values["MSP"].Version)
			require.Equal(t, "Admins", o1.Values["MSP"].ModPolicy, "Org1's own Admins must sign")

			got := fabricMSPOf(t, o1.Values["MSP"])
			require.Equal(t, tc.want, got.RevocationList)
			want := fabricMSPOf(t, before.ChannelGroup.Groups["Application"].Groups["Org1"].Values["MSP"])
			want.RevocationList = tc.want
			require.True(t, proto.Equal(want, got), "only the revocation list of Org1's MSP changes")

			rs := update.ReadSet
			require.Equal(t, uint64(1), rs.Groups["Application"].Version)
			require.Equal(t, uint64(0), rs.Groups["Application"].Groups["Org1"].Version)
			require.NotContains(t, rs.Groups["Application"].Groups["Org1"].Values, "MSP", "a written value is not in the read set")
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRevocationUpdateRefusesWhatWouldNotRevoke(t *testing.T) {
	org1, org2, orderer := newTestCA(t, "org1"), newTestCA(t, "org2"), newTestCA(t, "orderer")
	inPlace := org1.crl(t, 2, 42)
	for _, tc := range []struct {
		name  string
		msp   string
		crl   []byte
		isErr error
		msg   string
	}{
		{"a CRL of another org's CA (Fabric would ignore it)", "Org1MSP", org2.crl(t, 1, 42), nil, "not signed by a root or intermediate CA of MSP Org1MSP"},
		{"an org the channel does not have", "Org9MSP", org1.crl(t, 3, 42), nil, `no application org with MSP ID "Org9MSP"`},
		{"the orderer org is not an application org", "OrdererMSP", orderer.crl(t, 1, 42), nil, `no application org with MSP ID "OrdererMSP"`},
		{"not a CRL", "Org1MSP", org1.certPEM, nil, "not a PEM-encoded X509 CRL"},
		{"the CRL already in place", "Org1MSP", inPlace, ErrNoConfigChange, ""},
		{"a newer CRL of the same CA revoking nothing more", "Org1MSP", org1.crl(t, 3, 42), ErrNoConfigChange, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			current := testChannelConfig(t, org1, org2, orderer, inPlace)
			_, err := computeChannelUpdate("iotledger", current, SetMSPRevocationList(tc.msp, tc.crl))
			require.Error(t, err)
			if tc.isErr != nil {
				require.ErrorIs(t, err, tc.isErr)
			}
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestConfigFromBlockReadsTheConfigOfAConfigBlockOnly(t *testing.T) {
	cfg := testChannelConfig(t, newTestCA(t, "org1"), newTestCA(t, "org2"), newTestCA(t, "orderer"))
	block := func(t *testing.T, typ cb.HeaderType) []byte {
		t.Helper()
		ch, err := proto.Marshal(&cb.ChannelHeader{Type: int32(typ), ChannelId: "iotledger"})
		require.NoError(t, err)
		data, err := proto.Marshal(&cb.ConfigEnvelope{Config: cfg})
		require.NoError(t, err)
		payload, err := proto.Marshal(&cb.Payload{Header: &cb.Header{ChannelHeader: ch}, Data: data})
		require.NoError(t, err)
		env, err := proto.Marshal(&cb.Envelope{Payload: payload})
		require.NoError(t, err)
		b, err := proto.Marshal(&cb.Block{Header: &cb.BlockHeader{Number: 9}, Data: &cb.BlockData{Data: [][]byte{env}}})
		require.NoError(t, err)
		return b
	}
	got, num, err := configFromBlock(block(t, cb.HeaderType_CONFIG))
	require.NoError(t, err)
	require.Equal(t, uint64(9), num)
	require.True(t, proto.Equal(cfg, got))

	_, _, err = configFromBlock(block(t, cb.HeaderType_ENDORSER_TRANSACTION))
	require.ErrorContains(t, err, "not CONFIG")
	_, _, err = configFromBlock([]byte("not a block"))
	require.Error(t, err)
}

func TestChannelUpdateNeedsAChangeAndASigner(t *testing.T) {
	n := &Network{state: &State{}}
	for _, u := range []ChannelUpdate{
		{Description: "no change", Signers: []string{"Org1"}},
		{Description: "no signer", Change: func(*cb.Config) error { return nil }},
	} {
		_, err := n.updateChannel(t.Context(), u)
		require.ErrorContains(t, err, "a change and at least one signing org are required", u.Description)
	}
}
