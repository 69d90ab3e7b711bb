package main

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/network"
)

// Link-time stamps of a release build (`make dist`), set with
// -ldflags "-X main.stampCommit=...". A plain `go build` leaves them empty
// and the build information Go records (when it can see the repository)
// takes their place. They are package variables because -X can only set
// those; nothing writes them at run time.
var (
	stampVersion   string // module version, e.g. v1.2.0 or a pseudo-version
	stampCommit    string // full commit hash
	stampDirty     string // "true" when built from a tree with uncommitted changes
	stampBuildTime string // RFC 3339, UTC
)

// develVersion is what Go reports for a module version it does not know.
const develVersion = "(devel)"

// chaincodeBinary is the chaincode server shipped beside the CLI in a release
// archive; its build information names the contract API it serves with.
const chaincodeBinary = "iotledger-chaincode"

// versionInfo is `iotledger version`.
type versionInfo struct {
	Version    string `json:"version"` // "(devel)" when unknown
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commitTime,omitempty"`
	Dirty      bool   `json:"dirty"`
	BuildTime  string `json:"buildTime,omitempty"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
	// Fabric and FabricCA are the releases `network up` builds and runs.
	Fabric   string `json:"fabric"`
	FabricCA string `json:"fabricCA"`
	// Modules are the Hyperledger modules linked into this binary (import
	// path → version), e.g. fabric-gateway.
	Modules map[string]string `json:"modules"`
	// Chaincode is the chaincode server beside this binary, when there is
	// one (a release archive); it links fabric-contract-api-go.
	Chaincode *binaryInfo `json:"chaincode,omitempty"`
}

// binaryInfo is what the build information of another binary says.
type binaryInfo struct {
	Path    string            `json:"path"`
	Version string            `json:"version"`
	Commit  string            `json:"commit,omitempty"`
	Modules map[string]string `json:"modules"`
}

// stamps are the link-time values; empty ones defer to the build info.
type stamps struct {
	version, commit, dirty, buildTime string
}

func linkStamps() stamps {
	return stamps{version: stampVersion, commit: stampCommit, dirty: stampDirty, buildTime: stampBuildTime}
}

// newVersionInfo reports on the binary whose build information is bi (nil
// when Go recorded none).
func newVersionInfo(bi *debug.BuildInfo, st stamps) versionInfo {
	v := versionInfo{
		Version:   develVersion,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Fabric:    network.FabricVersion,
		FabricCA:  network.FabricCAVersion,
		Modules:   map[string]string{},
		BuildTime: st.buildTime,
	}
	if bi != nil {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		v.GoVersion = bi.GoVersion
		v.Modules = hyperledgerModules(bi)
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Dirty = s.Value == "true"
			}
		}
	}
	if st.version != "" {
		v.Version = st.version
	}
	if st.commit != "" {
		v.Commit = st.commit
	}
	if st.dirty != "" {
		v.Dirty, _ = strconv.ParseBool(st.dirty)
	}
	return v
}

// hyperledgerModules are the Fabric modules among bi's dependencies, at the
// version actually linked (a replace directive's, when there is one).
func hyperledgerModules(bi *debug.BuildInfo) map[string]string {
	mods := map[string]string{}
	for _, d := range bi.Deps {
		if !strings.HasPrefix(d.Path, "github.com/hyperledger/") {
			continue
		}
		if d.Replace != nil {
			d = d.Replace
		}
		mods[d.Path] = d.Version
	}
	return mods
}

// siblingChaincode reads the build information of the chaincode server in
// the directory of the running binary; nil when there is none.
func siblingChaincode() *binaryInfo {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return readBinaryInfo(filepath.Join(filepath.Dir(exe), chaincodeBinary))
}

func readBinaryInfo(path string) *binaryInfo {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil
	}
	b := &binaryInfo{Path: path, Version: bi.Main.Version, Modules: hyperledgerModules(bi)}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			b.Commit = s.Value
		}
	}
	return b
}

func currentVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	v := newVersionInfo(bi, linkStamps())
	v.Chaincode = siblingChaincode()
	return v
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and the Fabric releases and modules this build uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), g, currentVersion())
		},
	}
}

// setVersionFlag gives the root `--version`, which prints what `version`
// prints.
func setVersionFlag(root *cobra.Command, g *globalOptions) {
	var show bool
	root.Flags().BoolVar(&show, "version", false, "print the version, as the version command does")
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if !show {
			return runGroup(cmd, args)
		}
		if len(args) > 0 {
			return usageErrorf("--version takes no arguments, got %q", args[0])
		}
		return printVersion(cmd.OutOrStdout(), g, currentVersion())
	}
}

func printVersion(w io.Writer, g *globalOptions, v versionInfo) error {
	if g.json() {
		return writeIndentedJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	commit := orDash(v.Commit)
	if v.Dirty {
		commit += " (dirty: uncommitted changes)"
	}
	row(tw, "iotledger", v.Version)
	row(tw, "commit", commit)
	if v.CommitTime != "" {
		row(tw, "commit time", v.CommitTime)
	}
	row(tw, "built", orDash(v.BuildTime))
	row(tw, "go", v.GoVersion+" "+v.Platform)
	row(tw, "fabric", v.Fabric+" (peer, orderer, tools built by `network up`)")
	row(tw, "fabric-ca", v.FabricCA)
	for _, m := range sortedKeys(v.Modules) {
		row(tw, strings.TrimPrefix(m, "github.com/hyperledger/"), v.Modules[m])
	}
	if c := v.Chaincode; c != nil {
		for _, m := range sortedKeys(c.Modules) {
			if _, linked := v.Modules[m]; !linked {
				row(tw, strings.TrimPrefix(m, "github.com/hyperledger/"), c.Modules[m]+" (in "+chaincodeBinary+")")
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the version: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
