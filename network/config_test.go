package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestEditYAMLSetsNestedKeysAndKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "core.yaml")
	require.NoError(t, os.WriteFile(src, []byte(`
peer:
    # the listen address
    listenAddress: 0.0.0.0:7051
    gossip:
        bootstrap: 127.0.0.1:7051
        aliveTimeInterval: 5s
vm:
    endpoint: unix:///var/run/docker.sock
chaincode:
    externalBuilders: []
`), 0o644))
	dst := filepath.Join(dir, "out.yaml")
	require.NoError(t, editYAML(src, dst, []yamlSetting{
		{"peer.listenAddress", "127.0.0.1:1234"},
		{"peer.gossip.aliveTimeInterval", "1s"},
		{"vm.endpoint", ""},
		{"chaincode.externalBuilders", []externalBuilder{{Name: "ccaas", Path: "/b"}}},
		{"operations.listenAddress", "127.0.0.1:9"},
	}))

	var got struct {
		Peer struct {
			ListenAddress string `yaml:"listenAddress"`
			Gossip        struct {
				Bootstrap         string `yaml:"bootstrap"`
				AliveTimeInterval string `yaml:"aliveTimeInterval"`
			} `yaml:"gossip"`
		} `yaml:"peer"`
		VM struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"vm"`
		Chaincode struct {
			ExternalBuilders []externalBuilder `yaml:"externalBuilders"`
		} `yaml:"chaincode"`
		Operations struct {
			ListenAddress string `yaml:"listenAddress"`
		} `yaml:"operations"`
	}
	data, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &got))
	require.Equal(t, "127.0.0.1:1234", got.Peer.ListenAddress)
	require.Equal(t, "127.0.0.1:7051", got.Peer.Gossip.Bootstrap, "untouched keys keep their value")
	require.Equal(t, "1s", got.Peer.Gossip.AliveTimeInterval)
	require.Empty(t, got.VM.Endpoint)
	require.Equal(t, []externalBuilder{{Name: "ccaas", Path: "/b"}}, got.Chaincode.ExternalBuilders)
	require.Equal(t, "127.0.0.1:9", got.Operations.ListenAddress, "missing keys are created")
	require.Contains(t, string(data), "# the listen address", "comments survive")
}

// Every listen address must be explicit and on loopback: Fabric's defaults
// collide when several nodes share a host.
func TestNodeConfigsListenOnlyOnExplicitLoopbackAddresses(t *testing.T) {
	peer := peerConfig{ListenPort: 1, ChaincodePort: 2, OperationsPort: 3, Gossip: localGossip}.settings()
	orderer := ordererConfig{ListenPort: 1, ClusterPort: 2, AdminPort: 3, OperationsPort: 4}.settings()
	for _, s := range append(peer, orderer...) {
		low := strings.ToLower(s.Path)
		if strings.HasSuffix(low, "listenaddress") || strings.HasSuffix(low, "endpoint") && !strings.HasPrefix(low, "vm.") ||
			strings.HasSuffix(low, ".address") || strings.HasSuffix(low, "chaincodeaddress") {
			v, ok := s.Value.(string)
			require.True(t, ok, s.Path)
			require.True(t, strings.HasPrefix(v, "127.0.0.1"), "%s = %q", s.Path, v)
		}
	}
	paths := func(ss []yamlSetting) map[string]any {
		m := map[string]any{}
		for _, s := range ss {
			m[s.Path] = s.Value
		}
		return m
	}
	p := paths(peer)
	for _, k := range []string{"peer.listenAddress", "peer.chaincodeListenAddress", "operations.listenAddress", "peer.gossip.externalEndpoint"} {
		require.Contains(t, p, k)
	}
	require.Equal(t, "", p["vm.endpoint"], "no Docker daemon: vm.endpoint must be empty")
	o := paths(orderer)
	for _, k := range []string{"General.ListenAddress", "General.Cluster.ListenAddress", "Admin.ListenAddress", "Operations.ListenAddress"} {
		require.Contains(t, o, k)
	}
	require.Equal(t, true, o["Admin.TLS.ClientAuthRequired"])
	require.Equal(t, "none", o["General.BootstrapMethod"])
}

func TestChannelConfigHasRaftConsentersAndMajorityPolicies(t *testing.T) {
	cfg := buildConfigTx(channelConfigInput{
		OrdererMSPDir:    "/crypto/orderer/msp",
		OrdererEndpoints: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"},
		Consenters:       []ctxConsenter{{Host: "127.0.0.1", Port: 11}, {Host: "127.0.0.1", Port: 12}, {Host: "127.0.0.1", Port: 13}},
		PeerOrgs:         []ctxOrg{{Name: "Org1", ID: "Org1MSP", Policies: peerOrgPolicies("Org1MSP")}},
		BatchTimeout:     250 * time.Millisecond,
		MaxMessageCount:  500,
	})
	p := cfg.Profiles[channelProfile]
	require.Equal(t, "etcdraft", p.Orderer.OrdererType)
	require.Len(t, p.Orderer.EtcdRaft.Consenters, 3)
	require.Equal(t, "250ms", p.Orderer.BatchTimeout)
	require.Equal(t, 500, p.Orderer.BatchSize.MaxMessageCount)
	require.Equal(t, implicit("MAJORITY Endorsement"), p.Application.Policies["Endorsement"])
	require.Equal(t, implicit("MAJORITY Endorsement"), p.Application.Policies["LifecycleEndorsement"])
	require.Equal(t, sig("OR('Org1MSP.peer')"), p.Application.Organizations[0].Policies["Endorsement"])
	require.True(t, p.Application.Capabilities["V2_5"])

	data, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	require.Contains(t, string(data), "OrdererEndpoints:")
}

func TestPolicyArgs(t *testing.T) {
	orgs := []string{"Org1MSP", "Org2MSP"}
	tests := []struct {
		policy string
		want   []string
		err    bool
	}{
		{"", nil, false},
		{"MAJORITY", nil, false},
		{"majority", nil, false},
		{"ANY", []string{"--signature-policy", "OR('Org1MSP.peer','Org2MSP.peer')"}, false},
		{"ALL", []string{"--signature-policy", "AND('Org1MSP.peer','Org2MSP.peer')"}, false},
		{"OR('Org1MSP.member')", []string{"--signature-policy", "OR('Org1MSP.member')"}, false},
		{"/Channel/Application/Writers", []string{"--channel-config-policy", "/Channel/Application/Writers"}, false},
		{"AND('Org1MSP.peer'", nil, true},
		{"everyone", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			got, err := policyArgs(tt.policy, orgs)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCCaaSBuilderClaimsOnlyCCaaSPackagesAndReleasesTheAddress(t *testing.T) {
	dir, err := writeCCaaSBuilder(t.TempDir())
	require.NoError(t, err)
	run := func(script string, args ...string) error {
		return exec.Command(filepath.Join(dir, "bin", script), args...).Run()
	}
	src, meta, out, rel := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(meta, "metadata.json"), []byte(`{"type":"golang","label":"x"}`), 0o644))
	require.Error(t, run("detect", src, meta), "a golang package is not ours")
	require.NoError(t, os.WriteFile(filepath.Join(meta, "metadata.json"), []byte(`{"type": "ccaas","label":"x"}`), 0o644))
	require.NoError(t, run("detect", src, meta))

	require.NoError(t, os.WriteFile(filepath.Join(src, "connection.json"), []byte(`{"address":"127.0.0.1:1"}`), 0o644))
	require.NoError(t, run("build", src, meta, out))
	require.NoError(t, run("release", out, rel))
	got, err := os.ReadFile(filepath.Join(rel, "chaincode", "server", "connection.json"))
	require.NoError(t, err)
	require.JSONEq(t, `{"address":"127.0.0.1:1"}`, string(got))
}

func TestOptionsDefaultsAndRefusals(t *testing.T) {
	o, err := Options{StateDir: "rel"}.withDefaults()
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(o.StateDir))
	require.Equal(t, 3, o.Orderers)
	require.Equal(t, []string{"Org1", "Org2"}, o.Orgs)
	require.Equal(t, 250*time.Millisecond, o.BatchTimeout)
	require.Equal(t, "MAJORITY", o.EndorsementPolicy)

	for name, bad := range map[string]Options{
		"ten orderers":      {StateDir: "x", Orderers: 10},
		"negative orderers": {StateDir: "x", Orderers: -1},
		"tiny batch":        {StateDir: "x", BatchTimeout: time.Millisecond},
		"unknown policy":    {StateDir: "x", EndorsementPolicy: "whatever"},
		"org with a dot":    {StateDir: "x", Orgs: []string{"Org.1"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := bad.withDefaults()
			require.Error(t, err)
		})
	}
}

func TestIdentityNames(t *testing.T) {
	for _, ok := range []string{"operator", "hub-7", "field_hub.2"} {
		require.NoError(t, validIdentityName(ok), ok)
	}
	for _, bad := range []string{"", "admin", "..", "a/b", "a b", strings.Repeat("x", 65)} {
		require.Error(t, validIdentityName(bad), bad)
	}
}

func TestPinKeyChangesWhenAPinChanges(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "tools.go"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644))
	}
	k1, err := pinKey(dir)
	require.NoError(t, err)
	k1again, err := pinKey(dir)
	require.NoError(t, err)
	require.Equal(t, k1, k1again)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), []byte("other"), 0o644))
	k2, err := pinKey(dir)
	require.NoError(t, err)
	require.NotEqual(t, k1, k2)
}

func TestFindSourceRoot(t *testing.T) {
	root, err := FindSourceRoot("")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "network", "tools", "fabric", "go.mod"))
	_, err = FindSourceRoot(t.TempDir())
	require.ErrorContains(t, err, "does not hold")
}
