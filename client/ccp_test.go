package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// examples is the worked example of docs/network.md: common connection
// profiles in the shapes fabric-samples' test-network writes.
const examples = "../docs/examples/ccp/org1.example.com"

func examplePEM(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, name))
	require.NoError(t, err)
	return strings.TrimSpace(string(b)) + "\n"
}

func TestTestNetworkCCPMapsOntoTheProfile(t *testing.T) {
	dir, err := filepath.Abs(examples)
	require.NoError(t, err)
	peerPEM, caPEM := examplePEM(t, "tlsca/tlsca.org1.example.com-cert.pem"), examplePEM(t, "ca/ca.org1.example.com-cert.pem")
	overlay := filepath.Join(dir, "iotledger-overlay.json")
	want := func(peer PeerEndpoint, ca CAEndpoint) *Profile {
		return &Profile{
			Network: "test-network-org1", Channel: "mychannel", Chaincode: "iotledger", Org: "Org1", MSPID: "Org1MSP",
			Peer: peer, CA: &ca, format: FormatCCP,
			Identities: map[string]IdentityFiles{
				"operator": {Cert: filepath.Join(dir, "users/operator@org1.example.com/msp/signcerts/cert.pem"),
					Key: filepath.Join(dir, "users/operator@org1.example.com/msp/keystore/key.pem")},
				"hub": {Cert: filepath.Join(dir, "users/hub-1@org1.example.com/msp/signcerts/cert.pem"),
					Key: filepath.Join(dir, "users/hub-1@org1.example.com/msp/keystore/key.pem")},
			},
		}
	}
	inline := want(
		PeerEndpoint{Address: "localhost:7051", ServerName: "peer0.org1.example.com", TLSCACertPEM: peerPEM},
		CAEndpoint{URL: "https://localhost:7054", TLSCACertPEM: caPEM})
	files := want(
		PeerEndpoint{Address: "localhost:7051", ServerName: "peer0.org1.example.com", TLSCACert: filepath.Join(dir, "tlsca/tlsca.org1.example.com-cert.pem")},
		CAEndpoint{URL: "https://localhost:7054", TLSCACert: filepath.Join(dir, "ca/ca.org1.example.com-cert.pem")})
	for _, tc := range []struct {
		file string
		want *Profile
	}{
		{"connection-org1.json", inline},      // JSON, PEM inline (peer: a string, CA: a list), no channels section
		{"connection-org1.yaml", inline},      // YAML, PEM as literal blocks, channels and orderers sections
		{"connection-org1-paths.yaml", files}, // YAML, PEM as files relative to the profile
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := LoadProfileWithOverlay(filepath.Join(dir, tc.file), overlay)
			require.NoError(t, err)
			require.Equal(t, tc.want, p)
			_, err = p.Peer.TLSRoots()
			require.NoError(t, err)
		})
	}
}

func TestCCPWithoutOverlayNamesWhatItLacks(t *testing.T) {
	for _, tc := range []struct {
		file    string
		missing []string
	}{
		{"connection-org1.json", []string{"channel", "chaincode", "identities"}},
		{"connection-org1.yaml", []string{"chaincode", "identities"}}, // its channels section names the channel
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := LoadProfile(filepath.Join(examples, tc.file))
			var ie *IncompleteProfileError
			require.ErrorAs(t, err, &ie)
			var fields []string
			for _, m := range ie.Missing {
				fields = append(fields, m.Field)
			}
			require.Equal(t, tc.missing, fields)
			require.Contains(t, err.Error(), filepath.Join(examples, tc.file))
			require.Contains(t, err.Error(), "overlay")
		})
	}
}

