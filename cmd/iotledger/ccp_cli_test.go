package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const ccpExamples = "../../docs/examples/ccp/org1.example.com"

func TestProfileFlagTakesACommonConnectionProfileWithAnOverlay(t *testing.T) {
	dir, err := filepath.Abs(ccpExamples)
	require.NoError(t, err)
	for _, file := range []string{"connection-org1.json", "connection-org1.yaml", "connection-org1-paths.yaml"} {
		t.Run(file, func(t *testing.T) {
			f := ledgerFlags{profile: filepath.Join(dir, file), overlay: filepath.Join(dir, "iotledger-overlay.json"), identity: "operator"}
			p, err := f.loadProfile()
			require.NoError(t, err)
			require.Equal(t, "Org1MSP", p.MSPID)
			require.Equal(t, "mychannel", p.Channel)
			require.Equal(t, "localhost:7051", p.Peer.Address)
			require.Equal(t, "peer0.org1.example.com", p.Peer.ServerName)
			op, err := p.Identity("operator")
			require.NoError(t, err)
			require.Equal(t, filepath.Join(dir, "users/operator@org1.example.com/msp/signcerts/cert.pem"), op.Cert)
		})
	}
}

func TestCommonConnectionProfileWithoutOverlaySaysWhichFlagCompletesIt(t *testing.T) {
	_, err := runCLI(t, "device", "list", "--profile", filepath.Join(ccpExamples, "connection-org1.json"))
	require.ErrorContains(t, err, "does not give channel")
	require.ErrorContains(t, err, "--profile-overlay FILE")
}

func TestNetworkProfileRefusesAnUnknownFormat(t *testing.T) {
	_, err := runCLI(t, "network", "profile", "--state-dir", crashedNetwork(t), "--format", "xml")
	require.ErrorContains(t, err, `unknown --format "xml"`)
}

func TestIndexOnACommonConnectionProfileNeedsAnAnchor(t *testing.T) {
	_, err := runCLI(t, "index", "--profile", filepath.Join(ccpExamples, "connection-org1.json"),
		"--profile-overlay", filepath.Join(ccpExamples, "iotledger-overlay.json"))
	require.ErrorContains(t, err, "names no trust anchor")
	require.ErrorContains(t, err, "--anchor FILE")
}
