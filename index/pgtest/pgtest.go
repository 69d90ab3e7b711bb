// Package pgtest starts a throwaway PostgreSQL server for a test.
//
// The server is Debian's PostgreSQL (looked for in /usr/lib/postgresql/*/bin,
// newest first, then on PATH). Its data directory is a fresh temporary
// directory; it listens on 127.0.0.1 on a free port only (no unix socket),
// trusts every local connection, and runs with fsync off. When the test
// process runs as root, initdb and postgres (which refuse to run as root)
// are run as the unprivileged user "nobody", who owns the data directory;
// nothing system-wide is created. The postmaster gets SIGKILL if the test
// binary dies (a parent-death signal), and its own workers exit when it
// does, so no server outlives a crashed test.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// Superuser is the database superuser initdb creates (trust auth).
	Superuser = "postgres"
	// Database is the database Start creates for the test.
	Database = "test"

	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// Start starts a throwaway PostgreSQL server for a test: initdb into a
// temp dir, postgres listening on 127.0.0.1 on a free port (unix sockets
// disabled), trust auth, waits until it accepts connections, creates a
// database, and registers t.Cleanup to stop it by PID (SIGTERM, then
// SIGINT, then SIGKILL after a timeout) and remove the dir. It returns the
// DSN of the database. A missing PostgreSQL installation fails the test.
func Start(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Fatalf("pgtest: PostgreSQL test servers are supported on Linux only (this is %s)", runtime.GOOS)
	}
	bin, err := findBinaries()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cred, err := credential()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	// Not t.TempDir: its parents are private to root, and the server may
	// run as another user.
	dir, err := os.MkdirTemp(tempRoot(cred), "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgtest: removing %s: %v", dir, err)
		}
	})
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if cred != nil {
		for _, p := range []string{dir, data} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatalf("pgtest: %v", err)
			}
		}
	}

	initdb := exec.Command(bin.initdb,
		"-D", data, "-U", Superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.Env = environment(dir)
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	dieWithParent(initdb.SysProcAttr)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s: %v\n%s", bin.initdb, err, out)
	}

	var srv *server
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		srv, err = start(bin.postgres, dir, data, port, cred)
		if err == nil {
			break
		}
		if attempt == 2 || !errors.Is(err, errPortInUse) {
			t.Fatalf("pgtest: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := srv.createDatabase(ctx, Database); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return srv.dsn(Database)
}

type binaries struct{ initdb, postgres string }

// findBinaries looks for initdb and postgres in Debian's
// /usr/lib/postgresql/<version>/bin (15 first, then the newest), then on
// PATH.
func findBinaries() (binaries, error) {
	dirs := []string{"/usr/lib/postgresql/15/bin"}
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
		dirs = append(dirs, found...)
	}
	for _, d := range dirs {
		b := binaries{filepath.Join(d, "initdb"), filepath.Join(d, "postgres")}
		if executable(b.initdb) && executable(b.postgres) {
			return b, nil
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return binaries{initdb, postgres}, nil
	}
	var missing []string
	if err1 != nil {
		missing = append(missing, "initdb")
	}
	if err2 != nil {
		missing = append(missing, "postgres")
	}
	return binaries{}, fmt.Errorf("PostgreSQL server binaries not found (%s missing from /usr/lib/postgresql/15/bin, /usr/lib/postgresql/*/bin and PATH); install them, e.g. apt-get install postgresql-15",
		strings.Join(missing, " and "))
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// credential is the user the server runs as: nil (this process's user)
// unless this process is root, which initdb and postgres refuse; then the
// unprivileged "nobody".
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no unprivileged user to run PostgreSQL as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user nobody: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user nobody: gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// tempRoot is where the server's directory goes: the temporary
// directory, if the server's user can reach it (every directory above it
// searchable by others), else /tmp.
func tempRoot(cred *syscall.Credential) string {
	root := os.TempDir()
	if cred == nil {
		return root
	}
	for d := root; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return root
		}
	}
}

func environment(dir string) []string {
	env := []string{"HOME=" + dir, "LC_ALL=C", "LANG=C", "TZ=UTC"}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

var errPortInUse = errors.New("port in use")

type server struct {
	cmd    *exec.Cmd
	port   int
	log    string
	exited chan struct{} // closed when the postmaster has been reaped
	err    error         // its exit status, once exited is closed
}

func start(postgres, dir, data string, port int, cred *syscall.Credential) (*server, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("postgres-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	cmd := exec.Command(postgres,
		"-D", data,
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(port),
		"-k", "", // no unix socket
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=50",
		"-c", "shared_buffers=64MB",
	)
	cmd.Dir = dir
	cmd.Env = environment(dir)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		Setpgid:    true, // no terminal signals from the test's process group
	}
	// Dies with the test binary; its workers notice and exit too.
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", postgres, err)
	}
	s := &server{cmd: cmd, port: port, log: logPath, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		_ = s.stop()
		logText := s.logTail()
		if strings.Contains(logText, "Address already in use") {
			return nil, fmt.Errorf("%w: %d", errPortInUse, port)
		}
		return nil, fmt.Errorf("PostgreSQL did not start: %w\n%s", err, logText)
	}
	return s, nil
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.port, db)
}

// waitReady waits until the server accepts connections to its
// maintenance database.
func (s *server) waitReady(ctx context.Context) error {
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited: %w", s.exitError())
		default:
		}
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, s.dsn("postgres"))
		if err == nil {
			err = conn.Ping(attempt)
			_ = conn.Close(attempt)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-s.exited:
			return fmt.Errorf("postgres exited: %w", s.exitError())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exitError is how the postmaster exited (once it has).
func (s *server) exitError() error {
	if s.err == nil {
		return errors.New("exit status 0")
	}
	return s.err
}

func (s *server) createDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// stop stops the postmaster by its PID: SIGTERM (smart shutdown), SIGINT
// (fast shutdown) if sessions are still open after a moment, and SIGKILL
// after stopTimeout.
func (s *server) stop() error {
	pid := s.cmd.Process.Pid
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(2 * time.Second):
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-s.exited
	return fmt.Errorf("postgres (pid %d) did not stop within %s and was killed", pid, stopTimeout+2*time.Second)
}

func (s *server) logTail() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}
