package receipt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt/trust"
)

// Step names a step of verification (docs/receipts.md §3).
type Step string

// The steps, in the order they run.
const (
	StepFormat      Step = "format"
	StepAnchor      Step = "anchor"
	StepConfig      Step = "config"
	StepBlocks      Step = "blocks"
	StepTransaction Step = "transaction"
	StepDevice      Step = "device"
	StepSubject     Step = "subject"
)

// Error is why a receipt was refused: the step that failed and its reason.
type Error struct {
	Step Step
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("receipt refused at %s: %v", e.Step, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func fail(step Step, format string, a ...any) error {
	return &Error{Step: step, Err: fmt.Errorf(format, a...)}
}

// Policy paths a receipt is judged by.
const (
	PolicyBlockValidation = "/Channel/Orderer/BlockValidation"
	PolicyEndorsement     = "/Channel/Application/Endorsement"
	PolicyWriters         = "/Channel/Application/Writers"
)

// Result is what a verified receipt proves.
type Result struct {
	Kind      Kind      `json:"kind"`
	Channel   string    `json:"channel"`
	Device    string    `json:"device"`
	TxID      string    `json:"txId"`
	Block     uint64    `json:"block"`
	TxIndex   int       `json:"txIndex"`
	Time      time.Time `json:"time"` // the subject transaction's timestamp
	Function  string    `json:"function"`
	Creator   string    `json:"creator"`   // MSP ID and subject of the client that submitted it
	Endorsers []string  `json:"endorsers"` // orgs whose peers endorsed it
	// The device record in force (for device-status: the one written).
	Owner      string            `json:"owner"`
	Status     api.DeviceStatus  `json:"status"`
	KeyID      string            `json:"keyId"`
	KeyVersion int               `json:"keyVersion"`
	RecordTx   string            `json:"recordTx"`    // the transaction that wrote that record
	RecordAt   uint64            `json:"recordBlock"` // and its block
	Reading    *reading.Payload  `json:"reading,omitempty"`
	Ack        *reading.Ack      `json:"ack,omitempty"`
	StatusNote string            `json:"statusNote,omitempty"`
	Config     uint64            `json:"configSequence"` // sequence of the channel config in force
	Blocks     []uint64          `json:"blocks"`
	Orderers   map[uint64]string `json:"-"`
}

// verifier carries one verification's decoded state.
type verifier struct {
	r       *Receipt
	configs []*configBlock
	chans   []*trust.Channel // parallel to configs
	blocks  []*common.Block
	byNum   map[uint64]*common.Block
	inForce map[uint64]*trust.Channel
	memo    map[[2]uint64]*endorsement // endorsements checked, by block and position
}

// Verify checks a receipt with nothing but the trust anchor, offline
// (docs/receipts.md §3). A refusal is an *Error naming the failed step.
func Verify(data []byte, anchor Anchor) (*Result, error) {
	if err := anchor.validate(); err != nil {
		return nil, &Error{Step: StepAnchor, Err: err}
	}
	r, err := Parse(data)
	if err != nil {
		return nil, &Error{Step: StepFormat, Err: err}
	}
	v := &verifier{r: r, byNum: map[uint64]*common.Block{}, inForce: map[uint64]*trust.Channel{}, memo: map[[2]uint64]*endorsement{}}
	if err := v.config(anchor); err != nil {
		return nil, err
	}
	if err := v.checkBlocks(); err != nil {
		return nil, err
	}
	subject, err := v.subject()
	if err != nil {
		return nil, err
	}
	res := &Result{
		Kind: r.Kind, Channel: r.Channel, Device: r.Device, TxID: r.TxID, Block: subject.block, TxIndex: subject.index,
		Time: subject.time, Function: subject.function, Config: v.inForce[subject.block].Sequence(),
	}
	for _, b := range v.blocks {
		res.Blocks = append(res.Blocks, b.GetHeader().GetNumber())
	}
	e, err := v.endorsed(subject)
	if err != nil {
		return nil, &Error{Step: StepTransaction, Err: fmt.Errorf("transaction %s (block %d): %w", r.TxID, subject.block, err)}
	}
	res.Creator, res.Endorsers = e.creator.String(), e.orgs
	switch r.Kind {
	case KindReading:
		err = v.reading(subject, res)
	case KindCommandAck:
		err = v.ack(subject, res)
	case KindDeviceStatus:
		err = v.status(subject, res)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// config checks the anchor and the config chain (§3 steps 2 and 3).
func (v *verifier) config(anchor Anchor) error {
	if v.r.Channel != anchor.Channel {
		return fail(StepAnchor, "the receipt is of channel %q, the trust anchor of channel %q", v.r.Channel, anchor.Channel)
	}
	for i, raw := range v.r.configRaw {
		b, err := decodeBlock(fmt.Sprintf("config[%d]", i), raw)
		if err != nil {
			return &Error{Step: StepConfig, Err: err}
		}
		n := b.GetHeader().GetNumber()
		if i == 0 {
			if n != 0 {
				return fail(StepAnchor, "config[0] is block %d; the genesis block (0) comes first", n)
			}
			if got := hex.EncodeToString(headerHash(b.GetHeader())); got != anchor.Genesis {
				return fail(StepAnchor, "the genesis block's hash is %s, the trust anchor's %s: this receipt is of another network", got, anchor.Genesis)
			}
			for j, m := range b.GetMetadata().GetMetadata() {
				if len(m) != 0 {
					return fail(StepConfig, "the genesis block's metadata %s holds %d bytes: it is trusted through the anchor alone, and nothing signs its metadata", common.BlockMetadataIndex(j), len(m))
				}
			}
		}
		if err := checkDataHash(b); err != nil {
			return &Error{Step: StepConfig, Err: err}
		}
		if err := checkNoUnsigned(b); err != nil {
			return &Error{Step: StepConfig, Err: err}
		}
		cb, err := configOf(b)
		if err != nil {
			return &Error{Step: StepConfig, Err: err}
		}
		if cb.channel != v.r.Channel {
			return fail(StepConfig, "config block %d is of channel %q, not %q", n, cb.channel, v.r.Channel)
		}
		ch, err := trust.FromConfig(cb.channel, cb.config)
		if err != nil {
			return fail(StepConfig, "config block %d: %v", n, err)
		}
		if i > 0 {
			prev := v.configs[i-1]
			if n <= prev.number {
				return fail(StepConfig, "config block %d follows config block %d: config blocks come in ascending order", n, prev.number)
			}
			if cb.config.GetSequence() != prev.config.GetSequence()+1 {
				return fail(StepConfig, "config block %d has configuration sequence %d after %d: a config block in between is missing", n, cb.config.GetSequence(), prev.config.GetSequence())
			}
			if err := v.signedBy(b, v.chans[i-1], n); err != nil {
				return &Error{Step: StepConfig, Err: err}
			}
		} else if cb.config.GetSequence() != 0 {
			return fail(StepConfig, "the genesis block has configuration sequence %d, not 0", cb.config.GetSequence())
		}
		v.configs = append(v.configs, cb)
		v.chans = append(v.chans, ch)
	}
	return nil
}

// signedBy checks a block's orderer signatures against a configuration,
// and that they name config block lastConfig.
func (v *verifier) signedBy(b *common.Block, ch *trust.Channel, lastConfig uint64) error {
	n := b.GetHeader().GetNumber()
	sigs, err := blockSignatures(b)
	if err != nil {
		return err
	}
	if sigs.lastConfig != lastConfig {
		return fmt.Errorf("block %d: its orderers' signatures name config block %d, not %d", n, sigs.lastConfig, lastConfig)
	}
	at, err := firstTxTime(b)
	if err != nil {
		return err
	}
	if err := ch.Evaluate(PolicyBlockValidation, sigs.signed, at); err != nil {
		return fmt.Errorf("block %d is not signed as the channel requires: %w", n, err)
	}
	return nil
}

// checkBlocks checks every block of the receipt (§3 step 4).
func (v *verifier) checkBlocks() error {
	for i, raw := range v.r.blocksRaw {
		b, err := decodeBlock(fmt.Sprintf("blocks[%d]", i), raw)
		if err != nil {
			return &Error{Step: StepBlocks, Err: err}
		}
		n := b.GetHeader().GetNumber()
		if i > 0 && n <= v.blocks[i-1].GetHeader().GetNumber() {
			return fail(StepBlocks, "block %d follows block %d: blocks come in ascending order, each once", n, v.blocks[i-1].GetHeader().GetNumber())
		}
		if err := checkDataHash(b); err != nil {
			return &Error{Step: StepBlocks, Err: err}
		}
		if err := checkNoUnsigned(b); err != nil {
			return &Error{Step: StepBlocks, Err: err}
		}
		// The config in force is the newest config block at or below n.
		k := -1
		for j, c := range v.configs {
			if c.number <= n {
				k = j
			}
		}
		if k < 0 {
			return fail(StepBlocks, "block %d: no config block of the receipt is in force at it", n)
		}
		if err := v.signedBy(b, v.chans[k], v.configs[k].number); err != nil {
			return &Error{Step: StepBlocks, Err: err}
		}
		v.blocks = append(v.blocks, b)
		v.byNum[n] = b
		v.inForce[n] = v.chans[k]
	}
	return nil
}

// subject finds and decodes the subject transaction (§3 step 5).
func (v *verifier) subject() (*endorserTx, error) {
	var found *endorserTx
	for _, b := range v.blocks {
		for i := range b.GetData().GetData() {
			if txIDAt(b, i) != v.r.TxID {
				continue
			}
			if found != nil {
				return nil, fail(StepTransaction, "transaction %s is in the receipt twice (block %d and %d)", v.r.TxID, found.block, b.GetHeader().GetNumber())
			}
			tx, err := parseEndorserTx(b, i, v.r.Channel, v.r.Chaincode)
			if err != nil {
				return nil, fail(StepTransaction, "transaction %s (block %d, position %d): %v", v.r.TxID, b.GetHeader().GetNumber(), i, err)
			}
			found = tx
		}
	}
	if found == nil {
		return nil, fail(StepTransaction, "no block of the receipt holds transaction %s", v.r.TxID)
	}
	return found, nil
}

// maxAnchors bounds how far back a verifier follows the transactions that
// wrote the versions a transaction read.
const maxAnchors = 32

// endorsed checks a transaction's creator, and that its endorsements
// satisfy, for each key it writes, the key-level policy the receipt proves
// in force, and the channel's endorsement policy for every other key
// (docs/receipts.md §4.6).
func (v *verifier) endorsed(tx *endorserTx) (*endorsement, error) {
	at := [2]uint64{tx.block, uint64(tx.index)}
	if e, ok := v.memo[at]; ok {
		if e == nil {
			return nil, errors.New("its endorsement depends on itself")
		}
		return e, nil
	}
	if len(v.memo) >= maxAnchors {
		return nil, fmt.Errorf("the receipt makes the verifier follow more than %d transactions", maxAnchors)
	}
	v.memo[at] = nil // in progress
	e, err := checkEndorsed(v.inForce[tx.block], tx, func(k string) ([]byte, bool, error) { return v.keyPolicy(tx, k) })
	if err != nil {
		return nil, err
	}
	v.memo[at] = e
	return e, nil
}

// keyPolicy is the key-level policy in force for a key tx writes, when the
// receipt proves it: tx read the key at a version whose transaction is in
// the receipt, is endorsed, and set the key's policy — or wrote the value
// alone, keeping the policy it read in turn.
func (v *verifier) keyPolicy(tx *endorserTx, key string) ([]byte, bool, error) {
	rd, ok := tx.reads[key]
	if !ok || rd.GetVersion() == nil {
		return nil, false, nil
	}
	ver := rd.GetVersion()
	b, ok := v.byNum[ver.GetBlockNum()]
	if !ok {
		return nil, false, nil
	}
	prev, err := parseEndorserTx(b, int(ver.GetTxNum()), v.r.Channel, v.r.Chaincode)
	if err != nil {
		return nil, false, fmt.Errorf("the transaction that wrote %s before it (block %d, position %d): %w", readable(key), ver.GetBlockNum(), ver.GetTxNum(), err)
	}
	if _, err := v.endorsed(prev); err != nil {
		return nil, false, fmt.Errorf("transaction %s (block %d), which wrote %s before it, is not endorsed as the channel requires: %w", prev.txID, prev.block, readable(key), err)
	}
	if pol, ok := prev.sbe[key]; ok {
		return pol, true, nil
	}
	if w, ok := prev.writes[key]; ok && w.GetIsDelete() {
		return nil, true, nil // a delete takes the key's policy with it
	}
	// A write of the value alone keeps the policy the key had before.
	return v.keyPolicy(prev, key)
}

// readable renders a composite key for a message.
func readable(key string) string {
	return strings.TrimSuffix(strings.ReplaceAll(strings.TrimPrefix(key, "\x00"), "\x00", "~"), "~")
}

// recordInForce follows the subject's read of the device record to the
// transaction that wrote it (§5).
func (v *verifier) recordInForce(subject *endorserTx, res *Result) (*api.Device, error) {
	key := compositeKey("dev", v.r.Device)
	rd, ok := subject.reads[key]
	if !ok {
		return nil, fail(StepDevice, "transaction %s did not read device %s's record, so it proves no key", subject.txID, v.r.Device)
	}
	ver := rd.GetVersion()
	if ver == nil {
		return nil, fail(StepDevice, "transaction %s read device %s's record when it did not exist: the ledger never enrolled it", subject.txID, v.r.Device)
	}
	b, ok := v.byNum[ver.GetBlockNum()]
	if !ok {
		return nil, fail(StepDevice, "device %s's record in force was written in block %d, which the receipt does not hold", v.r.Device, ver.GetBlockNum())
	}
	tx, err := parseEndorserTx(b, int(ver.GetTxNum()), v.r.Channel, v.r.Chaincode)
	if err != nil {
		return nil, fail(StepDevice, "the transaction that wrote device %s's record (block %d, position %d): %v", v.r.Device, ver.GetBlockNum(), ver.GetTxNum(), err)
	}
	d, err := v.writtenRecord(tx, StepDevice)
	if err != nil {
		return nil, err
	}
	res.RecordTx, res.RecordAt = tx.txID, tx.block
	return d, nil
}

// writtenRecord decodes the device record a transaction wrote and checks
// that the owner it names endorsed it.
func (v *verifier) writtenRecord(tx *endorserTx, step Step) (*api.Device, error) {
	w, ok := tx.writes[compositeKey("dev", v.r.Device)]
	if !ok || w.GetIsDelete() {
		return nil, fail(step, "transaction %s (block %d) does not write device %s's record", tx.txID, tx.block, v.r.Device)
	}
	var d api.Device
	if err := reading.DecodeStrict(w.GetValue(), &d); err != nil {
		return nil, fail(step, "device %s's record written by transaction %s is not a device record: %v", v.r.Device, tx.txID, err)
	}
	switch d.Status {
	case api.StatusProvisioned, api.StatusActive, api.StatusSuspended, api.StatusRevoked, api.StatusDecommissioned:
	default:
		return nil, fail(step, "device %s's record has status %q, which is not a device status", v.r.Device, d.Status)
	}
	if d.ID != v.r.Device {
		return nil, fail(step, "the record under device %s's key is of device %q", v.r.Device, d.ID)
	}
	key, err := reading.ParsePublicKey(d.PublicKey)
	if err != nil {
		return nil, fail(step, "device %s's record: %v", v.r.Device, err)
	}
	if key.Fingerprint() != d.KeyID {
		return nil, fail(step, "device %s's record names key %s, but its public key's fingerprint is %s", v.r.Device, d.KeyID, key.Fingerprint())
	}
	if d.Owner == "" {
		return nil, fail(step, "device %s's record names no owner", v.r.Device)
	}
	e, err := v.endorsed(tx)
	if err != nil {
		return nil, fail(step, "transaction %s (block %d), which wrote device %s's record: %v", tx.txID, tx.block, v.r.Device, err)
	}
	// A record is its owner's word, or the consortium's: what another org
	// alone wrote about it proves nothing (docs/receipts.md §5).
	if !slices.Contains(e.orgs, d.Owner) && e.channel != nil {
		return nil, fail(step, "device %s's record names owner %s, but transaction %s that wrote it was endorsed by %s alone, and not as the channel's endorsement policy requires", v.r.Device, d.Owner, tx.txID, strings.Join(e.orgs, ", "))
	}
	return &d, nil
}

func fillRecord(res *Result, d *api.Device) {
	res.Owner, res.Status, res.KeyID, res.KeyVersion, res.StatusNote = d.Owner, d.Status, d.KeyID, d.KeyVersion, d.StatusNote
}

// reading checks a reading receipt (§6).
func (v *verifier) reading(tx *endorserTx, res *Result) error {
	d, err := v.recordInForce(tx, res)
	if err != nil {
		return err
	}
	fillRecord(res, d)
	if tx.function != "telemetry:SubmitBatch" && tx.function != "telemetry:Submit" {
		return fail(StepSubject, "transaction %s calls %s, not telemetry:SubmitBatch or telemetry:Submit", tx.txID, tx.function)
	}
	rr, payload, sig, path := v.r.Reading, v.r.payload, v.r.signature, v.r.path
	w, ok := tx.writes[compositeKey("batch", tx.txID)]
	if !ok || w.GetIsDelete() {
		return fail(StepSubject, "transaction %s writes no batch record: it committed no public batch", tx.txID)
	}
	var batch batchRecord
	if err := reading.DecodeStrict(w.GetValue(), &batch); err != nil {
		return fail(StepSubject, "the batch record of transaction %s: %v", tx.txID, err)
	}
	if batch.ID != tx.txID {
		return fail(StepSubject, "the batch record of transaction %s names batch %q", tx.txID, batch.ID)
	}
	if rr.Size != batch.Size {
		return fail(StepSubject, "the receipt says the batch holds %d readings, its committed record %d", rr.Size, batch.Size)
	}
	if err := reading.VerifyInclusion(reading.LeafHash(payload, sig), rr.Index, rr.Size, path, batch.Root); err != nil {
		return fail(StepSubject, "the reading is not in batch %s (root %s): %v", tx.txID, batch.Root, err)
	}
	p, err := reading.ParsePayload(payload)
	if err != nil {
		return fail(StepSubject, "the reading's payload: %v", err)
	}
	if p.Device != v.r.Device {
		return fail(StepSubject, "the reading is of device %q, the receipt is about device %q", p.Device, v.r.Device)
	}
	if d.Status != api.StatusActive {
		return fail(StepSubject, "device %s was %s when the batch committed; the ledger takes readings of active devices only", d.ID, d.Status)
	}
	key, _ := reading.ParsePublicKey(d.PublicKey) // checked in writtenRecord
	if err := key.Verify(reading.Message(reading.DomainReading, payload), sig); err != nil {
		return fail(StepSubject, "the reading's signature does not verify with device %s's key %s in force (version %d)", d.ID, d.KeyID, d.KeyVersion)
	}
	res.Reading = &p
	return nil
}

// batchRecord is a committed batch record (api.BatchRecord). Records
// written before the ledger stopped keeping readings also list the leaves;
// the root commits to them, so they are accepted and not used.
type batchRecord struct {
	api.BatchRecord
	Leaves []reading.Hash `json:"leaves,omitempty"`
}

// ack checks a command-ack receipt (§6).
func (v *verifier) ack(tx *endorserTx, res *Result) error {
	d, err := v.recordInForce(tx, res)
	if err != nil {
		return err
	}
	fillRecord(res, d)
	if tx.function != "command:Ack" || len(tx.args) != 2 {
		return fail(StepSubject, "transaction %s calls %s with %d arguments, not command:Ack with the ack", tx.txID, tx.function, len(tx.args)-1)
	}
	var env reading.Envelope
	if err := reading.DecodeStrict(tx.args[1], &env); err != nil {
		return fail(StepSubject, "the ack envelope: %v", err)
	}
	a, err := reading.ParseAck(env)
	if err != nil {
		return fail(StepSubject, "%v", err)
	}
	if a.Device != v.r.Device || a.Command != *v.r.Command {
		return fail(StepSubject, "the ack is of device %q command %q, the receipt is about device %q command %q", a.Device, a.Command, v.r.Device, *v.r.Command)
	}
	if d.Status == api.StatusRevoked || d.Status == api.StatusDecommissioned {
		return fail(StepSubject, "device %s was %s when the ack committed", d.ID, d.Status)
	}
	key, _ := reading.ParsePublicKey(d.PublicKey)
	if err := key.Verify(reading.Message(reading.DomainAck, env.Payload), env.Signature); err != nil {
		return fail(StepSubject, "the ack's signature does not verify with device %s's key %s in force (version %d)", d.ID, d.KeyID, d.KeyVersion)
	}
	w, ok := tx.writes[compositeKey("cmd", a.Device, a.Command)]
	if !ok || w.GetIsDelete() {
		return fail(StepSubject, "transaction %s does not write command %s's record", tx.txID, a.Command)
	}
	var cmd api.Command
	if err := reading.DecodeStrict(w.GetValue(), &cmd); err != nil {
		return fail(StepSubject, "command %s's record: %v", a.Command, err)
	}
	if cmd.ID != a.Command || cmd.Device != a.Device || string(cmd.Status) != string(a.Status) || cmd.Result != a.Result {
		return fail(StepSubject, "command %s's committed record (%s %s %q) is not what the device acked (%s %q)", a.Command, cmd.Device, cmd.Status, cmd.Result, a.Status, a.Result)
	}
	res.Ack = &a
	return nil
}

// status checks a device-status receipt (§6).
func (v *verifier) status(tx *endorserTx, res *Result) error {
	d, err := v.writtenRecord(tx, StepSubject)
	if err != nil {
		return err
	}
	fillRecord(res, d)
	res.RecordTx, res.RecordAt = tx.txID, tx.block
	return nil
}
