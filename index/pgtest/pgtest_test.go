package pgtest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// serverInfo is the data directory and a server process (the checkpointer,
// a child of the postmaster that exits when the postmaster does).
func serverInfo(t *testing.T, dsn string) (dataDir string, worker int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir))
	require.NoError(t, conn.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&worker))
	return dataDir, worker
}

func gone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }

func TestStart(t *testing.T) {
	var (
		pid     int
		dataDir string
	)
	t.Run("serves", func(t *testing.T) {
		dsn := Start(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)

		var db, fsync, sockets, user string
		require.NoError(t, conn.QueryRow(ctx,
			"SELECT current_database(), current_setting('fsync'), current_setting('unix_socket_directories'), current_user").
			Scan(&db, &fsync, &sockets, &user))
		require.Equal(t, Database, db)
		require.Equal(t, "off", fsync)
		require.Empty(t, sockets)
		require.Equal(t, Superuser, user)

		dataDir, pid = serverInfo(t, dsn)
		require.False(t, gone(pid))
	})
	require.NotZero(t, pid)
	require.True(t, gone(pid), "the server outlived its test")
	_, err := os.Stat(dataDir)
	require.ErrorIs(t, err, os.ErrNotExist, "the data directory outlived its test")
}

// TestServerDiesWithTestBinary kills a test binary that started a server
// (so no cleanup runs) and sees the server go.
func TestServerDiesWithTestBinary(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		dsn := Start(t)
		dataDir, pid := serverInfo(t, dsn)
		_, _ = os.Stdout.WriteString("SERVER " + strconv.Itoa(pid) + " " + dataDir + "\n")
		_ = os.Stdout.Sync()
		time.Sleep(time.Minute) // killed by the parent test
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTestBinary$", "-test.v")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var (
		pid     int
		dataDir string
	)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "SERVER "); ok {
			p, dir, _ := strings.Cut(rest, " ")
			pid, err = strconv.Atoi(p)
			require.NoError(t, err)
			dataDir = dir
			break
		}
	}
	require.NotZero(t, pid, "the child test printed no server")
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(dataDir)) })
	require.False(t, gone(pid))

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Eventually(t, func() bool { return gone(pid) }, 10*time.Second, 20*time.Millisecond,
		"the server outlived its test binary")
}
