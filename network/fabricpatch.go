package network

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// patchDir is the directory of a tools module holding its source patches:
// unified diffs (*.patch) of files of the module it pins, applied at build
// time to a copy of that module, never to the module cache itself.
const patchDir = "patches"

// ErrPatch reports a source patch that cannot be applied: malformed, or
// made for other originals than the pinned module holds.
var ErrPatch = errors.New("source patch does not apply")

// PatchError names the patch and the file that did not apply.
type PatchError struct {
	Patch string // file name under patches/
	File  string // path in the patched module, "" for the patch as a whole
	Err   error
}

func (e *PatchError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("patch %s: %v", e.Patch, e.Err)
	}
	return fmt.Sprintf("patch %s, %s: %v", e.Patch, e.File, e.Err)
}

func (e *PatchError) Unwrap() []error { return []error{ErrPatch, e.Err} }

// sourcePatch is one patch file: a free-text header, one
// "Original-SHA256: <hex>  <path>" line for each file it changes, and a
// unified diff per file (paths a/<path>, b/<path>, relative to the root of
// the patched module).
type sourcePatch struct {
	Name  string
	Files []filePatch
}

type filePatch struct {
	Path   string // slash-separated, relative to the module root
	SHA256 string // of the original the hunks were made against
	Hunks  []hunk
}

type hunk struct {
	OldStart, OldLines int
	NewStart, NewLines int
	Lines              []string // each prefixed by ' ', '-' or '+', without the newline
}

