package network_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	iotclient "github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/deploy/ccaas"
	"github.com/iotledger/iotledger/network"
)

// testCA issues TLS certificates for the chaincode servers and the peers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chaincode TLS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a certificate and PKCS#8 key in PEM for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// TestCCaaSPackagesWithTLSAreInstalledAndServedThroughThePeers deploys the
// iotledger chaincode the way an operator does on any Fabric 2.5 network:
// packages written by deploy/ccaas (what `iotledger chaincode package`
// writes), Org1's server over TLS and Org2's over mutual TLS, servers run
// by the operator with the package IDs, the lifecycle through the peers'
// ccaas builder; then a transaction endorsed by both orgs goes through.
func TestCCaaSPackagesWithTLSAreInstalledAndServedThroughThePeers(t *testing.T) {
	ctx := ctxFor(t, 8*time.Minute)
	dir := t.TempDir()
	root, err := network.FindSourceRoot("")
	require.NoError(t, err)
	bin := filepath.Join(dir, "iotledger-chaincode")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/iotledger-chaincode")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	ca := newTestCA(t)
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	peerCert, peerKey := ca.issue(t, 10, x509.ExtKeyUsageClientAuth)
	const name = "iottls"
	packages := map[string][]byte{}
	ids := map[string]string{}
	for i, org := range testNet.Orgs() {
		port := freePort(t)
		conn := ccaas.Connection{Address: "127.0.0.1:" + strconv.Itoa(port), TLSRequired: true, RootCert: ca.pem}
		mutual := org == "Org2"
		if mutual {
			conn.ClientAuthRequired, conn.ClientCert, conn.ClientKey = true, peerCert, peerKey
		}
		pkg, err := ccaas.Build(name+"_1", conn)
		require.NoError(t, err)
		packages[org], ids[org] = pkg.Bytes, pkg.ID

		cert, key := ca.issue(t, int64(20+i), x509.ExtKeyUsageServerAuth)
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
			"CHAINCODE_SERVER_ADDRESS=" + conn.Address, "CORE_CHAINCODE_ID_NAME=" + pkg.ID,
			"CHAINCODE_TLS_CERT_FILE=" + writeFile(t, dir, org+"-cert.pem", cert),
			"CHAINCODE_TLS_KEY_FILE=" + writeFile(t, dir, org+"-key.pem", key)}
		if mutual {
			env = append(env, "CHAINCODE_TLS_CLIENT_CA_CERT_FILE="+caFile)
		}
		server := exec.Command(bin)
		server.Env = env
		server.Stdout, server.Stderr = os.Stderr, os.Stderr
		// The server dies with the test binary, whatever ends it.
		server.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(t, server.Start())
		t.Cleanup(func() {
			_ = server.Process.Kill()
			_ = server.Wait()
		})
	}

	// A network reused across runs (IOTLEDGER_TEST_NETWORK) has it deployed already.
	wantSeq := int64(1)
	if prev, ok := testNet.Chaincode(name); ok {
		wantSeq = prev.Sequence + 1
	}
	got, err := testNet.DeployService(ctx, network.ServiceSpec{Name: name}, packages)
	require.NoError(t, err)
	require.Equal(t, ids, got, "the peers know the packages by the IDs we computed (checked with queryinstalled)")
	cc, ok := testNet.Chaincode(name)
	require.True(t, ok)
	require.Equal(t, wantSeq, cc.Sequence)
	require.Empty(t, cc.Servers, "the network runs no server of its own for it")

	profile, err := testNet.Profile("Org1")
	require.NoError(t, err)
	p := *profile
	p.Chaincode = name
	c, err := iotclient.Connect(ctx, &p, "operator")
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	signer, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	// MAJORITY of two orgs: both peers dial their org's server over TLS.
	id := "ccaas-tls-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dev, err := c.EnrollDevice(ctx, api.EnrollRequest{ID: id, Type: "probe", PublicKey: signer.Public().PEM(), Activate: true})
	require.NoError(t, err)
	require.Equal(t, "Org1MSP", dev.Owner)
	read, err := c.Device(ctx, id)
	require.NoError(t, err)
	require.Equal(t, api.StatusActive, read.Status)

	// A package the peers would not run is refused before anything changes.
	_, err = testNet.DeployService(ctx, network.ServiceSpec{Name: name}, map[string][]byte{"Org1": packages["Org1"]})
	require.ErrorContains(t, err, "one per org")
	_, err = testNet.DeployService(ctx, network.ServiceSpec{Name: name}, map[string][]byte{"Org1": packages["Org1"], "Org2": []byte("not a package")})
	require.ErrorIs(t, err, ccaas.ErrInvalid)
	cc, _ = testNet.Chaincode(name)
	require.Equal(t, wantSeq, cc.Sequence)
}
