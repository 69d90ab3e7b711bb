package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// vendored are the files `make console-assets` copies from node_modules
// into static/vendor: embedded path → path in node_modules.
var vendored = map[string]string{
	"vendor/uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
	"vendor/uPlot.min.css":     "uplot/dist/uPlot.min.css",
	"vendor/uPlot.LICENSE":     "uplot/LICENSE",
	"vendor/protobuf.min.js":   "protobufjs/dist/protobuf.min.js",
	"vendor/protobuf.LICENSE":  "protobufjs/LICENSE",
	"vendor/long.js":           "long/umd/index.js",
	"vendor/long.LICENSE":      "long/LICENSE",
}

// lockedPackage is a package as a package-lock.json pins it.
type lockedPackage struct {
	Version   string `json:"version"`
	Integrity string `json:"integrity"`
}

// lockOf reads the packages a package-lock.json pins.
func lockOf(t *testing.T, path string) map[string]lockedPackage {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var lock struct {
		Packages map[string]lockedPackage `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(data, &lock))
	return lock.Packages
}

// lockedVersion is the version package-lock.json pins for a package.
func lockedVersion(t *testing.T, pkg string) string {
	t.Helper()
	v := lockOf(t, "package-lock.json")["node_modules/"+pkg].Version
	require.NotEmpty(t, v, "package-lock.json pins no %s", pkg)
	return v
}

func TestEmbeddedLibrariesAreTheVersionsTheLockfilePins(t *testing.T) {
	for _, tc := range []struct{ file, pkg, banner string }{
		{"vendor/uPlot.iife.min.js", "uplot", `^/\*! https://github.com/leeoniya/uPlot \(v([0-9.]+)\) \*/`},
		{"vendor/protobuf.min.js", "protobufjs", `^/\*!\n \* protobuf.js v([0-9.]+) `},
	} {
		js, err := fs.ReadFile(Static(), tc.file)
		require.NoError(t, err)
		m := regexp.MustCompile(tc.banner).FindSubmatch(js)
		require.NotNil(t, m, "%s's banner is missing: was the file copied from its dist?", tc.pkg)
		require.Equal(t, lockedVersion(t, tc.pkg), string(m[1]), "run `make console-assets` after changing package.json")
	}

	// Where the npm packages are installed (make console-assets), the
	// embedded copies must be byte for byte theirs.
	if _, err := os.Stat("node_modules"); err != nil {
		t.Log("node_modules absent: embedded files checked against the lockfile's version only")
		return
	}
	for embedded, src := range vendored {
		want, err := os.ReadFile(filepath.Join("node_modules", src))
		require.NoError(t, err)
		got, err := fs.ReadFile(Static(), embedded)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s differs from node_modules/%s: run `make console-assets`", embedded, src)
	}
}

func TestEveryPageTemplateAndScriptIsEmbedded(t *testing.T) {
	for _, name := range []string{"layout", "fleet", "device", "alerts", "commands", "policies", "audit", "receipts", "health"} {
		_, err := fs.Stat(Templates(), "templates/"+name+".html")
		require.NoError(t, err, name)
		if name != "layout" {
			_, err = fs.Stat(Static(), "js/"+name+".js")
			require.NoError(t, err, name)
		}
	}
}

// The receipts page decodes Fabric's messages with the protobufjs (and its
// long) that the node verifier is tested with: the two lockfiles pin the
// same packages, to the byte.
func TestTheBrowserVerifierDecodesWithTheNodeVerifiersProtobufjs(t *testing.T) {
	console := lockOf(t, "package-lock.json")
	node := lockOf(t, filepath.Join("..", "..", "test", "receipt-node", "package-lock.json"))
	for _, pkg := range []string{"node_modules/protobufjs", "node_modules/long"} {
		require.NotEmpty(t, node[pkg].Integrity, "test/receipt-node pins no %s", pkg)
		require.Equal(t, node[pkg], console[pkg], "%s: console/web and test/receipt-node pin different packages", pkg)
	}
}
