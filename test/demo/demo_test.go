// Package demo_test runs `iotledger demo` end to end, as `make demo` does,
// on a network of its own, so the command a newcomer types first keeps working.
package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func TestDemoRunsEndToEndAndTearsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Fabric network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	bin := filepath.Join(t.TempDir(), "iotledger")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/iotledger/iotledger/cmd/iotledger")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	t.Run("on loopback", func(t *testing.T) { runDemo(ctx, t, bin, nil) })
	// `make demo HOSTS=1`: every org's peer, CA and chaincode servers in
	// its namespace (the network package), and the demo's hub, index and
	// console of each org there too.
	t.Run("in hosts mode", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("hosts mode makes network namespaces: root only")
		}
		runDemo(ctx, t, bin, func(t *testing.T, state, text string) { requireOrgServicesInTheirNamespaces(t, state, text) }, "--hosts")
	})
}

// runDemo runs the demo with args, checks what it printed and did, and
// takes its network down; whileKept runs while the demo keeps its console.
func runDemo(ctx context.Context, t *testing.T, bin string, whileKept func(t *testing.T, state, text string), args ...string) {
	state := filepath.Join(t.TempDir(), "net")
	// --keep, as `make demo KEEP=1` runs it: once the demo is done, its
	// console must still answer; then Ctrl-C, and the network is taken
	// down with the CLI.
	var stdout, stderr bytes.Buffer
	demo := exec.CommandContext(ctx, bin, append([]string{"demo", "--state-dir", state, "--duration", "20s", "--devices", "2", "--keep", "--console", "127.0.0.1:0"}, args...)...)
	pipe, err := demo.StdoutPipe()
	require.NoError(t, err)
	demo.Stderr = &stderr
	require.NoError(t, demo.Start())
	t.Cleanup(func() {
		_ = demo.Process.Kill()
		_ = exec.Command(bin, "network", "down", "--state-dir", state).Run()
	})
	lines := bufio.NewScanner(pipe)
	for lines.Scan() {
		stdout.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "is still serving at") {
			break
		}
	}
	text := stdout.String()
	require.Contains(t, text, "is still serving at", "the demo ended without keeping its console (output:\n%s\nstderr: %s)", text, stderr.String())
	requireDemoConsoleAnswersOrg1Operator(t, text)
	if whileKept != nil {
		whileKept(t, state, text)
	}
	require.NoError(t, demo.Process.Signal(os.Interrupt))
	rest, err := io.ReadAll(pipe)
	require.NoError(t, err)
	stdout.Write(rest)
	err = demo.Wait()
	t.Logf("demo output:\n%s", stdout.String())
	require.NoError(t, err, "demo failed: %s", stderr.String())

	text = stdout.String()
	for _, want := range []string{
		"received command",                      // the rule's command reached the device over MQTT
		"acknowledged it (signed with its key)", // and its ack went back
		"was quarantined",                       // the quarantine rule suspended and disconnected a device
		"after the revocation was submitted",    // revocation cut the device off
		"it tries to reconnect: hub refused",    // and it cannot come back
		"refused (ACCESS_DENIED)",               // the other org cannot read what was not shared
		"index follows the channel",             // the hospital's index serves its readings
		"verified offline in",                   // an outsider checked the receipt with the anchor alone
		"Network kept (KEEP=1)",
	} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "NOT AS EXPECTED")

	committed := regexp.MustCompile(`committed on the ledger\s+(\d+)`).FindStringSubmatch(text)
	require.Len(t, committed, 2, "summary has the committed count")
	n, err := strconv.Atoi(committed[1])
	require.NoError(t, err)
	require.Greater(t, n, 10, "simulated devices' readings reached the ledger")

	down := exec.CommandContext(ctx, bin, "network", "down", "--state-dir", state)
	out, err := down.CombinedOutput()
	require.NoError(t, err, "network down: %s", out)

	// The network is gone; the receipt still verifies, offline, from the CLI.
	verify := exec.CommandContext(ctx, bin, "receipt", "verify", filepath.Join(filepath.Dir(state), "demo-receipt.json"), "--anchor", filepath.Join(filepath.Dir(state), "demo-anchor.json"))
	out, err = verify.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "VERIFIED")
	require.Contains(t, string(out), "Org1MSP, Org2MSP")

	_, err = os.Stat(filepath.Join(state, "network.json"))
	require.True(t, os.IsNotExist(err), "network down removed the demo's network state")
}

