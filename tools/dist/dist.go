package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// defaultPlatforms are those a release is built for.
const defaultPlatforms = "linux/amd64,linux/arm64"

const (
	modulePath = "github.com/iotledger/iotledger"
	sumsFile   = "SHA256SUMS"
)

// options say what to build.
type options struct {
	Out       string   // output directory
	Platforms []string // GOOS/GOARCH
	Commands  []string // command names under cmd/; empty: all
	Version   string   // "": from git
	Log       *slog.Logger
}

// release is what build made.
type release struct {
	Version  string
	Commit   string
	Archives []string // paths
	Sums     string   // path of SHA256SUMS
}

// stamp is what the binaries are stamped with (see cmd/iotledger/version.go).
type stamp struct {
	version, commit string
	dirty           bool
	buildTime       time.Time
}

func (s stamp) ldflags() string {
	return strings.Join([]string{
		"-s", "-w",
		"-X", "main.stampVersion=" + s.version,
		"-X", "main.stampCommit=" + s.commit,
		"-X", "main.stampDirty=" + strconv.FormatBool(s.dirty),
		"-X", "main.stampBuildTime=" + s.buildTime.UTC().Format(time.RFC3339),
	}, " ")
}

// build makes the archives of every platform and their SHA256SUMS.
func build(ctx context.Context, o options) (*release, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	root, err := sourceRoot(ctx)
	if err != nil {
		return nil, err
	}
	cmds, err := mainPackages(ctx, root, o.Commands)
	if err != nil {
		return nil, err
	}
	st, err := stampOf(ctx, root, o.Version)
	if err != nil {
		return nil, err
	}
	docs, err := docFiles(root)
	if err != nil {
		return nil, err
	}
	if err := prepareOut(o.Out); err != nil {
		return nil, err
	}
	rel := &release{Version: st.version, Commit: st.commit}
	for _, p := range o.Platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("platform %q: want GOOS/GOARCH, e.g. linux/amd64", p)
		}
		o.Log.Info("building", "platform", p, "commands", len(cmds), "version", st.version)
		a, err := buildArchive(ctx, root, o.Out, goos, goarch, cmds, docs, st)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		rel.Archives = append(rel.Archives, a)
	}
	rel.Sums = filepath.Join(o.Out, sumsFile)
	if err := writeSums(rel.Sums, rel.Archives); err != nil {
		return nil, err
	}
	return rel, nil
}

// sourceRoot is the directory of the iotledger module being built.
func sourceRoot(ctx context.Context) (string, error) {
	out, err := output(ctx, "", "go", "list", "-m", "-f", "{{.Path}} {{.Dir}}")
	if err != nil {
		return "", err
	}
	mod, dir, _ := strings.Cut(strings.TrimSpace(out), " ")
	if mod != modulePath {
		return "", fmt.Errorf("run dist inside the %s module (the current module is %q)", modulePath, mod)
	}
	return dir, nil
}

// mainPackages are the import paths of the commands under cmd/, or of only
// those named.
func mainPackages(ctx context.Context, root string, only []string) ([]string, error) {
	out, err := output(ctx, root, "go", "list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`, "./cmd/...")
	if err != nil {
		return nil, err
	}
	var pkgs []string
	for _, p := range strings.Fields(out) {
		if len(only) == 0 || slices.Contains(only, path.Base(p)) {
			pkgs = append(pkgs, p)
		}
	}
	for _, name := range only {
		if !slices.ContainsFunc(pkgs, func(p string) bool { return path.Base(p) == name }) {
			return nil, fmt.Errorf("no command %q under cmd/", name)
		}
	}
	if len(pkgs) == 0 {
		return nil, errors.New("no main packages under cmd/")
	}
	return pkgs, nil
}

// stampOf reads the commit, whether the tree has uncommitted changes and the
// version from git. The build time is SOURCE_DATE_EPOCH, else the commit's
// time, so that a rebuild of a commit gives the same archives.
func stampOf(ctx context.Context, root, version string) (stamp, error) {
	var st stamp
	out, err := output(ctx, root, "git", "log", "-1", "--format=%H %ct")
	if err != nil {
		return st, fmt.Errorf("the release is stamped with its commit: %w", err)
	}
	hash, secs, _ := strings.Cut(strings.TrimSpace(out), " ")
	commitTime, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return st, fmt.Errorf("git log: commit time %q: %w", secs, err)
	}
	st.commit = hash
	st.buildTime = time.Unix(commitTime, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return st, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
		}
		st.buildTime = time.Unix(n, 0).UTC()
	}
	status, err := output(ctx, root, "git", "status", "--porcelain")
	if err != nil {
		return st, err
	}
	st.dirty = strings.TrimSpace(status) != ""
	st.version = version
	if st.version == "" {
		st.version = gitVersion(ctx, root, hash, time.Unix(commitTime, 0), st.dirty)
	}
	if strings.ContainsAny(st.version, " /\\") {
		return st, fmt.Errorf("version %q: no spaces or slashes (it names the archives)", st.version)
	}
	return st, nil
}

