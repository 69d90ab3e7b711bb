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
}

// lockedVersion is the version package-lock.json pins for a package.
func lockedVersion(t *testing.T, pkg string) string {
	t.Helper()
	data, err := os.ReadFile("package-lock.json")
	require.NoError(t, err)
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(data, &lock))
	v := lock.Packages["node_modules/"+pkg].Version
	require.NotEmpty(t, v, "package-lock.json pins no %s", pkg)
	return v
}

func TestEmbeddedChartLibraryIsTheVersionTheLockfilePins(t *testing.T) {
	js, err := fs.ReadFile(Static(), "vendor/uPlot.iife.min.js")
	require.NoError(t, err)
	m := regexp.MustCompile(`^/\*! https://github.com/leeoniya/uPlot \(v([0-9.]+)\) \*/`).FindSubmatch(js)
	require.NotNil(t, m, "uPlot's banner is missing: was the file copied from its dist?")
	require.Equal(t, lockedVersion(t, "uplot"), string(m[1]), "run `make console-assets` after changing package.json")

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