// loadPatches reads modDir/patches/*.patch in name order; none is no error.
func loadPatches(modDir string) ([]sourcePatch, error) {
	files, err := filepath.Glob(filepath.Join(modDir, patchDir, "*.patch"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []sourcePatch
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read source patch: %w", err)
		}
		p, err := parsePatch(filepath.Base(f), data)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// parsePatch parses a patch file strictly: every file it changes needs its
// original's SHA-256, every hunk's line counts must add up, and features
// the build has no use for (renames, binary diffs, missing final newlines)
// are refused.
func parsePatch(name string, data []byte) (*sourcePatch, error) {
	fail := func(file, format string, args ...any) error {
		return &PatchError{Patch: name, File: file, Err: fmt.Errorf(format, args...)}
	}
	sums := map[string]string{}
	p := &sourcePatch{Name: name}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var cur *filePatch
	for i := 0; i < len(lines); i++ {
		ln := lines[i]
		switch {
		case cur == nil && strings.HasPrefix(ln, "Original-SHA256: "):
			f := strings.Fields(strings.TrimPrefix(ln, "Original-SHA256: "))
			if len(f) != 2 || len(f[0]) != sha256.Size*2 {
				return nil, fail("", "line %d: want \"Original-SHA256: <64 hex digits>  <path>\"", i+1)
			}
			if _, err := hex.DecodeString(f[0]); err != nil {
				return nil, fail("", "line %d: %v", i+1, err)
			}
			sums[f[1]] = strings.ToLower(f[0])
		case strings.HasPrefix(ln, "--- "):
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "+++ ") {
				return nil, fail("", "line %d: \"---\" not followed by \"+++\"", i+1)
			}
			oldPath, newPath := strings.TrimPrefix(ln, "--- "), strings.TrimPrefix(lines[i+1], "+++ ")
			rel, ok := strings.CutPrefix(oldPath, "a/")
			if !ok || newPath != "b/"+rel || rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
				return nil, fail("", "line %d: want \"--- a/<path>\" and \"+++ b/<same path>\", got %q and %q", i+1, oldPath, newPath)
			}
			sum, ok := sums[rel]
			if !ok {
				return nil, fail(rel, "no Original-SHA256 line for it in the header")
			}
			p.Files = append(p.Files, filePatch{Path: rel, SHA256: sum})
			cur = &p.Files[len(p.Files)-1]
			i++
		case strings.HasPrefix(ln, "@@ "):
			if cur == nil {
				return nil, fail("", "line %d: hunk before any file", i+1)
			}
			h, err := parseHunkHeader(ln)
			if err != nil {
				return nil, fail(cur.Path, "line %d: %v", i+1, err)
			}
			old, nw := 0, 0
			for old < h.OldLines || nw < h.NewLines {
				i++
				if i >= len(lines) {
					return nil, fail(cur.Path, "hunk %q is cut short", ln)
				}
				body := lines[i]
				switch {
				case strings.HasPrefix(body, " ") || body == "":
					old++
					nw++
					if body == "" { // an empty context line whose space was trimmed
						body = " "
					}
				case strings.HasPrefix(body, "-"):
					old++
				case strings.HasPrefix(body, "+"):
					nw++
				default:
					return nil, fail(cur.Path, "line %d: unexpected %q in hunk %q", i+1, body, ln)
				}
				h.Lines = append(h.Lines, body)
			}
			if old != h.OldLines || nw != h.NewLines {
				return nil, fail(cur.Path, "hunk %q: counts %d,%d do not match its lines", ln, old, nw)
			}
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], `\`) {
				return nil, fail(cur.Path, "line %d: files without a final newline are not supported", i+2)
			}
			cur.Hunks = append(cur.Hunks, h)
		case cur != nil && (strings.HasPrefix(ln, "rename ") || strings.HasPrefix(ln, "Binary files ") || strings.HasPrefix(ln, "GIT binary patch")):
			return nil, fail(cur.Path, "line %d: only plain text edits are supported", i+1)
		}
	}
	if len(p.Files) == 0 {
		return nil, fail("", "changes no file")
	}
	seen := map[string]bool{}
	for _, f := range p.Files {
		if seen[f.Path] {
			return nil, fail(f.Path, "changed twice in one patch")
		}
		seen[f.Path] = true
		if len(f.Hunks) == 0 {
			return nil, fail(f.Path, "no hunks")
		}
	}
	return p, nil
}

// parseHunkHeader reads "@@ -l,s +l,s @@ ..." (a count of 1 may be left out).
func parseHunkHeader(ln string) (hunk, error) {
	f := strings.Fields(ln)
	if len(f) < 4 || f[3] != "@@" || !strings.HasPrefix(f[1], "-") || !strings.HasPrefix(f[2], "+") {
		return hunk{}, fmt.Errorf("malformed hunk header %q", ln)
	}
	rng := func(s string) (int, int, error) {
		start, count, ok := strings.Cut(s, ",")
		if !ok {
			count = "1"
		}
		a, err1 := strconv.Atoi(start)
		b, err2 := strconv.Atoi(count)
		if err1 != nil || err2 != nil || a < 0 || b < 0 {
			return 0, 0, fmt.Errorf("malformed range %q in hunk header %q", s, ln)
		}
		return a, b, nil
	}
	var h hunk
	var err error
	if h.OldStart, h.OldLines, err = rng(f[1][1:]); err != nil {
		return hunk{}, err
	}
	if h.NewStart, h.NewLines, err = rng(f[2][1:]); err != nil {
		return hunk{}, err
	}
	return h, nil
}

// apply returns the patched content of orig: it refuses an original whose
// SHA-256 differs from the one the patch was made against, and any hunk
// whose context or removed lines are not exactly where the hunk says (no
// fuzz, no offsets).
func (fp filePatch) apply(orig []byte) ([]byte, error) {
	sum := sha256.Sum256(orig)
	if got := hex.EncodeToString(sum[:]); got != fp.SHA256 {
		return nil, fmt.Errorf("the original has SHA-256 %s, the patch was made for %s (is the module pin changed? update or drop the patch)", got, fp.SHA256)
	}
	if len(orig) > 0 && orig[len(orig)-1] != '\n' {
		return nil, errors.New("the original has no final newline")
	}
	src := strings.SplitAfter(string(orig), "\n")
	src = src[:len(src)-1] // the empty string after the final newline
	var out bytes.Buffer
	next := 0 // index into src of the next line not yet copied
	for _, h := range fp.Hunks {
		start := h.OldStart - 1 // 0-based index of the hunk's first old line
		if h.OldLines == 0 {
			start = h.OldStart // "-l,0" inserts after line l
		}
		if start < next || start > len(src) {
			return nil, fmt.Errorf("hunk at line %d overlaps the one before or lies past the end", h.OldStart)
		}
		for _, l := range src[next:start] {
			out.WriteString(l)
		}
		next = start
		for _, l := range h.Lines {
			text := l[1:] + "\n"
			switch l[0] {
			case ' ', '-':
				if next >= len(src) || src[next] != text {
					return nil, fmt.Errorf("hunk at line %d: line %d is not %q", h.OldStart, next+1, strings.TrimSuffix(text, "\n"))
				}
				if l[0] == ' ' {
					out.WriteString(text)
				}
				next++
			case '+':
				out.WriteString(text)
			}
		}
	}
	for _, l := range src[next:] {
		out.WriteString(l)
	}
	return out.Bytes(), nil
}

// patchFiles applies patches to the originals under modRoot (the patched
// module's directory in the module cache) and returns the patched contents
// by slash-separated path; nothing is written.
func patchFiles(patches []sourcePatch, modRoot string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, p := range patches {
		for _, fp := range p.Files {
			if _, dup := out[fp.Path]; dup {
				return nil, &PatchError{Patch: p.Name, File: fp.Path, Err: errors.New("already changed by another patch")}
			}
			data, err := os.ReadFile(filepath.Join(modRoot, filepath.FromSlash(fp.Path)))
			if err != nil {
				return nil, &PatchError{Patch: p.Name, File: fp.Path, Err: err}
			}
			patched, err := fp.apply(data)
			if err != nil {
				return nil, &PatchError{Patch: p.Name, File: fp.Path, Err: err}
			}
			out[fp.Path] = patched
		}
	}
	return out, nil
}

// copyModule copies the module tree at src (read-only in the module cache)
// to dst, which must not exist yet, as writable files, with the files named
// in patched replaced by their patched content.
func copyModule(src, dst string, patched map[string][]byte) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return fmt.Errorf("copy %s for patching: %w", src, err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("copy %s for patching: %w", src, err)
	}
	defer func() { _ = root.Close() }()
	for rel, data := range patched {
		if err := root.WriteFile(filepath.FromSlash(rel), data, 0o644); err != nil {
			return fmt.Errorf("write patched %s: %w", rel, err)
		}
	}
	return nil
}

// patchedBuild prepares the build of tools module m (in modDir) with its
// source patches. The go command refuses -overlay for files in the module
// cache, so the pinned module m.Patched is copied into a new directory
// under cache, patched there, and named by a replace directive in a copy of
// the tools module's go.mod; the returned arguments (-modfile) make `go
// build` use it. Without patches it returns no arguments. cleanup removes
// the directory.
func patchedBuild(ctx context.Context, goCmd, cache, modDir string, m toolModule) (args []string, cleanup func(), err error) {
	cleanup = func() {}
	patches, err := loadPatches(modDir)
	if err != nil || len(patches) == 0 {
		return nil, cleanup, err
	}
	root, err := downloadModule(ctx, goCmd, modDir, m.Patched)
	if err != nil {
		return nil, cleanup, err
	}
	patched, err := patchFiles(patches, root)
	if err != nil {
		return nil, cleanup, err
	}
	dir, err := os.MkdirTemp(cache, filepath.Base(m.Dir)+"-patched-")
	if err != nil {
		return nil, cleanup, fmt.Errorf("create patch directory: %w", err)
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	modfile, err := writePatchedModule(modDir, dir, m.Patched, root, patched)
	if err != nil {
		cleanup()
		return nil, func() {}, err
	}
	return []string{"-modfile", modfile}, cleanup, nil
}

// writePatchedModule copies the module at root into dir/src with patched
// files, and writes dir/go.mod and dir/go.sum: the tools module's own, with
// module replaced by that copy. It returns the go.mod's path.
func writePatchedModule(modDir, dir, module, root string, patched map[string][]byte) (string, error) {
	src := filepath.Join(dir, "src")
	if err := copyModule(root, src, patched); err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("read tools module: %w", err)
	}
	gosum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return "", fmt.Errorf("read tools module: %w", err)
	}
	gomod = fmt.Appendf(bytes.TrimRight(gomod, "\n"), "\n\n// Source patches of %s/%s applied.\nreplace %s => %s\n", filepath.Base(modDir), patchDir, module, src)
	out, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("write patched go.mod: %w", err)
	}
	defer func() { _ = out.Close() }()
	if err := out.WriteFile("go.mod", gomod, 0o644); err != nil {
		return "", fmt.Errorf("write patched go.mod: %w", err)
	}
	if err := out.WriteFile("go.sum", gosum, 0o644); err != nil {
		return "", fmt.Errorf("write patched go.sum: %w", err)
	}
	modfile := filepath.Join(dir, "go.mod")
	return modfile, nil
}

// downloadModule makes sure the pinned version of module is in the module
// cache (the tools module in modDir requires it) and returns its directory.
func downloadModule(ctx context.Context, goCmd, modDir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", module)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr == nil && m.Error != "" {
		return "", fmt.Errorf("download %s: %s", module, m.Error)
	}
	if err != nil {
		return "", fmt.Errorf("download %s: %w: %s", module, err, strings.TrimSpace(stderr.String()))
	}
	if m.Dir == "" {
		return "", fmt.Errorf("download %s: go mod download named no directory", module)
	}
	return m.Dir, nil
}
