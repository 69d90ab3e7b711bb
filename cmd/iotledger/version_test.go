package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network"
)

func TestVersionInfoTakesTheStampsOverTheBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/iotledger/iotledger", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "github.com/hyperledger/fabric-gateway", Version: "v1.12.1"},
			{Path: "github.com/hyperledger/fabric-contract-api-go/v2", Version: "v2.2.2",
				Replace: &debug.Module{Path: "github.com/hyperledger/fabric-contract-api-go/v2", Version: "v2.2.3-fork"}},
			{Path: "github.com/spf13/cobra", Version: "v1.10.2"},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1111111111111111111111111111111111111111"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name    string
		bi      *debug.BuildInfo
		st      stamps
		version string
		commit  string
		dirty   bool
		built   string
	}{
		{"no build info, no stamps", nil, stamps{}, develVersion, "", false, ""},
		{"unknown module version", &debug.BuildInfo{Main: debug.Module{Version: ""}}, stamps{}, develVersion, "", false, ""},
		{"build info only", bi, stamps{}, "v1.2.3", "1111111111111111111111111111111111111111", true, ""},
		{"release stamps", bi, stamps{version: "v1.3.0", commit: "2222222222222222222222222222222222222222", dirty: "false", buildTime: "2026-12-02T00:00:00Z"},
			"v1.3.0", "2222222222222222222222222222222222222222", false, "2026-12-02T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVersionInfo(tt.bi, tt.st)
			require.Equal(t, tt.version, v.Version)
			require.Equal(t, tt.commit, v.Commit)
			require.Equal(t, tt.dirty, v.Dirty)
			require.Equal(t, tt.built, v.BuildTime)
			require.Equal(t, network.FabricVersion, v.Fabric)
			require.Equal(t, network.FabricCAVersion, v.FabricCA)
			require.Equal(t, runtime.GOOS+"/"+runtime.GOARCH, v.Platform)
		})
	}
	v := newVersionInfo(bi, stamps{})
	require.Equal(t, map[string]string{
		"github.com/hyperledger/fabric-gateway":            "v1.12.1",
		"github.com/hyperledger/fabric-contract-api-go/v2": "v2.2.3-fork",
	}, v.Modules, "only Hyperledger modules, at the version linked")
	require.Equal(t, "go1.26.8", v.GoVersion)
}

func TestVersionCommandReportsThisBuild(t *testing.T) {
	for _, args := range [][]string{{"version", "-o", "json"}, {"--version", "-o", "json"}} {
		t.Run(args[0], func(t *testing.T) {
			code, stdout, stderr := runExit(t, args...)
			require.Equal(t, exitOK, code, stderr)
			var v versionInfo
			require.NoError(t, json.Unmarshal([]byte(stdout), &v))
			require.NotEmpty(t, v.Version)
			require.Equal(t, runtime.Version(), v.GoVersion)
			require.Equal(t, network.FabricVersion, v.Fabric)
			require.Equal(t, network.FabricCAVersion, v.FabricCA)
			require.Contains(t, v.Modules, "github.com/hyperledger/fabric-gateway", "the CLI links the gateway client")
		})
	}
	code, stdout, _ := runExit(t, "version")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `(?m)^fabric\s+`+network.FabricVersion, stdout)
	require.Regexp(t, `(?m)^fabric-gateway\s+v`, stdout)
	require.Regexp(t, `(?m)^go\s+`+runtime.Version(), stdout)

	code, _, stderr := runExit(t, "version", "extra")
	require.Equal(t, exitUsage, code, stderr)
}

// A release build stamps its commit and build time; the chaincode server
// beside it tells which contract API it serves with.
func TestTheStampedBinaryReportsItsCommitAndTheChaincodesContractAPI(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	bin := buildCLI(t, "-X main.stampCommit="+commit+" -X main.stampDirty=true -X main.stampVersion=v9.9.9 -X main.stampBuildTime=2026-12-01T00:00:00Z")
	if testing.Short() {
		t.Log("-short: the chaincode server is not built beside the binary")
	} else {
		build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(filepath.Dir(bin), chaincodeBinary), "../iotledger-chaincode")
		out, err := build.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	out, err := exec.CommandContext(t.Context(), bin, "version", "-o", "json").Output()
	require.NoError(t, err)
	var v versionInfo
	require.NoError(t, json.Unmarshal(out, &v))
	require.Equal(t, commit, v.Commit)
	require.True(t, v.Dirty)
	require.Equal(t, "v9.9.9", v.Version)
	require.Equal(t, "2026-12-01T00:00:00Z", v.BuildTime)
	if !testing.Short() {
		require.NotNil(t, v.Chaincode)
		require.Contains(t, v.Chaincode.Modules, "github.com/hyperledger/fabric-contract-api-go/v2")
		text, err := exec.CommandContext(t.Context(), bin, "version").Output()
		require.NoError(t, err)
		require.Regexp(t, `(?m)^fabric-contract-api-go/v2\s+v\S+ \(in iotledger-chaincode\)`, string(text))
		require.Regexp(t, `(?m)^commit\s+`+commit+` \(dirty`, string(text))
	}
}
