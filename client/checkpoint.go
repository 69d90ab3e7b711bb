package client

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Checkpointer records how far a consumer has handled an event stream, so
// that a new stream resumes right after the last handled event: no event is
// missed, none is delivered twice. Implementations are safe for concurrent
// use.
type Checkpointer interface {
	// BlockNumber is the block in which the next event is expected.
	BlockNumber() uint64
	// TransactionID is the last handled transaction within BlockNumber,
	// or "" if none of that block's events were handled yet.
	TransactionID() string
	// CheckpointTransaction records that the event of txID in block was handled.
	CheckpointTransaction(block uint64, txID string) error
	// CheckpointBlock records that every event of block was handled.
	CheckpointBlock(block uint64) error
}

// MemoryCheckpointer keeps the position in memory: a stream resumes within
// one process, not across restarts.
type MemoryCheckpointer struct {
	mu    sync.Mutex
	block uint64
	txID  string
}

// BlockNumber is the block in which the next event is expected.
func (m *MemoryCheckpointer) BlockNumber() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.block
}

// TransactionID is the last handled transaction within BlockNumber.
func (m *MemoryCheckpointer) TransactionID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.txID
}

// CheckpointTransaction records a handled transaction.
func (m *MemoryCheckpointer) CheckpointTransaction(block uint64, txID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.block, m.txID = block, txID
	return nil
}

// CheckpointBlock records a fully handled block.
func (m *MemoryCheckpointer) CheckpointBlock(block uint64) error {
	return m.CheckpointTransaction(block+1, "")
}

// checkpointFile is the JSON kept on disk.
type checkpointFile struct {
	BlockNumber   uint64 `json:"blockNumber"`
	TransactionID string `json:"transactionId,omitempty"`
}

// FileCheckpointer keeps the position in a small JSON file, replaced
// atomically on every checkpoint (written to a temporary file in the same
// directory, synced, renamed over the old one, directory synced), so a crash
// leaves either the old or the new position, never a torn file.
type FileCheckpointer struct {
	mu   sync.Mutex
	path string
	pos  checkpointFile
}

// NewFileCheckpointer opens the checkpoint at path, reading the position
// saved there if the file exists. The directory must exist.
func NewFileCheckpointer(path string) (*FileCheckpointer, error) {
	f := &FileCheckpointer{path: path}
	data, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	if err := json.Unmarshal(data, &f.pos); err != nil {
		return nil, fmt.Errorf("checkpoint %s is not a checkpoint file (%w): remove it to start from the next block", path, err)
	}
	return f, nil
}

// Path is the checkpoint file's path.
func (f *FileCheckpointer) Path() string { return f.path }

// BlockNumber is the block in which the next event is expected.
func (f *FileCheckpointer) BlockNumber() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pos.BlockNumber
}

// TransactionID is the last handled transaction within BlockNumber.
func (f *FileCheckpointer) TransactionID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pos.TransactionID
}

// CheckpointTransaction records a handled transaction durably.
func (f *FileCheckpointer) CheckpointTransaction(block uint64, txID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := checkpointFile{BlockNumber: block, TransactionID: txID}
	if err := writeFileAtomic(f.path, next); err != nil {
		return err
	}
	f.pos = next
	return nil
}

// CheckpointBlock records a fully handled block durably.
func (f *FileCheckpointer) CheckpointBlock(block uint64) error {
	return f.CheckpointTransaction(block+1, "")
}

func writeFileAtomic(path string, v checkpointFile) (err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("syncing checkpoint: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing checkpoint: %w", err)
	}
	// Make the rename itself durable.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing checkpoint directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("syncing checkpoint directory: %w", err)
	}
	return nil
}
