package network

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// modulePath is the root module; the network builds the chaincode servers
// from its source tree and the Fabric tools from modules nested in it.
const modulePath = "github.com/iotledger/iotledger"

// toolModule is a small Go module under network/tools that pins the source
// of some Fabric commands. Keeping each in its own module stops Fabric's old
// dependency set from leaking into the project's module.
type toolModule struct {
	Dir      string   // relative to the source root
	Packages []string // main packages to build
	// Patched is the module that the patches under Dir/patches change at
	// build time (see fabricpatch.go); "" when the module carries none.
	Patched string
}

// The releases the network builds its Fabric commands from: the tool modules
// under network/tools pin them (binaries_test.go checks that these agree).
const (
	// FabricVersion is the Hyperledger Fabric release of the peer, orderer
	// and tools (network/tools/fabric pins its commit, FabricCommit).
	FabricVersion = "v2.5.0"
	// FabricCommit is the commit of FabricVersion that network/tools/fabric
	// requires (Fabric v2 is not a Go module under its major version, so
	// the module pins a pseudo-version of the tagged commit).
	FabricCommit = "bd8e24856939"
	// FabricCAVersion is the Hyperledger Fabric CA release of the CAs.
	FabricCAVersion = "v1.5.15"
)

var (
	fabricTools = toolModule{
		Dir: "network/tools/fabric",
		Packages: []string{
			"github.com/hyperledger/fabric/cmd/peer",
			"github.com/hyperledger/fabric/cmd/orderer",
			"github.com/hyperledger/fabric/cmd/configtxgen",
			"github.com/hyperledger/fabric/cmd/cryptogen",
			"github.com/hyperledger/fabric/cmd/osnadmin",
		},
		// patches/0001: the etcdraft restart deadlock of v2.5.0
		// (hyperledger/fabric#4199), fixed upstream in v2.5.3.
		Patched: "github.com/hyperledger/fabric",
	}
	fabricCATools = toolModule{
		Dir: "network/tools/fabricca",
		Packages: []string{
			"github.com/hyperledger/fabric-ca/cmd/fabric-ca-server",
			"github.com/hyperledger/fabric-ca/cmd/fabric-ca-client",
		},
	}
)

// Binaries are the absolute paths of the Fabric commands the network runs.
type Binaries struct {
	Peer         string `json:"peer"`
	Orderer      string `json:"orderer"`
	ConfigTxGen  string `json:"configtxgen"`
	CryptoGen    string `json:"cryptogen"`
	OSNAdmin     string `json:"osnadmin"`
	CAServer     string `json:"fabricCAServer"`
	CAClient     string `json:"fabricCAClient"`
	SampleConfig string `json:"sampleConfig"` // Fabric's sampleconfig directory (core.yaml, orderer.yaml)
}

