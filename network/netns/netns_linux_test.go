//go:build linux

package netns_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/network/netns"
)

// namespace makes a namespace of its own with loopback up, removed after
// the test; it skips where namespaces cannot be made (not root, no ip).
func namespace(t *testing.T) *netns.Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "iltest-" + hex.EncodeToString(b)
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	require.NoError(t, err, "ip netns add: %s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	out, err = exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput()
	require.NoError(t, err, "lo up: %s", out)
	ns, err := netns.Open(name)
	require.NoError(t, err)
	require.Equal(t, name, ns.Name())
	return ns
}

func TestAListenerInTheNamespaceIsReachedFromItAndNotFromOutside(t *testing.T) {
	ns := namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	ln, err := ns.Listen(ctx, "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err.Error()
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		_, _ = c.Read(buf)
		accepted <- string(buf)
	}()
	addr := ln.Addr().String()

	// This process's own namespace has no such listener on its loopback.
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s answered in the test's own namespace: the listener is not in %s", addr, ns.Name())
	}

	// A connection made in the namespace reaches it, from any goroutine.
	c, err := ns.DialContext(ctx, "tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "hello", <-accepted)

	// The namespace lists the socket; this process's namespace does not.
	out, err := exec.Command("ip", "netns", "exec", ns.Name(), "cat", "/proc/net/tcp").CombinedOutput()
	require.NoError(t, err, "%s", out)
	port := ln.Addr().(*net.TCPAddr).Port
	require.Contains(t, string(out), portHex(port), "the namespace's socket table has no listener on %d", port)
}

func TestTheCallersThreadsStayInTheirOwnNamespace(t *testing.T) {
	ns := namespace(t)
	// Many listeners made in the namespace, then one in this process's
	// namespace: a thread left in the other namespace would put it there.
	for range 50 {
		ln, err := ns.Listen(t.Context(), "tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, ln.Close())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	require.NoError(t, err, "a listener made after the namespace's is not in this process's namespace")
	c.Close()
}

func TestOpenRefusesWhatIsNotANamedNamespace(t *testing.T) {
	for _, name := range []string{"", ".", "..", "../etc", "a/b", "iotledger-no-such-namespace"} {
		_, err := netns.Open(name)
		require.Error(t, err, "Open(%q)", name)
	}
	// A plain file where a namespace would be bound.
	if os.Geteuid() != 0 {
		return
	}
	require.NoError(t, os.MkdirAll(netns.Dir, 0o755))
	plain := filepath.Join(netns.Dir, "iltest-plain-"+hex.EncodeToString([]byte(t.Name()))[:8])
	require.NoError(t, os.WriteFile(plain, nil, 0o600))
	t.Cleanup(func() { _ = os.Remove(plain) })
	_, err := netns.Open(filepath.Base(plain))
	require.ErrorContains(t, err, "is not a namespace")
}

func TestDialNeedsAnAddressNotAName(t *testing.T) {
	ns := namespace(t)
	_, err := ns.DialContext(t.Context(), "tcp", "localhost:80")
	require.ErrorContains(t, err, "an IP address and port is needed")
}

// portHex is how /proc/net/tcp writes a port: ":1F90" for 8080.
func portHex(port int) string {
	const digits = "0123456789ABCDEF"
	return ":" + string([]byte{digits[port>>12&15], digits[port>>8&15], digits[port>>4&15], digits[port&15]})
}
