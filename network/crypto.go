package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"gopkg.in/yaml.v3"
)

// cryptoConfig is cryptogen's crypto-config.yaml.
type cryptoConfig struct {
	OrdererOrgs []cryptoOrg `yaml:"OrdererOrgs"`
	PeerOrgs    []cryptoOrg `yaml:"PeerOrgs"`
}

type cryptoOrg struct {
	Name          string          `yaml:"Name"`
	Domain        string          `yaml:"Domain"`
	EnableNodeOUs bool            `yaml:"EnableNodeOUs"`
	Specs         []cryptoSpec    `yaml:"Specs,omitempty"`
	Template      *cryptoTemplate `yaml:"Template,omitempty"`
	Users         *cryptoUsers    `yaml:"Users,omitempty"`
}

type cryptoSpec struct {
	Hostname string   `yaml:"Hostname"`
	SANS     []string `yaml:"SANS,omitempty"`
}

type cryptoTemplate struct {
	Count int      `yaml:"Count"`
	SANS  []string `yaml:"SANS,omitempty"`
}

type cryptoUsers struct {
	Count int `yaml:"Count"`
}

// loopbackSANs lets clients verify a node by its address as well as its name.
var loopbackSANs = []string{"localhost", "127.0.0.1"}

// generateCrypto writes cfg to path (a crypto-config.yaml) and runs cryptogen: node and org
// admin certificates for the orderer org and every peer org.
func generateCrypto(ctx context.Context, cryptogen, path, outDir string, cfg cryptoConfig) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode crypto-config.yaml: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write crypto-config.yaml: %w", err)
	}
	out, err := exec.CommandContext(ctx, cryptogen, "generate", "--config", path, "--output", outDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cryptogen: %w: %s", err, out)
	}
	return nil
}
