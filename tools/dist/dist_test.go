package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The full cross-build (every command, both architectures) takes minutes on
// a cold cache; -short builds only the CLI for linux/amd64.
func distOptions(t *testing.T) options {
	o := options{Out: t.TempDir(), Platforms: strings.Split(defaultPlatforms, ",")}
	if testing.Short() {
		o.Platforms = []string{"linux/amd64"}
		o.Commands = []string{"iotledger"}
	}
	return o
}

func TestDistBuildsVerifiableStaticArchivesThatReportTheirCommit(t *testing.T) {
	o := distOptions(t)
	head := strings.TrimSpace(gitOut(t, "rev-parse", "HEAD"))
	dirty := strings.TrimSpace(gitOut(t, "status", "--porcelain")) != ""
	rel, err := build(t.Context(), o)
	require.NoError(t, err)
	require.Equal(t, head, rel.Commit)

	// One archive per platform, each listed in SHA256SUMS with its sum.
	require.Len(t, rel.Archives, len(o.Platforms))
	sums := readSums(t, rel.Sums)
	require.Len(t, sums, len(o.Platforms), "SHA256SUMS lists the archives and nothing else")
	for _, p := range o.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		name := "iotledger_" + rel.Version + "_" + goos + "_" + goarch + ".tar.gz"
		require.FileExists(t, filepath.Join(o.Out, name))
		sum, err := fileSHA256(filepath.Join(o.Out, name))
		require.NoError(t, err)
		require.Equal(t, sum, sums[name], "%s verifies", name)
	}
	if sha, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.CommandContext(t.Context(), sha, "-c", sumsFile)
		cmd.Dir = o.Out
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "sha256sum -c: %s", out)
	}

	commands := o.Commands
	if len(commands) == 0 {
		commands = []string{"iotledger", "iotledger-chaincode", "iotledger-refchaincode"}
	}
	for _, p := range o.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		dir := extract(t, filepath.Join(o.Out, "iotledger_"+rel.Version+"_"+goos+"_"+goarch+".tar.gz"))
		require.FileExists(t, filepath.Join(dir, "README.md"))
		for _, c := range commands {
			requireStaticBinary(t, filepath.Join(dir, c), goarch)
		}
		if goarch != "amd64" {
			continue
		}
		out, err := exec.CommandContext(t.Context(), filepath.Join(dir, "iotledger"), "version", "-o", "json").Output()
		require.NoError(t, err)
		var v struct {
			Version   string `json:"version"`
			Commit    string `json:"commit"`
			Dirty     bool   `json:"dirty"`
			BuildTime string `json:"buildTime"`
			Platform  string `json:"platform"`
		}
		require.NoError(t, json.Unmarshal(out, &v))
		require.Equal(t, head, v.Commit)
		require.Equal(t, dirty, v.Dirty)
		require.Equal(t, rel.Version, v.Version)
		require.NotEmpty(t, v.BuildTime)
		require.Equal(t, "linux/amd64", v.Platform)
	}

	// The same commit builds the same bytes.
	again, err := build(t.Context(), options{Out: t.TempDir(), Platforms: o.Platforms[:1], Commands: []string{"iotledger"}})
	require.NoError(t, err)
	if len(o.Commands) == 1 {
		first, err := os.ReadFile(rel.Sums)
		require.NoError(t, err)
		second, err := os.ReadFile(again.Sums)
		require.NoError(t, err)
		require.Equal(t, string(first), string(second), "a rebuild gives the same archive")
	}
}

func TestDistRefusesWhatItCannotBuild(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want string
	}{
		{"unknown command", options{Platforms: []string{"linux/amd64"}, Commands: []string{"iotledgr"}}, `no command "iotledgr"`},
		{"platform without an arch", options{Platforms: []string{"linux"}, Commands: []string{"iotledger"}}, "want GOOS/GOARCH"},
		{"version that cannot name a file", options{Platforms: []string{"linux/amd64"}, Version: "v1/2"}, "no spaces or slashes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Out = t.TempDir()
			_, err := build(t.Context(), tt.o)
			require.ErrorContains(t, err, tt.want)
			_, statErr := os.Stat(filepath.Join(tt.o.Out, sumsFile))
			require.ErrorIs(t, statErr, os.ErrNotExist, "no SHA256SUMS of a failed build")
		})
	}
}

func TestPrepareOutRemovesAnEarlierReleaseOnly(t *testing.T) {
	out := t.TempDir()
	for _, name := range []string{"iotledger_v1_linux_amd64.tar.gz", sumsFile, "notes.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(out, name), []byte("x"), 0o600))
	}
	require.NoError(t, prepareOut(out))
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "notes.txt", entries[0].Name())
}

func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "git", args...).Output()
	require.NoError(t, err)
	return string(out)
}

// readSums parses SHA256SUMS into file name → sum.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path) //nolint:gosec // G304: the test's own output
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "line %q is `<sum>  <file>`", sc.Text())
		require.Len(t, sum, 64)
		sums[name] = sum
	}
	require.NoError(t, sc.Err())
	return sums
}

// extract unpacks a .tar.gz into a temporary directory and returns the one
// top-level directory it holds.
func extract(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive) //nolint:gosec // G304: the test's own output
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	dest := t.TempDir()
	top := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		first, _, _ := strings.Cut(h.Name, "/")
		require.True(t, top == "" || top == first, "one top-level directory, got %s and %s", top, first)
		top = first
		require.NotContains(t, h.Name, "..")
		target := filepath.Join(dest, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(target, 0o750))
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o750))
			w, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode)) //nolint:gosec // G304,G115: names checked above
			require.NoError(t, err)
			_, err = io.Copy(w, tr) //nolint:gosec // G110: the test's own archive
			require.NoError(t, err)
			require.NoError(t, w.Close())
		default:
			t.Fatalf("unexpected entry %s of type %c", h.Name, h.Typeflag)
		}
	}
	require.Equal(t, strings.TrimSuffix(filepath.Base(archive), ".tar.gz"), top)
	return filepath.Join(dest, top)
}

// requireStaticBinary checks that path is an executable for goarch that
// needs no dynamic loader, built with CGO_ENABLED=0 and -trimpath.
func requireStaticBinary(t *testing.T, path, goarch string) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&0o111, "%s is executable", path)
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	require.Equal(t, machine, f.Machine, "%s is built for %s", path, goarch)
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "%s is statically linked (no dynamic loader)", path)
	}
	bi, err := buildinfo.ReadFile(path)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	require.Equal(t, "0", settings["CGO_ENABLED"])
	require.Equal(t, "true", settings["-trimpath"])
	require.Equal(t, goarch, settings["GOARCH"])
}
