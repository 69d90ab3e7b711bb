package network

import (
	"path/filepath"
	"time"
)

// peerConfig holds everything a peer's core.yaml gets from us; the rest is
// Fabric's sampleconfig.
type peerConfig struct {
	ID             string
	MSPID          string
	MSPDir         string
	TLSDir         string // cryptogen's tls dir: server.crt, server.key, ca.crt
	DataDir        string
	IP             string // listen address: 127.0.0.1 or the namespace's
	ListenPort     int
	ChaincodePort  int
	OperationsPort int
	BuilderDir     string // external builder for chaincode as a service
	Gossip         gossipTimings
}

// gossipTimings are shortened on a local network: with Fabric's defaults
// (25 s reconnect / alive expiration) a peer may not learn of the other
// org's peer for ~30 s after bring-up, and MAJORITY submits fail meanwhile.
type gossipTimings struct {
	AliveTimeInterval         time.Duration
	AliveExpirationTimeout    time.Duration
	ReconnectInterval         time.Duration
	MembershipTrackerInterval time.Duration
}

var localGossip = gossipTimings{
	AliveTimeInterval:         time.Second,
	AliveExpirationTimeout:    5 * time.Second,
	ReconnectInterval:         time.Second,
	MembershipTrackerInterval: time.Second,
}

// externalBuilder is one entry of core.yaml's chaincode.externalBuilders.
type externalBuilder struct {
	Name                 string   `yaml:"name"`
	Path                 string   `yaml:"path"`
	PropagateEnvironment []string `yaml:"propagateEnvironment,omitempty"`
}

func (c peerConfig) settings() []yamlSetting {
	self := hostPort(listenIP(c.IP), c.ListenPort)
	return []yamlSetting{
		{"peer.id", c.ID},
		{"peer.networkId", "iotledger"},
		{"peer.listenAddress", self},
		{"peer.address", self},
		{"peer.addressAutoDetect", false},
		{"peer.chaincodeListenAddress", hostPort(listenIP(c.IP), c.ChaincodePort)},
		{"peer.chaincodeAddress", hostPort(listenIP(c.IP), c.ChaincodePort)},
		{"peer.mspConfigPath", c.MSPDir},
		{"peer.localMspId", c.MSPID},
		{"peer.fileSystemPath", c.DataDir},
		{"peer.profile.enabled", false},
		{"peer.tls.enabled", true},
		{"peer.tls.clientAuthRequired", false},
		{"peer.tls.cert.file", filepath.Join(c.TLSDir, "server.crt")},
		{"peer.tls.key.file", filepath.Join(c.TLSDir, "server.key")},
		{"peer.tls.rootcert.file", filepath.Join(c.TLSDir, "ca.crt")},
		// Gossip: the org's own peer is its bootstrap; the external endpoint
		// is what other orgs learn (without it discovery never returns them).
		{"peer.gossip.bootstrap", self},
		{"peer.gossip.endpoint", self},
		{"peer.gossip.externalEndpoint", self},
		{"peer.gossip.aliveTimeInterval", c.Gossip.AliveTimeInterval.String()},
		{"peer.gossip.aliveExpirationTimeout", c.Gossip.AliveExpirationTimeout.String()},
		{"peer.gossip.reconnectInterval", c.Gossip.ReconnectInterval.String()},
		{"peer.gossip.membershipTrackerInterval", c.Gossip.MembershipTrackerInterval.String()},
		{"peer.gossip.useLeaderElection", false},
		{"peer.gossip.orgLeader", true},
		// No Docker daemon here: an endpoint makes the health check fail.
		{"vm.endpoint", ""},
		{"chaincode.externalBuilders", []externalBuilder{{Name: "ccaas", Path: c.BuilderDir}}},
		{"ledger.snapshots.rootDir", filepath.Join(c.DataDir, "snapshots")},
		{"operations.listenAddress", hostPort(listenIP(c.IP), c.OperationsPort)},
		{"operations.tls.enabled", false},
		{"metrics.provider", "prometheus"},
	}
}

// ordererConfig holds everything an orderer's orderer.yaml gets from us.
type ordererConfig struct {
	MSPID          string
	MSPDir         string
	TLSDir         string // server.crt, server.key, ca.crt
	AdminTLSCA     string // CA of the TLS client certs allowed on the admin endpoint
	DataDir        string
	IP             string // listen address: 127.0.0.1 or the namespace's
	ListenPort     int
	ClusterPort    int
	AdminPort      int
	OperationsPort int
}

func (c ordererConfig) settings() []yamlSetting {
	cert := filepath.Join(c.TLSDir, "server.crt")
	key := filepath.Join(c.TLSDir, "server.key")
	ca := []string{filepath.Join(c.TLSDir, "ca.crt")}
	return []yamlSetting{
		{"General.ListenAddress", listenIP(c.IP)},
		{"General.ListenPort", c.ListenPort},
		{"General.TLS.Enabled", true},
		{"General.TLS.PrivateKey", key},
		{"General.TLS.Certificate", cert},
		{"General.TLS.RootCAs", ca},
		{"General.TLS.ClientAuthRequired", false},
		{"General.Cluster.ListenAddress", listenIP(c.IP)},
		{"General.Cluster.ListenPort", c.ClusterPort},
		{"General.Cluster.ServerCertificate", cert},
		{"General.Cluster.ServerPrivateKey", key},
		{"General.Cluster.ClientCertificate", cert},
		{"General.Cluster.ClientPrivateKey", key},
		{"General.Cluster.RootCAs", ca},
		// No system channel: channels are joined through the admin API.
		{"General.BootstrapMethod", "none"},
		{"General.BootstrapFile", ""},
		{"General.LocalMSPDir", c.MSPDir},
		{"General.LocalMSPID", c.MSPID},
		{"General.Profile.Enabled", false},
		{"FileLedger.Location", filepath.Join(c.DataDir, "ledger")},
		{"Consensus.WALDir", filepath.Join(c.DataDir, "etcdraft", "wal")},
		{"Consensus.SnapDir", filepath.Join(c.DataDir, "etcdraft", "snapshot")},
		{"Operations.ListenAddress", hostPort(listenIP(c.IP), c.OperationsPort)},
		{"Operations.TLS.Enabled", false},
		{"Metrics.Provider", "prometheus"},
		// The admin endpoint must demand client certificates over TLS.
		{"Admin.ListenAddress", hostPort(listenIP(c.IP), c.AdminPort)},
		{"Admin.TLS.Enabled", true},
		{"Admin.TLS.Certificate", cert},
		{"Admin.TLS.PrivateKey", key},
		{"Admin.TLS.RootCAs", ca},
		{"Admin.TLS.ClientAuthRequired", true},
		{"Admin.TLS.ClientRootCAs", []string{c.AdminTLSCA}},
		{"ChannelParticipation.Enabled", true},
	}
}

// listenIP is a node's listen address, 127.0.0.1 unless it has a host.
func listenIP(ip string) string {
	if ip == "" {
		return loopback
	}
	return ip
}
