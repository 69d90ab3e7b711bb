package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const patchOrig = `package x

func a() {
	one()
	two()
}

func b() {}
`

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// patchFor builds a patch file for x.go from a header sum and diff body.
func patchFor(sha, body string) string {
	return "A test patch.\n\nOriginal-SHA256: " + sha + "  x.go\n\n--- a/x.go\n+++ b/x.go\n" + body
}

func TestSourcePatchAppliesOnlyToItsExactOriginal(t *testing.T) {
	good := "@@ -3,4 +3,5 @@\n func a() {\n-\tone()\n+\tuno()\n \ttwo()\n+\tthree()\n }\n@@ -8,0 +9,2 @@\n+\n+func c() {}\n"
	for name, tc := range map[string]struct {
		patch, orig string
		want        string // patched file, or
		err         string // the error it is refused with
	}{
		"replace, add and append": {
			patch: patchFor(sum(patchOrig), good), orig: patchOrig,
			want: "package x\n\nfunc a() {\n\tuno()\n\ttwo()\n\tthree()\n}\n\nfunc b() {}\n\nfunc c() {}\n",
		},
		"an original that changed": {
			patch: patchFor(sum(patchOrig), good), orig: patchOrig + "// edited\n",
			err: "the patch was made for " + sum(patchOrig),
		},
		"context not where the hunk says": {
			patch: patchFor(sum(patchOrig), "@@ -2,2 +2,2 @@\n func a() {\n-\tone()\n+\tuno()\n"), orig: patchOrig,
			err: `line 2 is not "func a() {"`,
		},
		"no sum for the file": {
			patch: "--- a/x.go\n+++ b/x.go\n" + good, err: "no Original-SHA256 line",
		},
		"hunk counts that do not add up": {
			patch: patchFor(sum(patchOrig), "@@ -3,4 +3,4 @@\n func a() {\n-\tone()\n+\tuno()\n \ttwo()\n"), err: "cut short",
		},
		"path out of the module": {
			patch: "Original-SHA256: " + sum(patchOrig) + "  ../x.go\n--- a/../x.go\n+++ b/../x.go\n" + good,
			err:   "want \"--- a/<path>\"",
		},
		"no final newline": {
			patch: patchFor(sum(patchOrig), "@@ -8 +8 @@\n-func b() {}\n+func b() {}\n\\ No newline at end of file\n"), err: "final newline",
		},
		"no file at all": {patch: "just words\n", err: "changes no file"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := parsePatch("t.patch", []byte(tc.patch))
			if err == nil {
				require.Len(t, p.Files, 1)
				var out []byte
				out, err = p.Files[0].apply([]byte(tc.orig))
				if tc.err == "" {
					require.NoError(t, err)
					require.Equal(t, tc.want, string(out))
					return
				}
			}
			require.Error(t, err)
			require.ErrorContains(t, err, tc.err)
			if pe := (*PatchError)(nil); errors.As(err, &pe) {
				require.ErrorIs(t, err, ErrPatch)
			}
		})
	}
}

func TestAChangedOriginalIsRefusedWithThePatchAndFileNamed(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "x.go"), []byte(patchOrig+"// edited\n"), 0o644))
	p, err := parsePatch("0001-t.patch", []byte(patchFor(sum(patchOrig), "@@ -4 +4 @@\n-\tone()\n+\tuno()\n")))
	require.NoError(t, err)
	_, err = patchFiles([]sourcePatch{*p}, root)
	require.ErrorIs(t, err, ErrPatch)
	require.ErrorContains(t, err, "patch 0001-t.patch, x.go: the original has SHA-256")
}

