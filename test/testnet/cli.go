package testnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iotledger/iotledger/network"
)

// RunWithCLI is Run for test packages that also run the iotledger CLI as a
// separate process (a hub, an index): it builds the CLI once into a
// temporary directory, sets *bin to its path, and removes it afterwards.
func RunWithCLI(m *testing.M, dst **network.Network, bin *string) int {
	if os.Getenv(envGuard) != "" {
		return Run(m, dst) // the guard process needs no CLI
	}
	dir, err := os.MkdirTemp("", "iotledger-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	*bin = filepath.Join(dir, "iotledger")
	build := exec.Command("go", "build", "-o", *bin, "github.com/iotledger/iotledger/cmd/iotledger")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building iotledger:", err)
		return 1
	}
	return Run(m, dst)
}
