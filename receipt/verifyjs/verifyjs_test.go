package verifyjs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The module's own tests live beside its command line in test/receipt-node
// (node --test): strict JSON, canonical blocks, certificates against node's
// X509Certificate, and some hundred tampered receipts refused at their
// step. make test runs them here, so the code the console's page runs is
// checked by them too.
func TestTheVerifierModulePassesItsNodeTests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node and, the first time, npm ci")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "receipt-node"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in %s: %s", dir, out)
	}
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=tap")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	require.NoError(t, err, "node --test in %s:\n%s", dir, out.String())
	m := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out.Bytes())
	require.NotNil(t, m, "no test summary:\n%s", out.String())
	require.NotEqual(t, "0", string(m[1]), "no node test ran")
	t.Logf("node --test: %s tests passed", m[1])
}
