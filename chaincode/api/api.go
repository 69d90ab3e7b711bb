// Package api holds the JSON types of the iotledger chaincode's transactions
// and of its chaincode event. It has no Fabric dependency, so clients, hubs
// and tools import it to speak to the ledger with the same types the
// chaincode uses.
//
// Transactions are addressed as "<contract>:<Transaction>", e.g.
// "device:Enroll". Structured arguments are passed as one JSON string.
package api

import (
	"encoding/json"
	"time"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// Contract names.
const (
	ContractDevice    = "device"
	ContractPolicy    = "policy"
	ContractRule      = "rule"
	ContractTelemetry = "telemetry"
	ContractCommand   = "command"
	ContractMessage   = "message"
)

// EventName is the name of the single chaincode event every transaction emits.
const EventName = "iotledger"

// RoleAttribute is the Fabric CA certificate attribute that carries a
// client's role.
const RoleAttribute = "iotledger.role"

// Roles a CA-issued identity may hold.
const (
	RoleOperator = "operator"
	RoleHub      = "hub"
	RoleAuditor  = "auditor"
)

// Actions that policies grant or deny.
const (
	ActionTelemetryWrite = "telemetry:write"
	ActionTelemetryRead  = "telemetry:read"
	ActionDeviceRead     = "device:read"
	ActionDeviceManage   = "device:manage"
	ActionDeviceCommand  = "device:command"
	ActionDeviceMessage  = "device:message"
	ActionCommandDeliver = "command:deliver"
	ActionPolicyManage   = "policy:manage"
	ActionRuleManage     = "rule:manage"
)

// DeviceStatus is a device's lifecycle state:
// provisioned → active ⇄ suspended → revoked | decommissioned. Revoked and
// decommissioned are final.
type DeviceStatus string

// Device lifecycle states.
const (
	StatusProvisioned    DeviceStatus = "provisioned"
	StatusActive         DeviceStatus = "active"
	StatusSuspended      DeviceStatus = "suspended"
	StatusRevoked        DeviceStatus = "revoked"
	StatusDecommissioned DeviceStatus = "decommissioned"
)

// Device is a device's record on the ledger.
type Device struct {
	ID          string            `json:"id"`
	Owner       string            `json:"owner"` // MSP ID of the owning org
	Type        string            `json:"type"`
	Groups      []string          `json:"groups,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	PublicKey   string            `json:"publicKey"` // PEM (PKIX), ECDSA P-256 or Ed25519
	KeyAlg      string            `json:"keyAlg"`
	KeyID       string            `json:"keyId"` // SHA-256 fingerprint of the key
	KeyVersion  int               `json:"keyVersion"`
	Firmware    string            `json:"firmware,omitempty"`
	Status      DeviceStatus      `json:"status"`
	StatusNote  string            `json:"statusNote,omitempty"`
	PendingTo   string            `json:"pendingTransferTo,omitempty"` // MSP ID offered a transfer
	EnrolledBy  string            `json:"enrolledBy"`                  // client identity ID
	EnrolledAt  time.Time         `json:"enrolledAt"`                  // transaction timestamp
	UpdatedAt   time.Time         `json:"updatedAt"`
	UpdatedByTx string            `json:"updatedByTx"`
	// Private devices' readings keep their payload and signature in the
	// owner org's implicit private data collection; only hashes go on the
	// channel. Set at enrollment; submit them with telemetry:SubmitPrivateBatch.
	Private bool `json:"private,omitempty"`
	// EncryptionKey is the device's raw X25519 public key (32 bytes), to
	// which other devices seal message bodies end to end; optional.
	EncryptionKey []byte `json:"encryptionKey,omitempty"`
}

// EnrollRequest is the argument of device:Enroll. The owner is always the
// caller's org.
type EnrollRequest struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Groups     []string          `json:"groups,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	PublicKey  string            `json:"publicKey"`
	Firmware   string            `json:"firmware,omitempty"`
	Activate   bool              `json:"activate,omitempty"` // enroll straight into "active"
	// Private keeps the device's reading values off the channel (see Device.Private).
	Private bool `json:"private,omitempty"`
	// EncryptionKey: see Device.EncryptionKey.
	EncryptionKey []byte `json:"encryptionKey,omitempty"`
}

// DeviceUpdate is the argument of device:Update; nil fields are unchanged.
type DeviceUpdate struct {
	ID         string             `json:"id"`
	Type       *string            `json:"type,omitempty"`
	Groups     *[]string          `json:"groups,omitempty"`
	Attributes *map[string]string `json:"attributes,omitempty"`
	Firmware   *string            `json:"firmware,omitempty"`
	// EncryptionKey replaces the device's encryption key (see
	// Device.EncryptionKey); an empty one removes it.
	EncryptionKey *[]byte `json:"encryptionKey,omitempty"`
}

// DeviceQuery is the argument of device:List. At most one of Owner, Type and
// Group selects the index; with none, the caller's own devices are listed.
type DeviceQuery struct {
	Owner    string `json:"owner,omitempty"`
	Type     string `json:"type,omitempty"`
	Group    string `json:"group,omitempty"`
	PageSize int32  `json:"pageSize,omitempty"` // default 50, max 500
	Bookmark string `json:"bookmark,omitempty"`
}

// DevicePage is one page of devices.
type DevicePage struct {
	Devices  []Device `json:"devices"`
	Bookmark string   `json:"bookmark,omitempty"` // empty on the last page
	// Skipped lists records of the page that were left out because they are
	// inconsistent or cannot be decoded: another org's broken record never
	// breaks a listing.
	Skipped []SkippedRecord `json:"skipped,omitempty"`
}

// SkippedRecord is a stored record a read left out, and why.
type SkippedRecord struct {
	ID     string `json:"id"`
	Owner  string `json:"owner,omitempty"`
	Reason string `json:"reason"`
}

// DeviceHistoryEntry is one committed version of a device record.
type DeviceHistoryEntry struct {
	TxID      string    `json:"txId"`
	Timestamp time.Time `json:"timestamp"`
	Deleted   bool      `json:"deleted,omitempty"`
	Device    *Device   `json:"device,omitempty"`
}

// Effect of a policy statement.
type Effect string

// Statement effects. Deny overrides allow.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Statement grants or denies actions on resources to principals.
//
// Principals: "*", "msp:Org2MSP", "role:hub", "client:<client identity ID>",
// "device:<id>", "group:<device group>"; several may be listed (any matches).
// Resources: device ids, "group:<g>", "type:<t>", "*"; a trailing "*" is a
// prefix wildcard ("cold-*"). Condition: optional CEL expression over
// `principal`, `resource`, `request` that must be true for the statement to apply.
type Statement struct {
	Sid        string   `json:"sid,omitempty"`
	Effect     Effect   `json:"effect"`
	Principals []string `json:"principals"`
	Actions    []string `json:"actions"`   // e.g. "telemetry:read", "device:*", "*"
	Resources  []string `json:"resources"` // see above
	Condition  string   `json:"condition,omitempty"`
}

// Policy is a named set of statements owned by one org. A policy only ever
// applies to resources (devices) owned by its owner org.
type Policy struct {
	ID          string      `json:"id"`
	Owner       string      `json:"owner"` // set from the caller's MSP ID
	Description string      `json:"description,omitempty"`
	Statements  []Statement `json:"statements"`
	NotBefore   *time.Time  `json:"notBefore,omitempty"`
	NotAfter    *time.Time  `json:"notAfter,omitempty"`
	Version     int         `json:"version"`
	UpdatedAt   time.Time   `json:"updatedAt"`
}

// PolicyQuery is the argument of policy:List.
type PolicyQuery struct {
	Owner    string `json:"owner,omitempty"` // default: caller's org
	PageSize int32  `json:"pageSize,omitempty"`
	Bookmark string `json:"bookmark,omitempty"`
}

// PolicyPage is one page of policies.
type PolicyPage struct {
	Policies []Policy `json:"policies"`
	Bookmark string   `json:"bookmark,omitempty"`
}

// Principal is who asks: a client identity (from its certificate) or a device.
type Principal struct {
	MSPID    string            `json:"mspId,omitempty"`
	ClientID string            `json:"clientId,omitempty"`
	Role     string            `json:"role,omitempty"`
	Device   string            `json:"device,omitempty"` // set when a device is the principal
	Groups   []string          `json:"groups,omitempty"` // the device's groups
	Attrs    map[string]string `json:"attrs,omitempty"`
	// Admin is set for an administrator of its org's MSP (a certificate
	// with the admin organizational unit): the org's Fabric admin, who can
	// always manage its own org's policies and rules (see txn.authorize).
	Admin bool `json:"admin,omitempty"`
}

// AdminOU is the organizational unit of an MSP administrator's certificate
// (Fabric's NodeOUs AdminOUIdentifier).
const AdminOU = "admin"

// AccessRequest is the argument of policy:CheckAccess and policy:Explain.
// Without Device, the principal is the caller (from its certificate, never
// from the arguments); with Device, the question is about that enrolled
// device as principal (used by hubs for device-to-device messages).
type AccessRequest struct {
	Device   string         `json:"device,omitempty"`  // device principal, optional
	Action   string         `json:"action"`            // e.g. "telemetry:read"
	Resource string         `json:"resource"`          // device id
	Context  map[string]any `json:"context,omitempty"` // extra request attributes for CEL
}

// Decision is the outcome of an access check.
type Decision struct {
	Allowed  bool   `json:"allowed"`
	Effect   Effect `json:"effect"`             // "allow" or "deny"
	Reason   string `json:"reason"`             // one line a person can read
	PolicyID string `json:"policyId,omitempty"` // statement that decided, if any
	Sid      string `json:"sid,omitempty"`
}

// StatementResult says how one statement was evaluated.
type StatementResult struct {
	PolicyID string `json:"policyId"`
	Sid      string `json:"sid,omitempty"`
	Index    int    `json:"index"`
	Effect   Effect `json:"effect"`
	Matched  bool   `json:"matched"`
	Why      string `json:"why"` // e.g. "principal msp:Org2MSP matched; action matched; condition true"
}

// Explanation is the result of policy:Explain.
type Explanation struct {
	Decision   Decision          `json:"decision"`
	Principal  Principal         `json:"principal"`
	Owner      string            `json:"owner"`   // owner org of the resource
	Default    string            `json:"default"` // which default applied, if any
	Statements []StatementResult `json:"statements"`
}

// DeviceSelector picks devices by id, group or type (any match). An empty
// selector matches every device of the rule's owner.
type DeviceSelector struct {
	Devices []string `json:"devices,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Types   []string `json:"types,omitempty"`
}

// Rule action types.
const (
	ActionTypeAlert     = "alert"
	ActionTypeSetStatus = "set_status"
	ActionTypeCommand   = "command"
)

// RuleAction is what a rule does when its condition holds.
type RuleAction struct {
	Type     string          `json:"type"`               // alert | set_status | command
	Severity string          `json:"severity,omitempty"` // alert: info | warning | critical
	Message  string          `json:"message,omitempty"`  // alert text
	Status   DeviceStatus    `json:"status,omitempty"`   // set_status: e.g. "suspended" (quarantine)
	Command  string          `json:"command,omitempty"`  // command name
	Params   json.RawMessage `json:"params,omitempty"`   // command parameters (JSON object)
	Target   string          `json:"target,omitempty"`   // command target: "" (the device), "device:<id>" or "group:<g>"
	TTL      int64           `json:"ttlSeconds,omitempty"`
}

// Rule automates device management. The condition is CEL over `reading`
// (device, seq, ts, values map name→value) and `device` (id, type, groups,
// attributes, status).
type Rule struct {
	ID              string         `json:"id"`
	Owner           string         `json:"owner"`
	Description     string         `json:"description,omitempty"`
	Selector        DeviceSelector `json:"selector"`
	Condition       string         `json:"condition"`
	Actions         []RuleAction   `json:"actions"`
	CooldownSeconds int64          `json:"cooldownSeconds,omitempty"`
	Disabled        bool           `json:"disabled,omitempty"`
	Version         int            `json:"version"`
	UpdatedAt       time.Time      `json:"updatedAt"`
}

// RuleQuery is the argument of rule:List.
type RuleQuery struct {
	Owner    string `json:"owner,omitempty"`
	PageSize int32  `json:"pageSize,omitempty"`
	Bookmark string `json:"bookmark,omitempty"`
}

// OwnerAndID names the policy: its owner org and its id.
func (p Policy) OwnerAndID() (owner, id string) { return p.Owner, p.ID }

// OwnerAndID names the rule: its owner org and its id.
func (r Rule) OwnerAndID() (owner, id string) { return r.Owner, r.ID }

// RulePage is one page of rules.
type RulePage struct {
	Rules    []Rule `json:"rules"`
	Bookmark string `json:"bookmark,omitempty"`
}

// BatchRequest is the argument of telemetry:SubmitBatch: signed readings,
// possibly of many devices. The batch is accepted whole or refused whole.
//
// telemetry:SubmitPrivateBatch takes the same JSON from the proposal's
// transient data under TransientBatchKey instead of from its arguments.
type BatchRequest struct {
	Readings []reading.Envelope `json:"readings"`
}

// MaxBatchReadings is the most readings one telemetry transaction carries.
const MaxBatchReadings = 500

// DefaultBatchReadings is how many readings a hub (and the bench) puts in
// one transaction by default: the most the chaincode takes, because a
// transaction's fixed costs (two endorsement signatures, validation, the
// envelope) are then shared by the most readings (docs/performance.md,
// "Batch size"). At low load a batch goes once its BatchWait has passed, so
// the size only matters when readings queue.
const DefaultBatchReadings = MaxBatchReadings

// TransientBatchKey is the transient data key of telemetry:SubmitPrivateBatch.
const TransientBatchKey = "batch"

// BatchReceipt is the result of telemetry:Submit and telemetry:SubmitBatch.
type BatchReceipt struct {
	BatchID string       `json:"batchId"` // the transaction ID
	Root    reading.Hash `json:"root"`
	Size    int          `json:"size"`
	Alerts  int          `json:"alerts"`
	// Commands issued by rules during this transaction.
	Commands int `json:"commands"`
}

// BatchRecord is what the ledger keeps of a batch: its commitment. The
// readings are in the block that carried the batch (the arguments of a
// public batch) or, for a private batch, in its owner's collection
// (telemetry:PrivateBatch); the Merkle root over their leaves, in batch
// order, commits to them. Records written before the ledger stopped
// keeping readings also carry "leaves", which readers ignore.
type BatchRecord struct {
	ID        string       `json:"id"`
	Root      reading.Hash `json:"root"`
	Size      int          `json:"size"`
	Submitter string       `json:"submitter"` // client identity ID of the hub
	MSPID     string       `json:"mspId"`
	Timestamp time.Time    `json:"timestamp"`
}

// SeqState is what a device's replay state says of one sequence number.
type SeqState string

// Sequence number states (telemetry:Seen).
const (
	// SeqAccepted: a reading with this sequence number is on the ledger; a
	// batch carrying it again is refused as REPLAY.
	SeqAccepted SeqState = "accepted"
	// SeqNotSeen: no reading with it is on the ledger; a batch may carry it.
	SeqNotSeen SeqState = "not-seen"
	// SeqBelowWindow: the sequence number is at or below the device's
	// highest accepted one minus the replay window. The ledger no longer
	// tells whether it accepted it, and refuses it as REPLAY either way.
	SeqBelowWindow SeqState = "below-window"
)

// SeenAnswer is the result of telemetry:Seen: the state of each sequence
// number asked about, in the order asked.
type SeenAnswer struct {
	Device    string    `json:"device"`
	HighWater uint64    `json:"highWater"` // highest sequence number accepted, 0 if none
	Window    uint64    `json:"window"`    // how far below HighWater the ledger tells sequence numbers apart
	Seqs      []SeqSeen `json:"seqs"`
}

// SeqSeen is one sequence number of a SeenAnswer.
type SeqSeen struct {
	Seq   uint64   `json:"seq"`
	State SeqState `json:"state"`
}

// CommandStatus is a command's lifecycle state:
// pending → delivered → acked | failed | expired. It is defined beside the
// ack parser (reading.ParseAck), which hub and chaincode share.
type CommandStatus = reading.CommandStatus

// Command states.
const (
	CommandPending   CommandStatus = "pending"
	CommandDelivered CommandStatus = "delivered"
	CommandAcked                   = reading.CommandAcked
	CommandFailed                  = reading.CommandFailed
	CommandExpired   CommandStatus = "expired"
)

// Command is an instruction to a device.
type Command struct {
	ID          string          `json:"id"`
	Device      string          `json:"device"`
	Owner       string          `json:"owner"` // device owner's MSP ID
	Name        string          `json:"name"`
	Params      json.RawMessage `json:"params,omitempty"`
	Status      CommandStatus   `json:"status"`
	IssuedBy    string          `json:"issuedBy"` // client ID, or "rule:<id>"
	IssuedAt    time.Time       `json:"issuedAt"`
	ExpiresAt   time.Time       `json:"expiresAt"`
	DeliveredBy string          `json:"deliveredBy,omitempty"` // hub client ID
	DeliveredAt *time.Time      `json:"deliveredAt,omitempty"`
	Result      string          `json:"result,omitempty"`
	CompletedAt *time.Time      `json:"completedAt,omitempty"`
	// CompletedByTx is the transaction that acked, failed or expired the
	// command: a command-ack receipt is of that transaction.
	CompletedByTx string `json:"completedByTx,omitempty"`
	// Private is set for a command a rule issued in a private telemetry
	// batch: it is kept in the owner org's implicit collection, so its
	// lifecycle transactions are endorsed by the owner org alone.
	Private bool `json:"private,omitempty"`
}

// CommandRequest is the argument of command:Send: to one device or a group.
type CommandRequest struct {
	Device string `json:"device,omitempty"`
	Group  string `json:"group,omitempty"`
	// Owner is the org whose group is meant (groups are per org); default
	// the caller's org.
	Owner      string          `json:"owner,omitempty"`
	Name       string          `json:"name"`
	Params     json.RawMessage `json:"params,omitempty"`
	TTLSeconds int64           `json:"ttlSeconds,omitempty"` // default 3600
}

// CommandQuery is the argument of command:List.
type CommandQuery struct {
	Device   string        `json:"device"`
	Status   CommandStatus `json:"status,omitempty"`
	PageSize int32         `json:"pageSize,omitempty"`
	Bookmark string        `json:"bookmark,omitempty"`
}

// CommandPage is one page of commands.
type CommandPage struct {
	Commands []Command `json:"commands"`
	Bookmark string    `json:"bookmark,omitempty"`
}

// AckPayload is what a device signs (domain reading.DomainAck) to
// acknowledge a command; it travels as a reading.Envelope to command:Ack.
// reading.ParseAck is its one parser, used by the hub and the chaincode.
type AckPayload = reading.Ack

// Severity of an alert.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Alert is raised by a rule.
type Alert struct {
	Rule     string `json:"rule"`
	Device   string `json:"device"`
	Seq      uint64 `json:"seq"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// StatusChange records a device lifecycle change.
type StatusChange struct {
	Device string       `json:"device"`
	Owner  string       `json:"owner"`
	From   DeviceStatus `json:"from"`
	To     DeviceStatus `json:"to"`
	Reason string       `json:"reason,omitempty"`
	Cause  string       `json:"cause"` // client ID or "rule:<id>"
}

// BatchSummary is a batch's part of an event.
type BatchSummary struct {
	ID      string       `json:"id"`
	Root    reading.Hash `json:"root"`
	Size    int          `json:"size"`
	Devices []string     `json:"devices"` // distinct, sorted
}

// Event types.
const (
	EventDeviceEnrolled   = "device.enrolled"
	EventDeviceUpdated    = "device.updated"
	EventDeviceKeyRotated = "device.key_rotated"
	EventDeviceStatus     = "device.status"
	EventDeviceTransfer   = "device.transfer"
	EventPolicyChanged    = "policy.changed"
	EventRuleChanged      = "rule.changed"
	EventTelemetryBatch   = "telemetry.batch"
	EventCommandIssued    = "command.issued"
	EventCommandDelivered = "command.delivered"
	EventCommandCompleted = "command.completed"
	EventMessageSent      = "message.sent"
	EventMessageDelivered = "message.delivered"
	EventMessageExpired   = "message.expired"
)

// Event is the payload of the one chaincode event (name EventName) that
// every transaction emits; it carries everything the transaction produced.
type Event struct {
	Type          string         `json:"type"`
	TxID          string         `json:"txId"`
	MSPID         string         `json:"mspId"`  // submitter's org
	Client        string         `json:"client"` // submitter's client identity ID
	Timestamp     time.Time      `json:"timestamp"`
	Devices       []string       `json:"devices,omitempty"` // devices the transaction touched
	Batch         *BatchSummary  `json:"batch,omitempty"`
	Alerts        []Alert        `json:"alerts,omitempty"`
	Commands      []Command      `json:"commands,omitempty"`
	StatusChanges []StatusChange `json:"statusChanges,omitempty"`
	Revocations   []string       `json:"revocations,omitempty"` // device ids revoked or decommissioned
	PolicyID      string         `json:"policyId,omitempty"`
	RuleID        string         `json:"ruleId,omitempty"`
	// Messages are the device-to-device messages the transaction stored,
	// delivered or expired (message.sent carries the signed envelope, so
	// the recipient's hub needs no further read).
	Messages []StoredMessage `json:"messages,omitempty"`
}

// StoredMessage is a device-to-device message the ledger holds for an
// offline recipient, or hands to the recipient's hub.
type StoredMessage struct {
	From      string            `json:"from"`
	To        string            `json:"to"`
	ID        string            `json:"id"`
	Owner     string            `json:"owner"`              // the recipient's owner org
	Envelope  *reading.Envelope `json:"envelope,omitempty"` // the sender's signed message
	SentAt    time.Time         `json:"sentAt"`             // transaction timestamp of message:Send
	ExpiresAt time.Time         `json:"expiresAt"`
	RelayedBy string            `json:"relayedBy"` // client ID of the hub that submitted it
}

// MessageQuery is the argument of message:List: the messages waiting for
// one device.
type MessageQuery struct {
	To       string `json:"to"`
	PageSize int32  `json:"pageSize,omitempty"`
	Bookmark string `json:"bookmark,omitempty"`
}

// MessagePage is one page of waiting messages.
type MessagePage struct {
	Messages []StoredMessage `json:"messages"`
	Bookmark string          `json:"bookmark,omitempty"`
}