// ccpVariant is the test-network CCP with one change.
func ccpVariant(t *testing.T, change func(m map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, "connection-org1.json"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	change(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		m = m[k].(map[string]any)
	}
	return m
}

const peer0 = "peer0.org1.example.com"

func TestMalformedCCPsAreRefusedNamingTheField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		field  string
	}{
		{"keys of both formats", func(m map[string]any) { m["chaincode"] = "iotledger" }, "chaincode"},
		{"a key of neither format", func(m map[string]any) { m["peerz"] = map[string]any{} }, "peerz"},
		{"plain-text peer", func(m map[string]any) { obj(m, "peers", peer0)["url"] = "grpc://localhost:7051" }, "peers." + peer0 + ".url"},
		{"peer URL without port", func(m map[string]any) { obj(m, "peers", peer0)["url"] = "grpcs://localhost" }, "peers." + peer0 + ".url"},
		{"peer URL with a path", func(m map[string]any) { obj(m, "peers", peer0)["url"] = "grpcs://localhost:7051/x" }, "peers." + peer0 + ".url"},
		{"server name overrides that disagree", func(m map[string]any) {
			obj(m, "peers", peer0, "grpcOptions")["hostnameOverride"] = "peer1.org1.example.com"
		}, "peers." + peer0 + ".grpcOptions.hostnameOverride"},
		{"server name override not a string", func(m map[string]any) {
			obj(m, "peers", peer0, "grpcOptions")["ssl-target-name-override"] = 7
		}, "peers." + peer0 + ".grpcOptions.ssl-target-name-override"},
		{"pem and path", func(m map[string]any) { obj(m, "peers", peer0, "tlsCACerts")["path"] = "tls.pem" }, "peers." + peer0 + ".tlsCACerts"},
		{"no TLS CA", func(m map[string]any) { obj(m, "peers", peer0)["tlsCACerts"] = map[string]any{} }, "peers." + peer0 + ".tlsCACerts"},
		{"pem that is no certificate", func(m map[string]any) {
			obj(m, "peers", peer0, "tlsCACerts")["pem"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		}, "peers." + peer0 + ".tlsCACerts.pem"},
		{"pem that is a key", func(m map[string]any) {
			obj(m, "peers", peer0, "tlsCACerts")["pem"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}, "peers." + peer0 + ".tlsCACerts.pem"},
		{"pem neither string nor list", func(m map[string]any) { obj(m, "peers", peer0, "tlsCACerts")["pem"] = 1 }, "peers." + peer0 + ".tlsCACerts.pem"},
		{"client organisation not listed", func(m map[string]any) { obj(m, "client")["organization"] = "Org9" }, "client.organization"},
		{"no client organisation among several", func(m map[string]any) {
			delete(obj(m, "client"), "organization")
			obj(m, "organizations")["Org2"] = map[string]any{"mspid": "Org2MSP"}
		}, "client.organization"},
		{"no MSP ID", func(m map[string]any) { delete(obj(m, "organizations", "Org1"), "mspid") }, "organizations.Org1.mspid"},
		{"no peer", func(m map[string]any) { obj(m, "organizations", "Org1")["peers"] = []any{} }, "organizations.Org1.peers"},
		{"a peer that is not defined", func(m map[string]any) { obj(m, "organizations", "Org1")["peers"] = []any{"peer9"} }, "organizations.Org1.peers"},
		{"a CA that is not defined", func(m map[string]any) { obj(m, "organizations", "Org1")["certificateAuthorities"] = []any{"ca9"} }, "organizations.Org1.certificateAuthorities"},
		{"CA URL without scheme", func(m map[string]any) {
			obj(m, "certificateAuthorities", "ca.org1.example.com")["url"] = "localhost:7054"
		}, "certificateAuthorities.ca.org1.example.com.url"},
		{"mutual TLS client certificate", func(m map[string]any) {
			obj(m, "client")["tlsCerts"] = map[string]any{"client": map[string]any{"cert": map[string]any{"path": "c.pem"}}}
		}, "client.tlsCerts.client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCCP(ccpVariant(t, tc.change))
			var pe *ProfileError
			require.ErrorAs(t, err, &pe, "%v", err)
			require.Equal(t, tc.field, pe.Field, "%v", err)
		})
	}
}

