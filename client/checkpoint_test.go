package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFileCheckpointerPositionSurvivesReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.checkpoint")
	cp, err := NewFileCheckpointer(path)
	require.NoError(t, err)
	require.Zero(t, cp.BlockNumber())
	require.Empty(t, cp.TransactionID())

	require.NoError(t, cp.CheckpointTransaction(12, "tx-a"))
	again, err := NewFileCheckpointer(path)
	require.NoError(t, err)
	require.Equal(t, uint64(12), again.BlockNumber())
	require.Equal(t, "tx-a", again.TransactionID())

	require.NoError(t, again.CheckpointBlock(12))
	third, err := NewFileCheckpointer(path)
	require.NoError(t, err)
	require.Equal(t, uint64(13), third.BlockNumber())
	require.Empty(t, third.TransactionID())
}

func TestFileCheckpointerReplacesTheFileWithoutLeavingTemporaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cp.json")
	cp, err := NewFileCheckpointer(path)
	require.NoError(t, err)
	for i := range uint64(50) {
		require.NoError(t, cp.CheckpointTransaction(i, "tx"))
		// Every intermediate state on disk is a whole checkpoint.
		reread, err := NewFileCheckpointer(path)
		require.NoError(t, err)
		require.Equal(t, i, reread.BlockNumber())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the checkpoint itself remains")
	require.Equal(t, "cp.json", entries[0].Name())
}

func TestFileCheckpointerIgnoresATemporaryLeftByACrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cp.json")
	cp, err := NewFileCheckpointer(path)
	require.NoError(t, err)
	require.NoError(t, cp.CheckpointTransaction(7, "tx-7"))
	// A crash between writing the temporary and renaming it leaves a torn temporary.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".cp.json.tmp-123"), []byte(`{"blockNum`), 0o600))

	reopened, err := NewFileCheckpointer(path)
	require.NoError(t, err)
	require.Equal(t, uint64(7), reopened.BlockNumber())
	require.Equal(t, "tx-7", reopened.TransactionID())
}

func TestCorruptCheckpointFileIsRefusedWithAFix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	require.NoError(t, os.WriteFile(path, []byte("not json"), 0o600))
	_, err := NewFileCheckpointer(path)
	require.ErrorContains(t, err, "is not a checkpoint file")
	require.ErrorContains(t, err, "remove it")
}

func TestFileCheckpointerFailsWhenItsDirectoryIsGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	cp, err := NewFileCheckpointer(filepath.Join(dir, "cp.json"))
	require.NoError(t, err)
	require.Error(t, cp.CheckpointTransaction(1, "tx"))
	require.Zero(t, cp.BlockNumber(), "a failed checkpoint does not move the position")
}

func TestMemoryCheckpointerRecordsThePosition(t *testing.T) {
	var cp MemoryCheckpointer
	require.NoError(t, cp.CheckpointTransaction(4, "tx-4"))
	require.Equal(t, uint64(4), cp.BlockNumber())
	require.Equal(t, "tx-4", cp.TransactionID())
	require.NoError(t, cp.CheckpointBlock(4))
	require.Equal(t, uint64(5), cp.BlockNumber())
	require.Empty(t, cp.TransactionID())
}