func TestPatchedModuleIsACopyNamedByAReplaceDirective(t *testing.T) {
	root, modDir, dir := t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/m\n"), 0o444))
	require.NoError(t, os.WriteFile(filepath.Join(root, "sub", "x.go"), []byte(patchOrig), 0o444))
	require.NoError(t, os.WriteFile(filepath.Join(modDir, "go.mod"), []byte("module tools\n\nrequire example.com/m v1.0.0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(modDir, "go.sum"), []byte("sums\n"), 0o644))

	modfile, err := writePatchedModule(modDir, dir, "example.com/m", root, map[string][]byte{"sub/x.go": []byte("package x\n")})
	require.NoError(t, err)
	gomod, err := os.ReadFile(modfile)
	require.NoError(t, err)
	require.Contains(t, string(gomod), "require example.com/m v1.0.0\n")
	require.Contains(t, string(gomod), "\nreplace example.com/m => "+filepath.Join(dir, "src")+"\n")
	gosum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	require.NoError(t, err)
	require.Equal(t, "sums\n", string(gosum))
	got, err := os.ReadFile(filepath.Join(dir, "src", "sub", "x.go"))
	require.NoError(t, err)
	require.Equal(t, "package x\n", string(got))
	got, err = os.ReadFile(filepath.Join(dir, "src", "go.mod"))
	require.NoError(t, err)
	require.Equal(t, "module example.com/m\n", string(got))
	orig, err := os.ReadFile(filepath.Join(root, "sub", "x.go"))
	require.NoError(t, err)
	require.Equal(t, patchOrig, string(orig), "the original is left alone")
}

func TestPinKeyChangesWithTheSourcePatches(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "tools.go"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644))
	}
	unpatched, err := pinKey(dir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, patchDir), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, patchDir, "README"), []byte("not a patch"), 0o644))
	same, err := pinKey(dir)
	require.NoError(t, err)
	require.Equal(t, unpatched, same)

	require.NoError(t, os.WriteFile(filepath.Join(dir, patchDir, "0001-x.patch"), []byte("one"), 0o644))
	patched, err := pinKey(dir)
	require.NoError(t, err)
	require.NotEqual(t, unpatched, patched)
	require.NoError(t, os.WriteFile(filepath.Join(dir, patchDir, "0001-x.patch"), []byte("two"), 0o644))
	changed, err := pinKey(dir)
	require.NoError(t, err)
	require.NotEqual(t, patched, changed)
}

// TestFabricPatchesApplyToThePinnedSource applies the patches of the Fabric
// tools module to the pinned Fabric source in the module cache (downloading
// it if needed) and checks the result is the WAL fix: the node syncs the WAL
// itself and nothing in the etcdraft package uses WALSyncC any more; unless
// -short, it compiles the patched package as the binary build does.
func TestFabricPatchesApplyToThePinnedSource(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	modDir, err := filepath.Abs(filepath.Join("tools", "fabric"))
	require.NoError(t, err)
	patches, err := loadPatches(modDir)
	require.NoError(t, err)
	require.NotEmpty(t, patches)
	root, err := downloadModule(ctx, goCmd, modDir, fabricTools.Patched)
	require.NoError(t, err)
	patched, err := patchFiles(patches, root)
	require.NoError(t, err)
	require.Contains(t, patched, "orderer/consensus/etcdraft/node.go")

	pkg := filepath.Join(root, "orderer", "consensus", "etcdraft")
	entries, err := os.ReadDir(pkg)
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		src, ok := patched["orderer/consensus/etcdraft/"+e.Name()]
		if !ok {
			src, err = os.ReadFile(filepath.Join(pkg, e.Name()))
			require.NoError(t, err)
		}
		_, err = parser.ParseFile(fset, e.Name(), src, parser.AllErrors)
		require.NoError(t, err)
		require.NotContains(t, string(src), "WALSyncC", e.Name())
		if e.Name() == "node.go" {
			require.Contains(t, string(src), "n.maybeSyncWAL(rd.CommittedEntries)\n\t\t\t\tn.chain.applyC <- apply{")
		}
	}

	if testing.Short() {
		return
	}
	dir := t.TempDir()
	modfile, err := writePatchedModule(modDir, dir, fabricTools.Patched, root, patched)
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, goCmd, "build", "-modfile", modfile, "github.com/hyperledger/fabric/orderer/consensus/etcdraft")
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd = exec.CommandContext(ctx, goCmd, "list", "-modfile", modfile, "-f", "{{.Dir}}", "github.com/hyperledger/fabric/orderer/consensus/etcdraft")
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err = cmd.Output()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "src", "orderer", "consensus", "etcdraft"), strings.TrimSpace(string(out)), "the build reads the patched copy")
}
