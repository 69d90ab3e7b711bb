package ccaas_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/deploy/ccaas"
	"github.com/iotledger/iotledger/network"
)

// entry is one tar entry as read back, in order.
type entry struct {
	name string
	typ  byte
	data []byte
}

func readTarGz(t *testing.T, b []byte) []entry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, entry{h.Name, h.Typeflag, data})
	}
}

// testPEM makes a self-signed certificate and its PKCS#8 key.
func testPEM(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chaincode CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))
}

// TestPackageHasTheLayoutFabricsCCaaSBuilderReads checks the package against
// what Fabric v2.5 reads: the peer (core/chaincode/persistence) wants a
// gzipped tar of regular files with metadata.json and code.tar.gz; the ccaas
// builder's detect wants metadata.json's "type" to be ccaas, its build copies
// connection.json from the root of code.tar.gz, and the peer decodes it into
// ChaincodeServerUserData, whose JSON names are these.
func TestPackageHasTheLayoutFabricsCCaaSBuilderReads(t *testing.T) {
	cert, key := testPEM(t)
	cases := []struct {
		name string
		conn ccaas.Connection
		keys []string
	}{
		{"plaintext", ccaas.Connection{Address: "iotledger-cc.org1.svc:9999"},
			[]string{"address", "client_auth_required", "dial_timeout", "tls_required"}},
		{"TLS", ccaas.Connection{Address: "iotledger-cc.org1.svc:9999", DialTimeout: "5s", TLSRequired: true, RootCert: cert},
			[]string{"address", "client_auth_required", "dial_timeout", "root_cert", "tls_required"}},
		{"mutual TLS", ccaas.Connection{Address: "10.0.0.7:9999", TLSRequired: true, ClientAuthRequired: true, RootCert: cert, ClientCert: cert, ClientKey: key},
			[]string{"address", "client_auth_required", "client_cert", "client_key", "dial_timeout", "root_cert", "tls_required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkg, err := ccaas.Build("iotledger_3", tc.conn)
			require.NoError(t, err)

			top := readTarGz(t, pkg.Bytes)
			require.Len(t, top, 2)
			require.Equal(t, "metadata.json", top[0].name)
			require.Equal(t, "code.tar.gz", top[1].name)
			for _, e := range top {
				require.Equal(t, byte(tar.TypeReg), e.typ, "%s: the peer takes only regular files", e.name)
			}
			require.JSONEq(t, `{"type":"ccaas","label":"iotledger_3"}`, string(top[0].data))

			code := readTarGz(t, top[1].data)
			require.Len(t, code, 1)
			require.Equal(t, "connection.json", code[0].name)
			require.Equal(t, byte(tar.TypeReg), code[0].typ)
			var conn map[string]any
			require.NoError(t, json.Unmarshal(code[0].data, &conn))
			got := make([]string, 0, len(conn))
			for k := range conn {
				got = append(got, k)
			}
			require.ElementsMatch(t, tc.keys, got)
			require.Equal(t, tc.conn.Address, conn["address"])
			require.Equal(t, tc.conn.TLSRequired, conn["tls_required"])
			require.Equal(t, tc.conn.ClientAuthRequired, conn["client_auth_required"])
			wantTimeout := tc.conn.DialTimeout
			if wantTimeout == "" {
				wantTimeout = "10s"
			}
			require.Equal(t, wantTimeout, conn["dial_timeout"])
			if tc.conn.TLSRequired {
				require.Equal(t, cert, conn["root_cert"], "the PEM text itself, not a file name")
			}

			sum := sha256.Sum256(pkg.Bytes)
			require.Equal(t, "iotledger_3:"+hex.EncodeToString(sum[:]), pkg.ID)

			parsed, err := ccaas.Parse(pkg.Bytes)
			require.NoError(t, err)
			want := tc.conn
			want.DialTimeout = wantTimeout
			require.Equal(t, want, parsed.Connection)
			require.Equal(t, pkg.ID, parsed.ID)
		})
	}
}