// requireDemoConsoleAnswersOrg1Operator signs in to the console the demo
// printed with the PKCS#12 file and password it printed, over mutual TLS,
// trusting the CA it named: the console knows Org1's operator, and its
// fleet overview counts the readings the demo's devices committed.
func requireDemoConsoleAnswersOrg1Operator(t *testing.T, text string) {
	t.Helper()
	url := regexp.MustCompile(`Org1's web console at (https://\S+/)`).FindStringSubmatch(text)
	require.Len(t, url, 2, "the demo prints its console's address")
	p12 := regexp.MustCompile(`import (\S+\.p12) into the browser \(password: (\S+)\)`).FindStringSubmatch(text)
	require.Len(t, p12, 3, "the demo prints the operator's PKCS#12 file and its password")
	ca := regexp.MustCompile(`trust Org1's CA (\S+) for the server certificate`).FindStringSubmatch(text)
	require.Len(t, ca, 2, "the demo names the CA to trust")

	data, err := os.ReadFile(p12[1])
	require.NoError(t, err)
	key, cert, _, err := pkcs12.DecodeChain(data, p12[2])
	require.NoError(t, err, "the PKCS#12 file opens with the printed password")
	caPEM, err := os.ReadFile(ca[1])
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}},
	}}}
	get := func(path string, into any) {
		t.Helper()
		res, err := c.Get(url[1] + path)
		require.NoError(t, err)
		defer func() { _ = res.Body.Close() }()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, body)
		require.NoError(t, json.Unmarshal(body, into), "%s: %s", path, body)
	}
	var me struct{ Org, MSPID, Name, Role string }
	get("api/v1/me", &me)
	require.Equal(t, "Org1", me.Org)
	require.Equal(t, "Org1MSP", me.MSPID)
	require.Equal(t, "operator", me.Name)
	require.Equal(t, "operator", me.Role)
	var rate struct {
		Readings int `json:"readings"`
		ByOrg    []struct {
			MSPID    string `json:"mspId"`
			Readings int    `json:"readings"`
		} `json:"byOrg"`
	}
	get("api/v1/fleet/throughput?window=1h", &rate)
	require.Greater(t, rate.Readings, 10, "the console counts the readings the demo committed")
	orgs := map[string]int{}
	for _, o := range rate.ByOrg {
		orgs[o.MSPID] = o.Readings
	}
	require.Positive(t, orgs["Org1MSP"], "the hospital's hub committed readings")
	require.Positive(t, orgs["Org2MSP"], "the logistics firm's hub committed readings")

	// Without a client certificate the handshake itself fails.
	bare := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	res, err := bare.Get(url[1] + "api/v1/me")
	if err == nil {
		_ = res.Body.Close()
	}
	require.Error(t, err, "the console served a request without a client certificate")
}

// requireOrgServicesInTheirNamespaces checks a hosts-mode demo: each org's
// hub listened on its org's address, which exists only inside the org's
// namespace; Org1's console listens there, in Org1's socket table and not
// in this process's; and Org1's side connects to its peer from inside.
func requireOrgServicesInTheirNamespaces(t *testing.T, state, text string) {
	t.Helper()
	var st struct {
		Hosts struct {
			Hosts []struct{ Name, Netns, IP string }
		}
	}
	b, err := os.ReadFile(filepath.Join(state, "network.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	hosts := map[string]struct{ Netns, IP string }{}
	for _, h := range st.Hosts.Hosts {
		hosts[h.Name] = struct{ Netns, IP string }{h.Netns, h.IP}
	}
	for _, org := range []string{"org1", "org2"} {
		h := hosts[org]
		require.NotEmpty(t, h.IP, "network.json has no host %s", org)
		m := regexp.MustCompile(`hub-` + org + ` in \S+ network namespace (\S+) \(([\d.]+)\): mqtts://([\d.]+):\d+ .*metrics http://([\d.]+):\d+/`).FindStringSubmatch(text)
		require.Len(t, m, 5, "the demo names where hub-%s runs", org)
		require.Equal(t, []string{h.Netns, h.IP, h.IP, h.IP}, m[1:], "hub-%s does not listen in its org's namespace", org)
	}

	org1 := hosts["org1"]
	console := regexp.MustCompile(`Org1's web console at https://([\d.]+):(\d+)/`).FindStringSubmatch(text)
	require.Len(t, console, 3)
	require.Equal(t, org1.IP, console[1], "the console does not listen on Org1's address")
	port, err := strconv.Atoi(console[2])
	require.NoError(t, err)
	inside := socketTable(t, org1.Netns)
	require.Contains(t, inside, socket{local: hexAddr(t, org1.IP, port), remote: "00000000:0000", state: tcpListen}, "Org1's namespace has no console listener")
	for _, s := range socketTable(t, "") {
		require.NotEqual(t, hexAddr(t, org1.IP, port), s.local, "the console's socket is in this process's namespace")
	}

	// Org1's peer listens on Org1's address; the console's index and ledger
	// connections reach it from that same address, inside the namespace.
	var prof struct{ Peer struct{ Address string } }
	b, err = os.ReadFile(filepath.Join(state, "org1", "connection.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &prof))
	host, p, err := net.SplitHostPort(prof.Peer.Address)
	require.NoError(t, err)
	require.Equal(t, org1.IP, host)
	peerPort, err := strconv.Atoi(p)
	require.NoError(t, err)
	peer := hexAddr(t, org1.IP, peerPort)
	fromInside := false
	for _, s := range inside {
		if s.remote == peer && s.state == tcpEstablished && strings.HasPrefix(s.local, peer[:9]) {
			fromInside = true
		}
	}
	require.True(t, fromInside, "nothing in Org1's namespace is connected to its peer %s from Org1's address", prof.Peer.Address)
}

const (
	tcpEstablished = "01"
	tcpListen      = "0A"
)

// socket is a row of /proc/net/tcp: addresses as the kernel writes them.
type socket struct{ local, remote, state string }

// socketTable reads the IPv4 TCP sockets of a namespace ("": this
// process's).
func socketTable(t *testing.T, ns string) []socket {
	t.Helper()
	cmd := exec.Command("cat", "/proc/net/tcp")
	if ns != "" {
		cmd = exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/tcp")
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var rows []socket
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 {
			rows = append(rows, socket{local: f[1], remote: f[2], state: f[3]})
		}
	}
	return rows
}

// hexAddr writes ip:port as /proc/net/tcp does: the address's four bytes
// in host order (little-endian here), then the port, in hex.
func hexAddr(t *testing.T, ip string, port int) string {
	t.Helper()
	a := net.ParseIP(ip).To4()
	require.NotNil(t, a, "%s is not IPv4", ip)
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port)
}
