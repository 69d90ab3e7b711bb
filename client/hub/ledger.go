package hub

import (
	"context"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt"
)

// Ledger is what the hub needs from the iotledger chaincode. The SDK's
// *client.Client satisfies it; unit tests use an in-memory fake.
type Ledger interface {
	Device(ctx context.Context, id string) (*api.Device, error)
	CheckAccess(ctx context.Context, req api.AccessRequest) (*api.Decision, error)
	SubmitBatch(ctx context.Context, req api.BatchRequest) (*api.BatchReceipt, error)
	// Seen is telemetry:Seen: what a device's replay state says of 1..500
	// of its sequence numbers (accepted, not seen, below the replay
	// window), in the order asked. The hub asks it before submitting a
	// batch that may already be (partly) on the ledger; the chaincode
	// answers a caller that may telemetry:write the device, as the hub may
	// the devices it submits, or telemetry:read it.
	Seen(ctx context.Context, device string, seqs []uint64) (*api.SeenAnswer, error)
	ListCommands(ctx context.Context, q api.CommandQuery) (*api.CommandPage, error)
	MarkCommandDelivered(ctx context.Context, id string) (*api.Command, error)
	AckCommand(ctx context.Context, env reading.Envelope) (*api.Command, error)
	// TrustAnchor is the channel's identity: its name and the hash of its
	// genesis block header (and the block). The hub compares it with the
	// one its outbox records before it submits anything (identity.go), so
	// that it never drains into another ledger.
	TrustAnchor(ctx context.Context) (receipt.Anchor, *common.Block, error)
}

// PrivateLedger is a Ledger that can also submit batches of readings of
// private devices (api.Device.Private) as transient data endorsed by the
// devices' owner org alone, so that their values never enter a block nor
// reach another org's peer. The SDK's *client.Client satisfies it. The hub
// sends each owner's private readings in batches of their own through
// SubmitPrivateBatchFor when its Ledger has it; otherwise the ledger refuses
// those readings and the hub counts them as rejected.
type PrivateLedger interface {
	Ledger
	SubmitPrivateBatchFor(ctx context.Context, owner string, req api.BatchRequest) (*api.BatchReceipt, error)
}

// MessageLedger is a Ledger that relays device-to-device messages through
// the ledger's message contract, to recipients on other hubs (of any org)
// or offline. The SDK's *client.Client satisfies it; without it, the hub
// delivers messages only to recipients connected to it.
type MessageLedger interface {
	Ledger
	SendMessage(ctx context.Context, env reading.Envelope) (*api.StoredMessage, error)
	ListMessages(ctx context.Context, q api.MessageQuery) (*api.MessagePage, error)
	MarkMessageDelivered(ctx context.Context, to, from, id string) (*api.StoredMessage, error)
}

// EventSource streams the chaincode events the hub reacts to (commands,
// status changes, key rotations, policy changes). The CLI adapts the SDK's
// checkpointed event stream to it, so a restarted hub resumes where it
// stopped. The channel closes when ctx ends.
type EventSource interface {
	LedgerEvents(ctx context.Context) (<-chan api.Event, error)
}
