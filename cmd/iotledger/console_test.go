package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
)

// consoleProfile writes a connection profile of Org1 with an operator and
// its hubTLS pair, all issued by ca, and returns its path and the
// operator's client certificate.
func consoleProfile(t *testing.T, ca *wiretest.CA) (string, tls.Certificate) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := ca.Issue(t, "operator", api.RoleOperator, wiretest.Epoch.AddDate(5, 0, 0))
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		return path
	}
	hubCert, hubKey, caCert := ca.Files(t, dir)
	p := &client.Profile{Network: "test", Channel: "iotledger", Chaincode: "iotledger", Org: "Org1", MSPID: "Org1MSP",
		Peer:       client.PeerEndpoint{Address: "127.0.0.1:1", ServerName: "peer0", TLSCACert: caCert},
		Identities: map[string]client.IdentityFiles{"operator": {Cert: write("op.pem", certPEM), Key: write("op_sk", keyPEM)}},
		HubTLS:     &client.HubTLS{Cert: hubCert, Key: hubKey, CACert: caCert},
	}
	path := filepath.Join(dir, "connection.json")
	require.NoError(t, p.Save(path))
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return path, c
}

func TestConsoleCommandServesTheOrgOverMutualTLS(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	profile, operator := consoleProfile(t, ca)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	root := newRootCmd()
	root.SetOut(w)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"console", "--profile", profile, "--state-dir", t.TempDir(), "--listen", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); _ = w.Close() }()

	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	m := regexp.MustCompile(`at (https://[0-9.:]+/)`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	go func() { _, _ = io.Copy(io.Discard, out) }()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{operator}, MinVersion: tls.VersionTLS12}}}
	res, err := hc.Get(m[1] + "api/v1/me")
	require.NoError(t, err)
	var me struct{ Name, Role, MSPID string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&me))
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "operator", me.Name)
	require.Equal(t, "Org1MSP", me.MSPID)

	// Without a client certificate the handshake fails.
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	if res, err := anon.Get(m[1]); err == nil {
		_ = res.Body.Close()
		t.Fatalf("anonymous request answered %d", res.StatusCode)
	}

	// No index was given and none exists: the console says so rather than
	// serving empty charts.
	res, err = hc.Get(m[1] + "api/v1/devices/d1/readings")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("console did not stop")
	}
}

func TestConsoleCommandNeedsBothHalvesOfItsServerCertificate(t *testing.T) {
	ca := wiretest.NewCA(t, "ca.org1")
	profile, _ := consoleProfile(t, ca)
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"console", "--profile", profile, "--tls-cert", "x.pem", "--listen", "127.0.0.1:0"})
	require.ErrorContains(t, root.Execute(), "give both --tls-cert and --tls-key")
}
