package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DirSize is the total size of the regular files under root. Files that
// vanish while it walks (LevelDB compactions, SQLite's -shm going away)
// are skipped; a root that does not exist is an error, so a wrong path is
// never reported as an empty store.
func DirSize(root string) (int64, error) {
	if _, err := os.Stat(root); err != nil {
		return 0, err
	}
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// FilesSize is the total size of the files that exist among paths (a
// SQLite database and its -wal and -shm files).
func FilesSize(paths ...string) (int64, error) {
	var total int64
	for _, p := range paths {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if info.Mode().IsRegular() {
			total += info.Size()
		}
	}
	return total, nil
}

// A peer's ledger, under its peer.fileSystemPath (network/nodeconfig.go
// sets it to <node dir>/data): Fabric keeps the block files and their
// index under ledgersData/chains, the world state in
// ledgersData/stateLeveldb and the history of keys in
// ledgersData/historyLeveldb.
const (
	peerLedgerDir  = "ledgersData"
	peerChainsDir  = "chains"
	peerStateDir   = "stateLeveldb"
	peerHistoryDir = "historyLeveldb"
)

// PeerDisk is what one peer's ledger takes on disk, in bytes.
type PeerDisk struct {
	Peer    string `json:"peer"`
	Blocks  int64  `json:"blocks"`  // ledgersData/chains: block files and their index
	State   int64  `json:"state"`   // ledgersData/stateLeveldb: world state
	History int64  `json:"history"` // ledgersData/historyLeveldb
	Ledger  int64  `json:"ledger"`  // all of ledgersData
}

// MeasurePeerDisk sizes the ledger of the peer whose data directory
// (peer.fileSystemPath) is dataDir. The history database is optional
// (ledger.history.enableHistoryDatabase); the rest must be there.
func MeasurePeerDisk(peer, dataDir string) (PeerDisk, error) {
	d := PeerDisk{Peer: peer}
	root := filepath.Join(dataDir, peerLedgerDir)
	var err error
	if d.Ledger, err = DirSize(root); err != nil {
		return d, fmt.Errorf("%s ledger: %w", peer, err)
	}
	if d.Blocks, err = DirSize(filepath.Join(root, peerChainsDir)); err != nil {
		return d, fmt.Errorf("%s block files: %w", peer, err)
	}
	if d.State, err = DirSize(filepath.Join(root, peerStateDir)); err != nil {
		return d, fmt.Errorf("%s state database: %w", peer, err)
	}
	if d.History, err = DirSize(filepath.Join(root, peerHistoryDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d, fmt.Errorf("%s history database: %w", peer, err)
	}
	return d, nil
}

// PeerGrowth is how much a peer's ledger grew during a soak, in total and
// per reading committed.
type PeerGrowth struct {
	Growth     PeerDisk `json:"growth"`
	PerReading struct {
		Blocks  float64 `json:"blocks"`
		State   float64 `json:"state"`
		History float64 `json:"history"`
		Ledger  float64 `json:"ledger"`
	} `json:"bytesPerReading"`
}

// GrowthPerReading is end − start of each store, and that divided by the
// readings committed in between.
func GrowthPerReading(start, end PeerDisk, readings int64) PeerGrowth {
	var g PeerGrowth
	g.Growth = PeerDisk{
		Peer:    end.Peer,
		Blocks:  end.Blocks - start.Blocks,
		State:   end.State - start.State,
		History: end.History - start.History,
		Ledger:  end.Ledger - start.Ledger,
	}
	g.PerReading.Blocks = BytesPerReading(g.Growth.Blocks, readings)
	g.PerReading.State = BytesPerReading(g.Growth.State, readings)
	g.PerReading.History = BytesPerReading(g.Growth.History, readings)
	g.PerReading.Ledger = BytesPerReading(g.Growth.Ledger, readings)
	return g
}

// BytesPerReading is growth/readings rounded to 0.1 B, 0 without
// readings. A store can shrink (a LevelDB compaction): the result is
// negative then, and reported as measured.
func BytesPerReading(growth, readings int64) float64 {
	if readings <= 0 {
		return 0
	}
	return round(float64(growth)/float64(readings), 1)
}