func TestCCPsThatDoNotDecodeStrictlyAreRefused(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join(examples, "connection-org1.json"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, data, want string
	}{
		{"unknown key in a peer", strings.Replace(string(valid), `"url"`, `"urll"`, 1), `unknown field "urll"`},
		{"case variant of a key", strings.Replace(string(valid), `"mspid"`, `"mspId"`, 1), `unknown field "mspId"`},
		{"duplicate JSON key", strings.Replace(string(valid), `"version": "1.0.0",`, `"version": "1.0.0", "version": "2",`, 1), `duplicate key "version"`},
		{"duplicate YAML key", "name: a\nname: b\n", `"name" already defined`},
		{"two YAML documents", "name: a\n---\nname: b\n", "more than one document"},
		{"a second YAML document that does not parse", "name: a\n---\n: : [\n", "more than one document"},
		{"YAML key that is not a string", "name: a\npeers:\n  1: {}\n", "not a string"},
		{"not an object", `["name"]`, "decode connection profile"},
		{"empty", "", "empty"},
		{"empty object", "{}", "(top level)"},
		{"too large", "name: " + strings.Repeat("a", MaxProfileBytes), "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCCP([]byte(tc.data))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestOverlayAddsButNeverOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
		return path
	}
	ccp := write("ccp.json", string(ccpVariant(t, func(m map[string]any) {
		m["channels"] = map[string]any{"mychannel": map[string]any{}, "other": map[string]any{}}
	})))
	ids := `"identities":{"operator":{"cert":"op.pem","key":"op.key"}}`
	for _, tc := range []struct {
		name, overlay, field string
	}{
		{"another MSP ID", `{"chaincode":"iotledger","channel":"mychannel","mspId":"Org2MSP",` + ids + `}`, "mspId"},
		{"another peer", `{"chaincode":"iotledger","channel":"mychannel","peer":{"address":"peer1:7051"},` + ids + `}`, "peer.address"},
		{"a channel the CCP does not list", `{"chaincode":"iotledger","channel":"third",` + ids + `}`, "channel"},
		{"a second TLS root for the peer", `{"chaincode":"iotledger","channel":"mychannel","peer":{"tlsCACert":"/etc/tls.pem"},` + ids + `}`, "peer.tlsCACertPEM"},
		{"an identity without key", `{"chaincode":"iotledger","channel":"mychannel","identities":{"operator":{"cert":"op.pem"}}}`, "identities.operator.key"},
		{"a CCP as overlay", string(ccpVariant(t, func(map[string]any) {})), "(top level)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadProfileWithOverlay(ccp, write("overlay.json", tc.overlay))
			var pe *ProfileError
			require.ErrorAs(t, err, &pe, "%v", err)
			require.Equal(t, tc.field, pe.Field, "%v", err)
		})
	}
	t.Run("the channel among several", func(t *testing.T) {
		p, err := LoadProfileWithOverlay(ccp, write("overlay.yaml", "chaincode: iotledger\nchannel: other\nidentities:\n  operator: {cert: op.pem, key: op.key}\n"))
		require.NoError(t, err)
		require.Equal(t, "other", p.Channel)
		require.Equal(t, filepath.Join(dir, "op.pem"), p.Identities["operator"].Cert, "overlay paths resolve against the overlay's directory")
	})
	t.Run("the same value twice", func(t *testing.T) {
		p, err := LoadProfileWithOverlay(ccp, write("overlay.json", `{"chaincode":"iotledger","channel":"other","mspId":"Org1MSP",`+ids+`}`))
		require.NoError(t, err)
		require.Equal(t, "Org1MSP", p.MSPID)
	})
}

func TestIotledgerProfileInYAMLLoads(t *testing.T) {
	p, err := ParseProfile([]byte("channel: c\nchaincode: cc\nmspId: M\npeer: {address: 'h:1', tlsCACert: ca.pem}\nidentities:\n  hub: {cert: c.pem, key: k.pem}\n"))
	require.NoError(t, err)
	require.Equal(t, "h:1", p.Peer.Address)
}

