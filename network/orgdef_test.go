package network

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// cityDefinition is what `configtxgen -printOrg City` printed for a City
// org made by cryptogen (testdata/city-definition.json).
func cityDefinition(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/city-definition.json")
	require.NoError(t, err)
	return b
}

// editDefinition decodes the definition, lets edit change it, and encodes it.
func editDefinition(t *testing.T, edit func(d map[string]any)) []byte {
	t.Helper()
	var d map[string]any
	require.NoError(t, json.Unmarshal(cityDefinition(t), &d))
	edit(d)
	b, err := json.Marshal(d)
	require.NoError(t, err)
	return b
}

func at(d map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		d = d[k].(map[string]any)
	}
	return d
}

func mspConfig(d map[string]any) map[string]any {
	return at(d, "values", "MSP", "value", "config")
}

func TestParseOrgDefinitionReadsWhatConfigtxgenPrints(t *testing.T) {
	def, err := ParseOrgDefinition(cityDefinition(t))
	require.NoError(t, err)
	require.Equal(t, "City", def.Name)
	require.Equal(t, "CityMSP", def.MSPID)
	require.Empty(t, def.AnchorPeers, "configtxgen -printOrg leaves anchor peers out")
}

func TestParseOrgDefinitionRefusesWhatIsNotACompleteOrgDefinition(t *testing.T) {
	valid := string(cityDefinition(t))
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "empty"},
		{"not JSON", []byte("MSP: CityMSP"), "not JSON"},
		{"an array", []byte("[" + valid + "]"), "not a JSON object"},
		{"data after the object", []byte(valid + "{}"), "data after the JSON object"},
		{"a repeated key", []byte(strings.Replace(valid, `"mod_policy": "Admins",`, `"mod_policy": "Admins", "mod_policy": "Readers",`, 1)), `"mod_policy" appears twice`},
		{"too large", bytes.Repeat([]byte(" "), MaxOrgDefinitionBytes+1), "more than"},
		{"an unknown field", editDefinition(t, func(d map[string]any) { d["owner"] = "Org1MSP" }), "not the JSON of an application org group"},
		{"a sub-group", editDefinition(t, func(d map[string]any) { d["groups"] = map[string]any{"Extra": map[string]any{}} }), "sub-groups"},
		{"another mod policy", editDefinition(t, func(d map[string]any) { d["mod_policy"] = "Readers" }), `mod_policy "Readers"`},
		{"no MSP", editDefinition(t, func(d map[string]any) { delete(at(d, "values"), "MSP") }), "no MSP value"},
		{"no root CA", editDefinition(t, func(d map[string]any) { mspConfig(d)["root_certs"] = []any{} }), "no root CA certificate"},
		{"no TLS root CA", editDefinition(t, func(d map[string]any) { mspConfig(d)["tls_root_certs"] = []any{} }), "no TLS root CA certificate"},
		{"a root CA that is no certificate", editDefinition(t, func(d map[string]any) {
			mspConfig(d)["root_certs"] = []any{"bm90IGEgY2VydGlmaWNhdGU="} // base64 of "not a certificate"
		}), "not one PEM-encoded certificate"},
		{"NodeOUs off", editDefinition(t, func(d map[string]any) { at(mspConfig(d), "fabric_node_ous")["enable"] = false }), "NodeOUs must be enabled"},
		{"an MSP ID without MSP", editDefinition(t, func(d map[string]any) { mspConfig(d)["name"] = "city" }), `MSP ID "city"`},
		{"no Endorsement policy", editDefinition(t, func(d map[string]any) { delete(at(d, "policies"), "Endorsement") }), "no Endorsement policy"},
		{"a policy naming another MSP", editDefinition(t, func(d map[string]any) {
			ids := at(d, "policies", "Writers", "policy", "value")["identities"].([]any)
			ids[0].(map[string]any)["principal"].(map[string]any)["msp_identifier"] = "HospitalMSP"
		}), `policy Writers names MSP "HospitalMSP"`},
		{"an implicit policy", editDefinition(t, func(d map[string]any) {
			at(d, "policies", "Admins")["policy"] = map[string]any{"type": 3, "value": map[string]any{"rule": "ANY", "sub_policy": "Admins"}}
		}), "policy Admins: want a signature policy"},
		{"an anchor peer without port", editDefinition(t, func(d map[string]any) {
			at(d, "values")["AnchorPeers"] = map[string]any{"mod_policy": "Admins", "value": map[string]any{"anchor_peers": []any{map[string]any{"host": "127.0.0.1", "port": 0}}}}
		}), "anchor peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOrgDefinition(tc.data)
			require.ErrorIs(t, err, ErrMalformedOrgDefinition)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestParseOrgDefinitionKeepsAnchorPeers(t *testing.T) {
	data := editDefinition(t, func(d map[string]any) {
		at(d, "values")["AnchorPeers"] = map[string]any{"mod_policy": "Admins", "value": map[string]any{"anchor_peers": []any{map[string]any{"host": "peer0.city.example", "port": 7051}}}}
	})
	def, err := ParseOrgDefinition(data)
	require.NoError(t, err)
	require.Equal(t, []string{"peer0.city.example:7051"}, def.AnchorPeers)
}

// twoOrgConfig is a channel configuration with Hospital and Logistics.
func twoOrgConfig(t *testing.T) *cb.Config {
	t.Helper()
	cfg := testChannelConfig(t, newTestCA(t, "Org1"), newTestCA(t, "Org2"), newTestCA(t, "Orderer"))
	return cfg
}

func TestAddApplicationOrgAddsTheDefinitionAsItsOwnGroupOnly(t *testing.T) {
	def, err := ParseOrgDefinition(cityDefinition(t))
	require.NoError(t, err)
	cfg := twoOrgConfig(t)
	before := proto.Clone(cfg).(*cb.Config)
	require.NoError(t, addApplicationOrg(def)(cfg))

	app := cfg.ChannelGroup.Groups["Application"]
	require.Contains(t, app.Groups, "City")
	require.True(t, proto.Equal(def.group, app.Groups["City"]))
	delete(app.Groups, "City")
	require.True(t, proto.Equal(before, cfg), "nothing but the new org's group changed")
}

func TestAddApplicationOrgRefusesAnOrgTheChannelHas(t *testing.T) {
	cfg := twoOrgConfig(t)
	org1 := cfg.ChannelGroup.Groups["Application"].Groups
	var existing string
	for name := range org1 {
		existing = name
	}
	mspID, err := groupMSPID(org1[existing])
	require.NoError(t, err)

	sameMSP := editDefinition(t, func(d map[string]any) {})
	def, err := ParseOrgDefinition(sameMSP)
	require.NoError(t, err)
	def.MSPID = mspID // as if the newcomer claimed a member's MSP ID
	err = addApplicationOrg(def)(proto.Clone(cfg).(*cb.Config))
	require.ErrorIs(t, err, ErrOrgExists)

	def, err = ParseOrgDefinition(cityDefinition(t))
	require.NoError(t, err)
	require.NoError(t, addApplicationOrg(def)(cfg))
	require.ErrorIs(t, addApplicationOrg(def)(cfg), ErrOrgExists, "the same org twice")
}

func TestSetAnchorPeersSetsTheOrgsOwnValue(t *testing.T) {
	def, err := ParseOrgDefinition(cityDefinition(t))
	require.NoError(t, err)
	cfg := twoOrgConfig(t)
	require.NoError(t, addApplicationOrg(def)(cfg))
	peers := []*pb.AnchorPeer{{Host: "127.0.0.1", Port: 17051}}
	require.NoError(t, setAnchorPeers("CityMSP", peers)(cfg))
	v := cfg.ChannelGroup.Groups["Application"].Groups["City"].Values["AnchorPeers"]
	require.NotNil(t, v)
	require.Equal(t, "Admins", v.ModPolicy)
	got := &pb.AnchorPeers{}
	require.NoError(t, proto.Unmarshal(v.Value, got))
	require.Equal(t, "127.0.0.1", got.AnchorPeers[0].Host)
	require.EqualValues(t, 17051, got.AnchorPeers[0].Port)

	require.ErrorIs(t, setAnchorPeers("NoSuchMSP", peers)(cfg), ErrNotAdded)
}

func FuzzParseOrgDefinition(f *testing.F) {
	f.Add(cityDefinition(f))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"groups":{},"mod_policy":"Admins","policies":{},"values":{},"version":"0"}`))
	f.Add([]byte(`{"a":{"a":{"a":[[[[]]]]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := ParseOrgDefinition(data)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedOrgDefinition)
			return
		}
		require.Equal(t, def.Name+"MSP", def.MSPID)
		require.NoError(t, ValidateOrgName(def.Name))
		require.NotNil(t, def.group.Values["MSP"])
	})
}