func TestPackageIsDeterministicAndEachAddressHasItsOwnID(t *testing.T) {
	conn := ccaas.Connection{Address: "127.0.0.1:4242"}
	a, err := ccaas.Build("iotledger_3", conn)
	require.NoError(t, err)
	b, err := ccaas.Build("iotledger_3", conn)
	require.NoError(t, err)
	require.Equal(t, a.Bytes, b.Bytes)
	require.Equal(t, a.ID, b.ID)
	other, err := ccaas.Build("iotledger_3", ccaas.Connection{Address: "127.0.0.1:4243"})
	require.NoError(t, err)
	require.NotEqual(t, a.ID, other.ID, "each org's server address gives its own package ID")
	relabelled, err := ccaas.Build("iotledger_4", conn)
	require.NoError(t, err)
	require.NotEqual(t, a.ID, relabelled.ID)
}

func TestBuildRefusesWhatThePeerOrTheBuilderWouldRefuse(t *testing.T) {
	cert, key := testPEM(t)
	cases := []struct {
		name, label string
		conn        ccaas.Connection
		err         string
	}{
		{"empty label", "", ccaas.Connection{Address: "h:1"}, "label"},
		{"label with a slash", "iot/ledger", ccaas.Connection{Address: "h:1"}, "label"},
		{"label starting with a dot", ".iot", ccaas.Connection{Address: "h:1"}, "label"},
		{"no port", "l", ccaas.Connection{Address: "iotledger-cc"}, "host:port"},
		{"no host", "l", ccaas.Connection{Address: ":9999"}, "host:port"},
		{"port out of range", "l", ccaas.Connection{Address: "h:70000"}, "port"},
		{"bad dial timeout", "l", ccaas.Connection{Address: "h:1", DialTimeout: "soon"}, "dial timeout"},
		{"negative dial timeout", "l", ccaas.Connection{Address: "h:1", DialTimeout: "-1s"}, "dial timeout"},
		{"template in address", "l", ccaas.Connection{Address: "{{.host}}:1"}, "template"},
		{"TLS without root cert", "l", ccaas.Connection{Address: "h:1", TLSRequired: true}, "root_cert is required"},
		{"root cert not PEM", "l", ccaas.Connection{Address: "h:1", TLSRequired: true, RootCert: "/etc/ca.pem"}, "root_cert is not PEM"},
		{"root cert is a key", "l", ccaas.Connection{Address: "h:1", TLSRequired: true, RootCert: key}, "root_cert is not PEM"},
		{"TLS fields without TLS", "l", ccaas.Connection{Address: "h:1", RootCert: cert}, "TLS is not required"},
		{"client auth without TLS", "l", ccaas.Connection{Address: "h:1", ClientAuthRequired: true}, "TLS is not required"},
		{"client auth without key", "l", ccaas.Connection{Address: "h:1", TLSRequired: true, ClientAuthRequired: true, RootCert: cert, ClientCert: cert}, "client_key is required"},
		{"client auth without cert", "l", ccaas.Connection{Address: "h:1", TLSRequired: true, ClientAuthRequired: true, RootCert: cert, ClientKey: key}, "client_cert is required"},
		{"client key without client auth", "l", ccaas.Connection{Address: "h:1", TLSRequired: true, RootCert: cert, ClientKey: key}, "client auth is not required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ccaas.Build(tc.label, tc.conn)
			require.ErrorIs(t, err, ccaas.ErrInvalid)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func tarGzOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			h.Size, h.Linkname = 0, "/etc/passwd"
		}
		require.NoError(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write(e.data)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

func TestParseRefusesPackagesFabricWouldNotRun(t *testing.T) {
	code := tarGzOf(t, entry{"connection.json", tar.TypeReg, []byte(`{"address":"h:1","dial_timeout":"10s","tls_required":false}`)})
	meta := func(s string) entry { return entry{"metadata.json", tar.TypeReg, []byte(s)} }
	good := meta(`{"type":"ccaas","label":"iot_1"}`)
	codeEntry := entry{"code.tar.gz", tar.TypeReg, code}
	cases := []struct {
		name string
		pkg  []byte
		err  string
	}{
		{"not gzip", []byte("PK\x03\x04"), "not gzip"},
		{"no metadata", tarGzOf(t, codeEntry), "no metadata.json"},
		{"no code", tarGzOf(t, good), "no code.tar.gz"},
		{"golang type", tarGzOf(t, meta(`{"type":"golang","label":"iot_1"}`), codeEntry), `type "golang"`},
		{"bad label", tarGzOf(t, meta(`{"type":"ccaas","label":"-x"}`), codeEntry), "label"},
		{"unknown metadata field", tarGzOf(t, meta(`{"type":"ccaas","label":"iot_1","lable":"x"}`), codeEntry), "unknown field"},
		{"symlink", tarGzOf(t, good, codeEntry, entry{"connection.json", tar.TypeSymlink, nil}), "not a regular file"},
		{"no connection.json", tarGzOf(t, good, entry{"code.tar.gz", tar.TypeReg, tarGzOf(t, entry{"main.go", tar.TypeReg, []byte("package main")})}), "no connection.json"},
		{"misspelled connection field", tarGzOf(t, good, entry{"code.tar.gz", tar.TypeReg,
			tarGzOf(t, entry{"connection.json", tar.TypeReg, []byte(`{"address":"h:1","tls_require":true}`)})}), "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ccaas.Parse(tc.pkg)
			require.ErrorIs(t, err, ccaas.ErrInvalid)
			require.ErrorContains(t, err, tc.err)
		})
	}
	p, err := ccaas.Parse(tarGzOf(t, good, codeEntry))
	require.NoError(t, err, "a package written by other tools parses too")
	require.Equal(t, "h:1", p.Connection.Address)
}

// TestPackageIDIsWhatTheFabricPeerComputes asks the Fabric v2.5 peer binary
// that the network builds (`peer lifecycle chaincode calculatepackageid`,
// which parses the package as install does) for the ID of our packages.
func TestPackageIDIsWhatTheFabricPeerComputes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Fabric's peer on first use")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := network.FindSourceRoot("")
	require.NoError(t, err)
	bins, err := network.EnsureBinaries(ctx, root, io.Discard)
	require.NoError(t, err)
	cert, key := testPEM(t)
	dir := t.TempDir()
	for i, conn := range []ccaas.Connection{
		{Address: "iotledger-cc.org1.svc:9999"},
		{Address: "iotledger-cc.org2.svc:9999", TLSRequired: true, RootCert: cert},
		{Address: "iotledger-cc.org2.svc:9999", TLSRequired: true, ClientAuthRequired: true, RootCert: cert, ClientCert: cert, ClientKey: key},
	} {
		pkg, err := ccaas.Build("iotledger_7", conn)
		require.NoError(t, err)
		file := filepath.Join(dir, "pkg"+string(rune('a'+i))+".tar.gz")
		require.NoError(t, os.WriteFile(file, pkg.Bytes, 0o644))
		cmd := exec.CommandContext(ctx, bins.Peer, "lifecycle", "chaincode", "calculatepackageid", file)
		cmd.Env = []string{"FABRIC_CFG_PATH=" + bins.SampleConfig, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, pkg.ID, strings.TrimSpace(string(out)))
	}
	// The peer refuses what Parse refuses: a package with a bad label.
	bad := tarGzOf(t, entry{"metadata.json", tar.TypeReg, []byte(`{"type":"ccaas","label":"-x"}`)},
		entry{"code.tar.gz", tar.TypeReg, tarGzOf(t, entry{"connection.json", tar.TypeReg, []byte(`{"address":"h:1"}`)})})
	file := filepath.Join(dir, "bad.tar.gz")
	require.NoError(t, os.WriteFile(file, bad, 0o644))
	cmd := exec.CommandContext(ctx, bins.Peer, "lifecycle", "chaincode", "calculatepackageid", file)
	cmd.Env = []string{"FABRIC_CFG_PATH=" + bins.SampleConfig, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "invalid label")
	_, err = ccaas.Parse(bad)
	require.ErrorIs(t, err, ccaas.ErrInvalid)
}