func TestExportedCCPLoadsBackAsTheSameEndpoints(t *testing.T) {
	dir := t.TempDir()
	peerPEM, caPEM := examplePEM(t, "tlsca/tlsca.org1.example.com-cert.pem"), examplePEM(t, "ca/ca.org1.example.com-cert.pem")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tlsca.pem"), []byte(peerPEM), 0o600))
	src := &Profile{
		Network: "iotledger", Channel: "iotledger", Chaincode: "iotledger", Org: "Org1", MSPID: "Org1MSP",
		Peer:       PeerEndpoint{Address: "127.0.0.1:7051", ServerName: "peer0.org1.iotledger.local", TLSCACert: filepath.Join(dir, "tlsca.pem")},
		CA:         &CAEndpoint{URL: "https://127.0.0.1:7054", TLSCACertPEM: caPEM},
		Identities: map[string]IdentityFiles{"hub": {Cert: "c.pem", Key: "k.pem"}},
	}
	c, err := src.CCP()
	require.NoError(t, err)
	overlay := &Profile{Chaincode: "iotledger", Identities: src.Identities}
	for _, enc := range []func() ([]byte, error){c.EncodeJSON, c.EncodeYAML} {
		data, err := enc()
		require.NoError(t, err)
		f, err := DetectProfileFormat(data)
		require.NoError(t, err)
		require.Equal(t, FormatCCP, f)
		pp, err := parseProfileFile(data)
		require.NoError(t, err, "%s", data)
		back, err := pp.complete(overlay)
		require.NoError(t, err, "%s", data)
		want := *src
		want.Peer.TLSCACert, want.Peer.TLSCACertPEM = "", peerPEM
		want.format = FormatCCP
		require.Equal(t, &want, back, "%s", data)
	}
}

func FuzzParseConnectionProfile(f *testing.F) {
	for _, name := range []string{"connection-org1.json", "connection-org1.yaml", "connection-org1-paths.yaml", "iotledger-overlay.json"} {
		b, err := os.ReadFile(filepath.Join(examples, name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(validProfileJSON))
	f.Add([]byte("name: a\npeers: {p: {url: 'grpcs://h:1', tlsCACerts: {path: x}}}\norganizations: {O: {mspid: M, peers: [p]}}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	overlay := &Profile{Channel: "c", Chaincode: "cc", Identities: map[string]IdentityFiles{"hub": {Cert: "c", Key: "k"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		pp, err := parseProfileFile(data)
		if err != nil {
			return
		}
		if pp.format == FormatCCP {
			// What a CCP maps to is a usable endpoint or nothing.
			require.True(t, validHostPort(pp.p.Peer.Address), "peer %q", pp.p.Peer.Address)
			require.NotEmpty(t, strings.TrimSpace(pp.p.Peer.ServerName))
			require.NotEqual(t, pp.p.Peer.TLSCACert == "", pp.p.Peer.TLSCACertPEM == "", "exactly one TLS root")
			if pp.p.Peer.TLSCACertPEM != "" {
				_, err := pp.p.Peer.TLSRoots()
				require.NoError(t, err)
			}
		}
		p, err := pp.complete(overlay)
		if err != nil {
			return
		}
		require.NoError(t, p.Validate())
	})
}

func TestOverlayCompletesAnIotledgerProfileToo(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "connection.json")
	require.NoError(t, os.WriteFile(base, []byte(validProfileJSON), 0o600))
	sub := filepath.Join(dir, "mine")
	require.NoError(t, os.MkdirAll(sub, 0o700))
	overlay := filepath.Join(sub, "overlay.yaml")
	require.NoError(t, os.WriteFile(overlay, []byte("identities:\n  operator: {cert: op.pem, key: op.key}\n"), 0o600))

	p, err := LoadProfileWithOverlay(base, overlay)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "hub", "operator"}, p.IdentityNames())
	require.Equal(t, FormatIotledger, p.Format())
	require.Equal(t, filepath.Join(sub, "op.pem"), p.Identities["operator"].Cert)
	require.Equal(t, filepath.Join(dir, "admin/cert.pem"), p.Identities["admin"].Cert)

	require.NoError(t, os.WriteFile(overlay, []byte("identities:\n  hub: {cert: other.pem, key: other.key}\n"), 0o600))
	_, err = LoadProfileWithOverlay(base, overlay)
	var pe *ProfileError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "identities.hub", pe.Field)
}
