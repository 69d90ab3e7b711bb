package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

func TestCommandLinesGroupTargetsByNameAndIssuerInOrder(t *testing.T) {
	lines := commandLines([]api.Command{
		{Name: "reduce-speed", IssuedBy: "rule:r1", Device: "a"},
		{Name: "boost", IssuedBy: "rule:r2", Device: "x"},
		{Name: "reduce-speed", IssuedBy: "rule:r1", Device: "b"},
	})
	require.Equal(t, []string{
		`command "reduce-speed" issued by rule:r1 to a, b`,
		`command "boost" issued by rule:r2 to x`,
	}, lines)
	require.Empty(t, commandLines(nil))
}
