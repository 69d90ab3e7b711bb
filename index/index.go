// Package index keeps one org's queryable copy of what the channel's
// blocks say: readings, batches, alerts, commands, device status changes
// and the audit trail of every transaction, in SQLite (embedded, the
// default) or PostgreSQL. A follower verifies each block before it is
// applied (orderer signatures, endorsements, validation code), and a block
// is applied with the checkpoint in one database transaction, so an index
// resumes after a crash without gaps or duplicates.
//
// Each org runs its own index: nobody needs to trust another org's database.
package index

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/receipt"
)

// Block is what one committed, verified block adds to an index.
type Block struct {
	Number       uint64
	Hash         []byte    // SHA-256 of the block header (what the next block chains to)
	Time         time.Time // timestamp of its first transaction
	Transactions []Transaction
	// What the block's verifier must resume with (receipt.ChainState):
	// the config block, when this is one, and the key-level endorsement
	// policies its valid transactions set (nil: removed).
	Config   []byte
	Policies map[string][]byte
}

// Transaction is one transaction of a block, decoded. Invalid transactions
// are kept in the audit trail with their validation code, and add nothing
// else.
type Transaction struct {
	Block          uint64
	Index          int // position in the block
	TxID           string
	Time           time.Time // the proposal's timestamp
	ValidationCode string    // the peer's flag: "VALID", "MVCC_READ_CONFLICT", ...
	Function       string    // "telemetry:SubmitBatch", "device:Revoke", ... ("" for a config transaction)
	CreatorMSP     string
	Creator        string   // the submitting client's certificate subject
	Endorsers      []string // MSP IDs whose peers endorsed it
	Devices        []string // devices the transaction touched, sorted
	Event          *api.Event
	Readings       []Reading // of a valid telemetry batch
	Batch          *Batch
}

// Valid reports whether the peers marked the transaction VALID.
func (t *Transaction) Valid() bool { return t.ValidationCode == "VALID" }

// Reading is one committed reading: the device's signed bytes and where
// they are on the ledger. Private readings (kept in the owner's collection)
// are indexed by the owner org only, and by others as hashes (Payload nil).
type Reading struct {
	Device    string
	Seq       uint64
	Timestamp int64           // device clock, Unix ms
	Values    json.RawMessage // the payload's values array, for queries (a Store reads it from Payload, not stored twice)
	Payload   []byte          // the signed payload bytes
	Signature []byte
	BatchTx   string // the transaction that committed its batch
	Index     int    // its position in the batch (the Merkle leaf)
	Block     uint64
	Private   bool
}

// Batch is a committed batch commitment.
type Batch struct {
	TxID      string
	Root      []byte
	Size      int
	Submitter string // client identity of the hub
	MSPID     string
	Block     uint64
	Private   bool
}

// ReadingQuery selects readings of one device, in sequence order.
type ReadingQuery struct {
	Device   string
	From, To time.Time // device time range, inclusive; zero: unbounded
	AfterSeq uint64    // only readings with a larger seq (paging)
	Limit    int       // at most this many (0: 100; capped at 1000)
	Newest   bool      // newest first
}

// AuditEntry is one transaction that touched a device: who did what, where.
type AuditEntry struct {
	Block          uint64    `json:"block"`
	Index          int       `json:"index"`
	TxID           string    `json:"txId"`
	Time           time.Time `json:"time"`
	Function       string    `json:"function"`
	CreatorMSP     string    `json:"creatorMsp"`
	Creator        string    `json:"creator"`
	Endorsers      []string  `json:"endorsers"`
	ValidationCode string    `json:"validationCode"`
	EventType      string    `json:"eventType,omitempty"`
}

// Throughput is what the channel committed in a time window, per
// submitting identity (a hub's Fabric client identity; the hubs of an org
// that share one identity count together).
type Throughput struct {
	From, To time.Time
	// Latest is the time of the newest block the index has applied (zero
	// for an empty index): a window ending after it is not fully indexed.
	Latest     time.Time
	Submitters []SubmitterThroughput // by MSP, then submitter
}

// SubmitterThroughput is one submitting identity's share of a Throughput.
type SubmitterThroughput struct {
	MSPID     string `json:"mspId"`
	Submitter string `json:"submitter"` // the creator's certificate subject
	Batches   int    `json:"batches"`
	Readings  int    `json:"readings"` // readings of those batches this index holds
	// PrivateBatches are batches of another org's private readings: the
	// index knows they were committed, not how many readings they hold,
	// so they add nothing to Readings.
	PrivateBatches int `json:"privateBatches,omitempty"`
}

// Store is an index's database. Implementations: SQLite (OpenSQLite) and
// PostgreSQL (OpenPostgres).
type Store interface {
	// Checkpoint is the number of the next block to apply (0 for an empty
	// index) and the hash of the last block applied.
	Checkpoint(ctx context.Context) (next uint64, lastHash []byte, err error)
	// Apply stores a block's records and moves the checkpoint past it, in
	// one database transaction. A block other than the next is refused
	// with ErrOutOfOrder, and nothing is stored.
	Apply(ctx context.Context, b *Block) error

	Reading(ctx context.Context, device string, seq uint64) (*Reading, error)
	Readings(ctx context.Context, q ReadingQuery) ([]Reading, error)
	// BatchReadings are a batch's readings in batch order (the Merkle leaves).
	BatchReadings(ctx context.Context, batchTx string) ([]Reading, error)
	Batch(ctx context.Context, txID string) (*Batch, error)
	// Audit lists the transactions that touched a device, oldest first.
	Audit(ctx context.Context, device string, limit int) ([]AuditEntry, error)
	// Alerts lists alerts raised by rules, newest first; device "" for all.
	Alerts(ctx context.Context, device string, limit int) ([]api.Alert, error)
	// Commands lists the command records events carried, latest state per
	// command, newest first; device "" for all.
	Commands(ctx context.Context, device string, limit int) ([]api.Command, error)
	// StatusChanges lists device status changes, oldest first.
	StatusChanges(ctx context.Context, device string, limit int) ([]api.StatusChange, error)
	// Throughput counts the telemetry batches whose transaction time is in
	// [from, to) and the readings of them this index holds, per submitting
	// identity: what the channel committed in that window, as far as the
	// index has followed it.
	Throughput(ctx context.Context, from, to time.Time) (*Throughput, error)
	// ChainState is the verifier's state saved with the checkpoint (the
	// config block in force and the key-level policies), from which a
	// follower resumes without verifying the chain again.
	ChainState(ctx context.Context) (*receipt.ChainState, error)
	Close() error
}

// Errors of a Store.
var (
	ErrOutOfOrder = errors.New("index: block is not the next one")
	ErrNotFound   = errors.New("index: not found")
)
