package api

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientNameShowsSubjectAndIssuerCommonNames(t *testing.T) {
	id := base64.StdEncoding.EncodeToString([]byte("x509::CN=operator,OU=client,O=Hyperledger::CN=ca.org2.iotledger.local,O=org2"))
	tests := map[string]string{
		id:            "operator@ca.org2.iotledger.local",
		"not base64!": "not base64!",
		base64.StdEncoding.EncodeToString([]byte("plain")):          base64.StdEncoding.EncodeToString([]byte("plain")),
		base64.StdEncoding.EncodeToString([]byte("x509::CN=a")):     base64.StdEncoding.EncodeToString([]byte("x509::CN=a")),
		base64.StdEncoding.EncodeToString([]byte("x509::O=x::O=y")): "O=x@O=y",
	}
	for in, want := range tests {
		require.Equal(t, want, ClientName(in), in)
	}
}
