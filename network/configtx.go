package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// configTx is configtxgen's configtx.yaml, reduced to the one profile the
// network uses: an application channel with its own Raft orderers (no
// system channel).
type configTx struct {
	Profiles map[string]ctxProfile `yaml:"Profiles"`
}

type ctxProfile struct {
	Policies     map[string]ctxPolicy `yaml:"Policies"`
	Capabilities map[string]bool      `yaml:"Capabilities"`
	Orderer      ctxOrderer           `yaml:"Orderer"`
	Application  ctxApplication       `yaml:"Application"`
}

type ctxPolicy struct {
	Type string `yaml:"Type"` // "Signature" or "ImplicitMeta"
	Rule string `yaml:"Rule"`
}

type ctxOrg struct {
	Name             string               `yaml:"Name"`
	ID               string               `yaml:"ID"`
	MSPDir           string               `yaml:"MSPDir"`
	Policies         map[string]ctxPolicy `yaml:"Policies"`
	OrdererEndpoints []string             `yaml:"OrdererEndpoints,omitempty"`
	AnchorPeers      []ctxAnchorPeer      `yaml:"AnchorPeers,omitempty"`
}

type ctxAnchorPeer struct {
	Host string `yaml:"Host"`
	Port int    `yaml:"Port"`
}

type ctxOrderer struct {
	OrdererType   string               `yaml:"OrdererType"`
	BatchTimeout  string               `yaml:"BatchTimeout"`
	BatchSize     ctxBatchSize         `yaml:"BatchSize"`
	EtcdRaft      ctxEtcdRaft          `yaml:"EtcdRaft"`
	Organizations []ctxOrg             `yaml:"Organizations"`
	Policies      map[string]ctxPolicy `yaml:"Policies"`
	Capabilities  map[string]bool      `yaml:"Capabilities"`
}

type ctxBatchSize struct {
	MaxMessageCount   int    `yaml:"MaxMessageCount"`
	AbsoluteMaxBytes  string `yaml:"AbsoluteMaxBytes"`
	PreferredMaxBytes string `yaml:"PreferredMaxBytes"`
}

type ctxEtcdRaft struct {
	Consenters []ctxConsenter `yaml:"Consenters"`
	Options    ctxRaftOptions `yaml:"Options"`
}

type ctxConsenter struct {
	Host          string `yaml:"Host"`
	Port          int    `yaml:"Port"`
	ClientTLSCert string `yaml:"ClientTLSCert"`
	ServerTLSCert string `yaml:"ServerTLSCert"`
}

type ctxRaftOptions struct {
	TickInterval         string `yaml:"TickInterval"`
	ElectionTick         int    `yaml:"ElectionTick"`
	HeartbeatTick        int    `yaml:"HeartbeatTick"`
	MaxInflightBlocks    int    `yaml:"MaxInflightBlocks"`
	SnapshotIntervalSize string `yaml:"SnapshotIntervalSize"`
}

type ctxApplication struct {
	Organizations []ctxOrg             `yaml:"Organizations"`
	Policies      map[string]ctxPolicy `yaml:"Policies"`
	Capabilities  map[string]bool      `yaml:"Capabilities"`
}

const channelProfile = "IoTLedgerChannel"

func sig(rule string) ctxPolicy      { return ctxPolicy{Type: "Signature", Rule: rule} }
func implicit(rule string) ctxPolicy { return ctxPolicy{Type: "ImplicitMeta", Rule: rule} }

// peerOrgPolicies are the usual NodeOU-based policies of a peer org.
func peerOrgPolicies(msp string) map[string]ctxPolicy {
	return map[string]ctxPolicy{
		"Readers":     sig(fmt.Sprintf("OR('%[1]s.admin', '%[1]s.peer', '%[1]s.client')", msp)),
		"Writers":     sig(fmt.Sprintf("OR('%[1]s.admin', '%[1]s.client')", msp)),
		"Admins":      sig(fmt.Sprintf("OR('%s.admin')", msp)),
		"Endorsement": sig(fmt.Sprintf("OR('%s.peer')", msp)),
	}
}

// channelConfigInput is what the channel's genesis block is made from.
type channelConfigInput struct {
	OrdererMSPDir    string
	OrdererEndpoints []string
	Consenters       []ctxConsenter
	PeerOrgs         []ctxOrg
	BatchTimeout     time.Duration
	MaxMessageCount  int
}

func buildConfigTx(in channelConfigInput) configTx {
	ordererOrg := ctxOrg{
		Name:   "OrdererOrg",
		ID:     "OrdererMSP",
		MSPDir: in.OrdererMSPDir,
		Policies: map[string]ctxPolicy{
			"Readers": sig("OR('OrdererMSP.member')"),
			"Writers": sig("OR('OrdererMSP.member')"),
			"Admins":  sig("OR('OrdererMSP.admin')"),
		},
		OrdererEndpoints: in.OrdererEndpoints,
	}
	std := map[string]ctxPolicy{
		"Readers": implicit("ANY Readers"),
		"Writers": implicit("ANY Writers"),
		"Admins":  implicit("MAJORITY Admins"),
	}
	ordererPolicies := map[string]ctxPolicy{"BlockValidation": implicit("ANY Writers")}
	appPolicies := map[string]ctxPolicy{
		"LifecycleEndorsement": implicit("MAJORITY Endorsement"),
		"Endorsement":          implicit("MAJORITY Endorsement"),
	}
	for k, v := range std {
		ordererPolicies[k] = v
		appPolicies[k] = v
	}
	return configTx{Profiles: map[string]ctxProfile{
		channelProfile: {
			Policies:     std,
			Capabilities: map[string]bool{"V2_0": true},
			Orderer: ctxOrderer{
				OrdererType:  "etcdraft",
				BatchTimeout: in.BatchTimeout.String(),
				BatchSize: ctxBatchSize{
					MaxMessageCount:   in.MaxMessageCount,
					AbsoluteMaxBytes:  "10 MB",
					PreferredMaxBytes: "2 MB",
				},
				EtcdRaft: ctxEtcdRaft{
					Consenters: in.Consenters,
					Options: ctxRaftOptions{
						// 250 ms ticks: a new leader within ~2.5 s when one stops.
						TickInterval:         "250ms",
						ElectionTick:         10,
						HeartbeatTick:        1,
						MaxInflightBlocks:    5,
						SnapshotIntervalSize: "16 MB",
					},
				},
				Organizations: []ctxOrg{ordererOrg},
				Policies:      ordererPolicies,
				Capabilities:  map[string]bool{"V2_0": true},
			},
			Application: ctxApplication{
				Organizations: in.PeerOrgs,
				Policies:      appPolicies,
				Capabilities:  map[string]bool{"V2_5": true},
			},
		},
	}}
}

// generateGenesisBlock writes configtx.yaml into dir and makes the channel's
// genesis block with configtxgen.
func generateGenesisBlock(ctx context.Context, configtxgen, dir, channel, blockPath string, cfg configTx) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode configtx.yaml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "configtx.yaml"), data, 0o644); err != nil {
		return fmt.Errorf("write configtx.yaml: %w", err)
	}
	cmd := exec.CommandContext(ctx, configtxgen, "-configPath", dir, "-profile", channelProfile,
		"-channelID", channel, "-outputBlock", blockPath)
	cmd.Env = append(os.Environ(), "FABRIC_CFG_PATH="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("configtxgen: %w: %s", err, tail(string(out), 20))
	}
	return nil
}
