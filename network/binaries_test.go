package network

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The versions the CLI reports (iotledger version) are those the tool
// modules build.
func TestReportedFabricVersionsAreThoseTheToolModulesPin(t *testing.T) {
	tests := []struct {
		name   string
		module toolModule
		path   string
		want   *regexp.Regexp
	}{
		{"fabric", fabricTools, "github.com/hyperledger/fabric", regexp.MustCompile(`-` + FabricCommit + `$`)},
		{"fabric-ca", fabricCATools, "github.com/hyperledger/fabric-ca", regexp.MustCompile(`^` + regexp.QuoteMeta(FabricCAVersion) + `$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gomod, err := os.ReadFile(filepath.Join("..", tt.module.Dir, "go.mod"))
			require.NoError(t, err)
			m := regexp.MustCompile(`(?m)^require ` + regexp.QuoteMeta(tt.path) + ` (\S+)$`).FindSubmatch(gomod)
			require.NotNil(t, m, "%s/go.mod requires %s on its own line", tt.module.Dir, tt.path)
			require.Regexp(t, tt.want, string(m[1]))
		})
	}
}