// gitVersion is the tag on HEAD, else the pseudo-version Go itself would
// give the commit (v0.0.0-YYYYMMDDhhmmss-abcdefabcdef), "+dirty" when the
// tree has uncommitted changes.
func gitVersion(ctx context.Context, root, hash string, at time.Time, dirty bool) string {
	v := "v0.0.0-" + at.UTC().Format("20060102150405") + "-" + hash[:min(12, len(hash))]
	if tag, err := output(ctx, root, "git", "describe", "--tags", "--exact-match", "--match", "v[0-9]*", "HEAD"); err == nil {
		v = strings.TrimSpace(tag)
	}
	if dirty {
		v += "+dirty"
	}
	return v
}

// docFiles are the files that go into every archive beside the binaries.
func docFiles(root string) ([]string, error) {
	docs := []string{filepath.Join(root, "README.md")}
	if _, err := os.Stat(docs[0]); err != nil {
		return nil, fmt.Errorf("the archives carry the README: %w", err)
	}
	for _, name := range []string{"LICENSE", "LICENSE.md", "LICENSE.txt", "NOTICE"} {
		p := filepath.Join(root, name)
		if _, err := os.Stat(p); err == nil {
			docs = append(docs, p)
		}
	}
	return docs, nil
}

// prepareOut creates the output directory and removes the archives and sums
// of an earlier run, so that SHA256SUMS never lists a stale file.
func prepareOut(out string) error {
	if err := os.MkdirAll(out, 0o750); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(out, "iotledger_*.tar.gz"))
	if err != nil {
		return err
	}
	for _, p := range append(old, filepath.Join(out, sumsFile)) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// buildArchive builds the commands for one platform and packs them.
func buildArchive(ctx context.Context, root, out, goos, goarch string, cmds, docs []string, st stamp) (string, error) {
	name := fmt.Sprintf("iotledger_%s_%s_%s", st.version, goos, goarch)
	stage, err := os.MkdirTemp(out, ".stage-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(stage) }()
	args := append([]string{"build", "-trimpath", "-ldflags", st.ldflags(), "-o", stage + string(filepath.Separator)}, cmds...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, msg)
	}
	var files []archiveFile
	for _, c := range cmds {
		files = append(files, archiveFile{src: filepath.Join(stage, path.Base(c)), name: path.Base(c), mode: 0o755})
	}
	for _, d := range docs {
		files = append(files, archiveFile{src: d, name: filepath.Base(d), mode: 0o644})
	}
	dst := filepath.Join(out, name+".tar.gz")
	if err := writeTarGz(dst, name, files, st.buildTime); err != nil {
		return "", err
	}
	return dst, nil
}

// archiveFile is one file to pack.
type archiveFile struct {
	src, name string
	mode      int64
}

// writeTarGz packs files under dir/ in the given order, with fixed owners
// and times so that the bytes depend only on the contents.
func writeTarGz(dst, dir string, files []archiveFile, mtime time.Time) (err error) {
	f, err := os.Create(dst) //nolint:gosec // G304: dst is the release path built above
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	gz, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode, size int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Size: size, Typeflag: typ, ModTime: mtime, Format: tar.FormatPAX,
			Uname: "root", Gname: "root"}
	}
	if err := tw.WriteHeader(hdr(dir+"/", 0o755, 0, tar.TypeDir)); err != nil {
		return err
	}
	for _, af := range files {
		data, err := os.ReadFile(af.src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr(dir+"/"+af.name, af.mode, int64(len(data)), tar.TypeReg)); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// writeSums writes "<sha256>  <file name>" lines in the format sha256sum -c
// reads.
func writeSums(dst string, files []string) error {
	var b bytes.Buffer
	for _, p := range files {
		sum, err := fileSHA256(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.Base(p))
	}
	return os.WriteFile(dst, b.Bytes(), 0o644) //nolint:gosec // G306: published checksums are meant to be read
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p) //nolint:gosec // G304: a file this program wrote
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// output runs a command in dir and returns its stdout.
func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