// FindSourceRoot returns the directory holding the iotledger module's go.mod:
// dir if given, else the first ancestor of the working directory that holds
// it, else the tree this package was compiled from.
func FindSourceRoot(dir string) (string, error) {
	if dir != "" {
		if isModuleRoot(dir) {
			return filepath.Abs(dir)
		}
		return "", fmt.Errorf("%s does not hold the %s module (no go.mod naming it)", dir, modulePath)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if isModuleRoot(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Dir(filepath.Dir(file))
		if isModuleRoot(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("cannot find the %s source tree: run from inside it or set --source-dir", modulePath)
}

func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(first) == "module "+modulePath
}

// BinaryCacheDir is where built Fabric commands are kept between networks:
// os.UserCacheDir()/iotledger/fabric, or $IOTLEDGER_CACHE_DIR/fabric.
func BinaryCacheDir() (string, error) {
	if d := os.Getenv("IOTLEDGER_CACHE_DIR"); d != "" {
		return filepath.Join(d, "fabric"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locate the user cache directory: %w", err)
	}
	return filepath.Join(d, "iotledger", "fabric"), nil
}

// EnsureBinaries builds the pinned Fabric and Fabric CA commands unless a
// build for the same pins (go.mod, go.sum, Go version, platform) is already
// cached. A lock file serialises concurrent builds of the same pins, so
// parallel test packages build once and share the result.
func EnsureBinaries(ctx context.Context, sourceRoot string, log io.Writer) (*Binaries, error) {
	cache, err := BinaryCacheDir()
	if err != nil {
		return nil, err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build Fabric: %w", err)
	}
	fabDir, err := buildTools(ctx, goCmd, cache, sourceRoot, fabricTools, log)
	if err != nil {
		return nil, err
	}
	caDir, err := buildTools(ctx, goCmd, cache, sourceRoot, fabricCATools, log)
	if err != nil {
		return nil, err
	}
	sample, err := fabricSampleConfig(ctx, goCmd, filepath.Join(sourceRoot, fabricTools.Dir))
	if err != nil {
		return nil, err
	}
	return &Binaries{
		Peer:         filepath.Join(fabDir, "peer"),
		Orderer:      filepath.Join(fabDir, "orderer"),
		ConfigTxGen:  filepath.Join(fabDir, "configtxgen"),
		CryptoGen:    filepath.Join(fabDir, "cryptogen"),
		OSNAdmin:     filepath.Join(fabDir, "osnadmin"),
		CAServer:     filepath.Join(caDir, "fabric-ca-server"),
		CAClient:     filepath.Join(caDir, "fabric-ca-client"),
		SampleConfig: sample,
	}, nil
}

// pinKey identifies one build of a tools module: the hash of its go.mod,
// go.sum, tools.go and source patches, the Go version and the platform.
// A build made before a patch was added or changed is not reused.
func pinKey(modDir string) (string, error) {
	h := sha256.New()
	files := []string{"go.mod", "go.sum", "tools.go"}
	patches, err := filepath.Glob(filepath.Join(modDir, patchDir, "*.patch")) // sorted
	if err != nil {
		return "", err
	}
	for _, p := range patches {
		files = append(files, filepath.Join(patchDir, filepath.Base(p)))
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(modDir, f))
		if err != nil {
			return "", fmt.Errorf("read tools module: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func buildTools(ctx context.Context, goCmd, cache, sourceRoot string, m toolModule, log io.Writer) (string, error) {
	modDir := filepath.Join(sourceRoot, m.Dir)
	key, err := pinKey(modDir)
	if err != nil {
		return "", err
	}
	name := filepath.Base(m.Dir)
	out := filepath.Join(cache, name+"-"+key)
	if complete(out, m) {
		return out, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("create binary cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, name+"-"+key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(out, m) { // another process built it while we waited
		return out, nil
	}
	tmp, err := os.MkdirTemp(cache, name+"-build-")
	if err != nil {
		return "", fmt.Errorf("create build directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if log != nil {
		fmt.Fprintf(log, "building %s (pin %s) into %s; this takes a few minutes once\n", m.Dir, key, out)
	}
	args := []string{"build", "-trimpath", "-o", tmp + string(os.PathSeparator)}
	if m.Patched != "" {
		patchArgs, cleanup, err := patchedBuild(ctx, goCmd, cache, modDir, m)
		if err != nil {
			return "", err
		}
		defer cleanup()
		args = append(args, patchArgs...)
	}
	args = append(args, m.Packages...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", m.Dir, err, tail(stderr.String(), 40))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("move built %s into the cache: %w", m.Dir, err)
	}
	return out, nil
}

func complete(dir string, m toolModule) bool {
	for _, p := range m.Packages {
		st, err := os.Stat(filepath.Join(dir, filepath.Base(p)))
		if err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

func fabricSampleConfig(ctx context.Context, goCmd, modDir string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/hyperledger/fabric")
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("locate Fabric's sampleconfig: %w: %s", err, strings.TrimSpace(string(out)))
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "sampleconfig")
	if _, err := os.Stat(filepath.Join(dir, "core.yaml")); err != nil {
		return "", fmt.Errorf("fabric sampleconfig: %w", err)
	}
	return dir, nil
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
