package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

// UniqueID makes a device, identity or object ID that no other test, nor
// an earlier run on a reused network, uses: prefix-<8 random hex digits>.
func UniqueID(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + "-" + hex.EncodeToString(b)
}
