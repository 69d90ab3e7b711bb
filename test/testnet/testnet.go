// Package testnet gives integration test packages a real Fabric network.
//
//	var net *network.Network
//
//	func TestMain(m *testing.M) { os.Exit(testnet.Run(m, &net)) }
//
// Each test package gets its own network in its own temporary state
// directory on its own free ports, so `go test ./...` can run packages in
// parallel. Set IOTLEDGER_TEST_NETWORK to the state directory of a network
// that is already up to reuse it (it is then left running).
package testnet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iotledger/iotledger/network"
)

// Environment variables the harness reads.
const (
	// EnvNetwork names the state directory of a running network to reuse.
	EnvNetwork = "IOTLEDGER_TEST_NETWORK"
	// envGuard turns the test binary into the guard of a network (see guard).
	envGuard = "IOTLEDGER_TESTNET_GUARD"
)

// UpTimeout bounds the bring-up, which includes building the Fabric binaries
// on a machine that has never built them (several minutes on 2 cores).
const UpTimeout = 25 * time.Minute

// Run starts one network for the test package (or reuses the one named by
// IOTLEDGER_TEST_NETWORK, which it then does not tear down), stores it in
// *dst, runs m.Run(), and always tears down what it started, also when a
// test panics. If the test binary is killed (e.g. by go test's -timeout), a
// guard process it started stops the network. Run returns the exit code.
func Run(m *testing.M, dst **network.Network) int {
	return RunWith(m, dst, network.Options{})
}

// RunWith is Run with options for the network it brings up (StateDir and
// Progress are the harness's own), for a package whose tests need another
// shape of network, e.g. orgs named after the story they tell.
func RunWith(m *testing.M, dst **network.Network, opts network.Options) int {
	if spec := os.Getenv(envGuard); spec != "" {
		return guard(spec)
	}
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests runs none: no network needed
	}
	if dir := os.Getenv(EnvNetwork); dir != "" {
		n, err := network.Load(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testnet: %s=%s: %v\n", EnvNetwork, dir, err)
			return 1
		}
		*dst = n
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "iotledger-testnet-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "testnet: %v\n", err)
		return 1
	}
	stateDir := filepath.Join(tmp, "network")
	stopGuard := startGuard(stateDir)
	defer stopGuard()
	defer func() { _ = os.RemoveAll(tmp) }()

	ctx, cancel := context.WithTimeout(context.Background(), UpTimeout)
	opts.StateDir, opts.Progress = stateDir, prefixed("testnet: ")
	n, err := network.Up(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testnet: network up: %v\n", err)
		teardownDir(stateDir)
		return 1
	}
	*dst = n
	defer func() {
		// Tear down even when a test panics, then let the panic go on.
		if r := recover(); r != nil {
			teardown(n)
			panic(r)
		}
	}()
	code := m.Run()
	teardown(n)
	return code
}

// Guard protects a network that a test brings up itself (in stateDir): if
// the test binary is killed before the test's own cleanup runs, a guard
// process stops the network. The guard ends with the test. The guard is
// the test binary run again, so the package's TestMain must call Run.
func Guard(t testing.TB, stateDir string) {
	t.Helper()
	stop := startGuard(stateDir)
	t.Cleanup(stop)
}

func teardown(n *network.Network) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Down(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "testnet: network down: %v\n", err)
	}
}

// teardownDir stops whatever a failed Up left recorded in dir.
func teardownDir(dir string) {
	n, err := network.Load(dir)
	if errors.Is(err, network.ErrNotUp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testnet: %v\n", err)
		return
	}
	teardown(n)
}

// startGuard starts this test binary again as a guard process: it waits for
// the test process to exit and then stops the network if it is still
// recorded (i.e. the test process died without tearing it down).
func startGuard(stateDir string) (stop func()) {
	exe, err := os.Executable()
	if err != nil {
		return func() {}
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envGuard+"="+strconv.Itoa(os.Getpid())+":"+stateDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "testnet: no guard process (%v): a killed test run may leave the network running\n", err)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}

// guard is the guard process's main: "<parent pid>:<state dir>".
func guard(spec string) int {
	pidStr, dir, ok := strings.Cut(spec, ":")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil {
		return 2
	}
	term := make(chan os.Signal, 1)
	notifyTerm(term)
	for {
		select {
		case <-term:
			return 0 // the test process tore the network down itself
		case <-time.After(time.Second):
		}
		if syscall.Kill(pid, 0) != nil {
			teardownDir(dir)
			if parent := filepath.Dir(dir); strings.HasPrefix(filepath.Base(parent), "iotledger-testnet-") {
				_ = os.RemoveAll(parent) //nolint:gosec // the temp dir Run made for this network
			}
			return 0
		}
	}
}
