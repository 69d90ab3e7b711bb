package network_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	iotclient "github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// TestHostsModeRunsEveryOrgAndOrdererInItsOwnNamespace brings up a network
// of its own in hosts mode and checks what crosses host boundaries: nodes
// listen on their namespace's address only, a MAJORITY transaction commits
// through the gateway over the bridge with TLS verified by the nodes' real
// names, a hub run in Org1's namespace ingests a device's reading, no org's
// directory holds another org's private key, and down removes every
// namespace, veth and the bridge.
func TestHostsModeRunsEveryOrgAndOrdererInItsOwnNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hosts mode needs root (it creates network namespaces); run the tests as root")
	}
	stateDir := filepath.Join(t.TempDir(), "hosts-net")
	testnet.Guard(t, stateDir)
	ctx, cancel := context.WithTimeout(t.Context(), testnet.UpTimeout)
	defer cancel()
	n, err := network.Up(ctx, network.Options{StateDir: stateDir, Hosts: true, Progress: testWriter{t}})
	require.NoError(t, err)
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			_ = n.Down(context.WithoutCancel(ctx))
		}
	})

	hs, ok := n.Hosts()
	require.True(t, ok, "hosts mode recorded")
	subnet := netip.MustParsePrefix(hs.Subnet)
	for _, h := range hs.Hosts {
		require.LessOrEqual(t, len(h.Veth), 15, "interface name %s", h.Veth)
	}
	require.LessOrEqual(t, len(hs.Bridge), 15)

	t.Run("nodes listen on their namespace addresses, not loopback", func(t *testing.T) {
		seen := map[string]string{} // IP -> first node on it
		for _, nd := range n.Nodes() {
			require.NotEmpty(t, nd.Netns, nd.Name)
			ip := netip.MustParseAddr(nd.IP)
			require.True(t, subnet.Contains(ip), "%s listens on %s, outside %s", nd.Name, ip, subnet)
			host := nd.Org
			if nd.Kind == network.KindOrderer {
				host = nd.Name
				require.NotContains(t, seen, nd.IP, "orderer %s shares a host", nd.Name)
			}
			seen[nd.IP] = host
			c, err := net.DialTimeout("tcp", nd.Address(), 5*time.Second)
			require.NoError(t, err, "%s at %s", nd.Name, nd.Address())
			_ = c.Close()
			_, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", nd.Ports[network.PortListen]), time.Second)
			require.Error(t, err, "%s answers on loopback", nd.Name)
		}
		p, err := n.Profile("Org1")
		require.NoError(t, err)
		require.Equal(t, "peer0.org1.iotledger.local", p.Peer.ServerName, "clients verify the peer's real name")
	})

	p1, err := n.Profile("Org1")
	require.NoError(t, err)
	op, err := iotclient.Connect(ctx, p1, "operator")
	require.NoError(t, err)
	defer func() { _ = op.Close() }()
	signer, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	devID := "hosts-dev-1"

	t.Run("a MAJORITY transaction commits through the gateway", func(t *testing.T) {
		// Enrolling is endorsed by both orgs' peers (MAJORITY of two), each
		// in its own namespace, and ordered by the Raft orderers in theirs.
		testnet.Settle(ctx, t, n)
		_, err := op.EnrollDevice(ctx, api.EnrollRequest{ID: devID, Type: "reefer-sensor", PublicKey: signer.Public().PEM(), Activate: true})
		require.NoError(t, err)
		d, err := op.Device(ctx, devID)
		require.NoError(t, err)
		require.Equal(t, devID, d.ID)
	})

	t.Run("a hub in Org1's namespace ingests a device's reading", func(t *testing.T) {
		var org1 network.Host
		for _, h := range hs.Hosts {
			if h.Name == "org1" {
				org1 = h
			}
		}
		require.NotEmpty(t, org1.Netns)
		mqttAddr := net.JoinHostPort(org1.IP, fmt.Sprint(freeLoopbackPort(t)))
		httpAddr := net.JoinHostPort(org1.IP, fmt.Sprint(freeLoopbackPort(t)))
		data := t.TempDir()
		logPath := filepath.Join(data, "hub.log")
		logf, err := os.Create(logPath)
		require.NoError(t, err)
		hub := exec.Command("ip", "netns", "exec", org1.Netns, iotledgerBin, "hub", "--profile", n.ProfilePath("Org1"),
			"--identity", "hub", "--hub-id", "hosts-hub", "--mqtt", mqttAddr, "--http", httpAddr, "--data", data)
		hub.Stdout, hub.Stderr = logf, logf
		require.NoError(t, hub.Start())
		_ = logf.Close()
		t.Cleanup(func() {
			_ = hub.Process.Kill()
			_ = hub.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logPath)
				t.Logf("hub log:\n%s", b)
			}
		})
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + httpAddr + "/healthz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 2*time.Minute, 200*time.Millisecond, "hub did not come up (log %s)", logPath)

		// The device verifies the hub's TLS certificate (issued by Org1's CA
		// for the namespace's address) and reaches it through the bridge.
		caPEM, err := os.ReadFile(p1.HubTLS.CACert)
		require.NoError(t, err)
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM(caPEM))
		dev, err := device.New(device.Config{ID: devID, Signer: signer, Hub: mqttAddr, HubID: "hosts-hub", RootCAs: roots})
		require.NoError(t, err)
		defer func() { _ = dev.Close() }()
		require.NoError(t, dev.Connect(ctx))
		temp := 4.5
		seq, err := dev.Publish(ctx, reading.Payload{Values: []reading.Value{{Name: "temp", Unit: "Cel", Number: &temp}}})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			seen, err := op.Seen(ctx, devID, []uint64{seq})
			return err == nil && seen.Seqs[0].State == api.SeqAccepted
		}, 2*time.Minute, 200*time.Millisecond, "the reading never reached the ledger")
	})

	t.Run("a third org joins on a host of its own", func(t *testing.T) {
		created, err := n.CreateOrg(ctx, "City")
		require.NoError(t, err)
		data, err := os.ReadFile(created.Definition)
		require.NoError(t, err)
		def, err := network.ParseOrgDefinition(data)
		require.NoError(t, err)
		added, err := n.AddOrg(ctx, def, nil)
		require.NoError(t, err)
		joined, err := n.JoinOrg(ctx, "City")
		require.NoError(t, err)
		t.Logf("hosts mode: org create %s, add %s, join %s; in all %s", created.Took, added.Took, joined.Took, created.Took+added.Took+joined.Took)

		hs, _ = n.Hosts()
		var city network.Host
		for _, h := range hs.Hosts {
			if h.Name == "city" {
				city = h
			}
		}
		require.Equal(t, hs.Prefix+"-city", city.Netns, "the city has a host of its own")
		require.True(t, subnet.Contains(netip.MustParseAddr(city.IP)))
		require.Equal(t, len(hs.Hosts), namespacesOf(t, hs.Prefix), "its namespace exists")
		var cityNodes int
		for _, nd := range n.Nodes() {
			if nd.Org != "City" {
				require.NotEqual(t, city.IP, nd.IP, "%s shares the city's address", nd.Name)
				continue
			}
			cityNodes++
			require.Equal(t, city.Netns, nd.Netns, nd.Name)
			require.Equal(t, city.IP, nd.IP, nd.Name)
			c, err := net.DialTimeout("tcp", nd.Address(), 5*time.Second)
			require.NoError(t, err, "%s at %s", nd.Name, nd.Address())
			_ = c.Close()
		}
		require.GreaterOrEqual(t, cityNodes, 3, "the city's peer, CA and chaincode server")

		// The city's operator enrolls a device through the city's peer,
		// verified by its real name; MAJORITY is now two of three.
		pc, err := n.Profile("City")
		require.NoError(t, err)
		require.Equal(t, "peer0.city.iotledger.local", pc.Peer.ServerName)
		host, _, err := net.SplitHostPort(pc.Peer.Address)
		require.NoError(t, err)
		require.Equal(t, city.IP, host)
		cop, err := iotclient.Connect(ctx, pc, "operator")
		require.NoError(t, err)
		defer func() { _ = cop.Close() }()
		key, err := reading.GenerateKey(reading.ECDSAP256)
		require.NoError(t, err)
		testnet.Settle(ctx, t, n)
		_, err = cop.EnrollDevice(ctx, api.EnrollRequest{ID: "hosts-city-dev", Type: "air-quality", PublicKey: key.Public().PEM(), Activate: true})
		require.NoError(t, err)
		d, err := cop.Device(ctx, "hosts-city-dev")
		require.NoError(t, err)
		require.Equal(t, "CityMSP", d.Owner)
		_, err = op.Device(ctx, "hosts-city-dev")
		require.ErrorContains(t, err, "ACCESS_DENIED", "Org1 reads the city's device without a grant")
	})

	t.Run("no org's directory holds another org's private key", func(t *testing.T) {
		dirs := n.OrgDirs()
		require.Len(t, dirs, 4, "the orderers', Org1's, Org2's and the city's")
		owner := map[string]string{} // public key (DER) -> org whose dir holds its private key
		for org, dir := range dirs {
			keys := privateKeysUnder(t, dir)
			require.GreaterOrEqual(t, len(keys), 3, "%s: its own keys are in %s", org, dir)
			for pub, file := range keys {
				if other, ok := owner[pub]; ok && other != org {
					t.Errorf("%s holds a private key of %s (%s)", dir, other, file)
				}
				owner[pub] = org
			}
		}
		// Outside the org directories (configs, genesis block, chaincode
		// packages, logs) there is no private key at all.
		var outside []string
		entries, err := os.ReadDir(stateDir)
		require.NoError(t, err)
		for _, e := range entries {
			path := filepath.Join(stateDir, e.Name())
			if isOrgDir(dirs, path) || !e.IsDir() {
				continue
			}
			for _, file := range privateKeysUnder(t, path) {
				outside = append(outside, file)
			}
		}
		require.Empty(t, outside, "private keys outside every org's directory")
	})

	t.Run("stop keeps the namespaces, start re-creates a missing one", func(t *testing.T) {
		require.NoError(t, n.Stop(ctx))
		require.Equal(t, len(hs.Hosts), namespacesOf(t, hs.Prefix), "stop keeps every namespace")
		// As after a reboot: a namespace is gone.
		out, err := exec.Command("ip", "netns", "del", hs.Prefix+"-org2").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NoError(t, n.Start(ctx))
		require.Equal(t, len(hs.Hosts), namespacesOf(t, hs.Prefix))
		st, err := n.Status(ctx)
		require.NoError(t, err)
		require.True(t, st.Healthy, "every node healthy again on its recorded address")
		for _, nd := range n.Nodes() {
			require.True(t, nd.Running(), nd.Name)
		}
	})

	t.Run("down leaves no namespace, veth or bridge", func(t *testing.T) {
		downDone = true
		require.NoError(t, n.Down(ctx))
		out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NotContains(t, string(out), hs.Prefix, "links left")
		out, err = exec.Command("ip", "netns", "list").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NotContains(t, string(out), hs.Prefix, "namespaces left")
		_, err = os.Stat(stateDir)
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// namespacesOf counts the network namespaces whose name has the prefix.
func namespacesOf(t *testing.T, prefix string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Count(string(out), prefix+"-")
}

func isOrgDir(dirs map[string]string, path string) bool {
	for _, d := range dirs {
		if d == path {
			return true
		}
	}
	return false
}

// privateKeysUnder parses every PEM file under dir and returns the public
// halves (PKIX DER, as a string) of the private keys it finds, with a file
// holding each.
func privateKeysUnder(t *testing.T, dir string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if !strings.Contains(b.Type, "PRIVATE KEY") {
				continue
			}
			pub, err := publicHalf(b)
			require.NoError(t, err, "%s: a private key that does not parse", path)
			keys[pub] = path
		}
		return nil
	})
	require.NoError(t, err)
	return keys
}

func publicHalf(b *pem.Block) (string, error) {
	// The PEM type does not always say the format (Fabric CA writes SEC 1
	// keys as "PRIVATE KEY"): try each.
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(b.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
				return "", fmt.Errorf("%s: neither PKCS #8, SEC 1 nor PKCS #1", b.Type)
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return "", fmt.Errorf("%T is no signing key", key)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	return string(der), err
}

// freeLoopbackPort is a port from the kernel's ephemeral range: in a
// hosts-mode namespace nothing but the org's nodes listens, and their
// ports lie below that range.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// testWriter sends Up's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
