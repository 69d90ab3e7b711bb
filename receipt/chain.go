package receipt

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/receipt/trust"
)

// Chain verifies a channel's blocks one after the other, from the genesis
// block, as a follower that trusts no peer: each block must chain to the
// previous one and carry the orderers' signatures the configuration in
// force requires, and each transaction the peer marked VALID must be
// endorsed as Fabric validates it (key-level policies tracked from the
// metadata valid transactions wrote). What it cannot check is the peer's
// MVCC verdict: it takes a transaction marked invalid as invalid, and one
// marked valid as valid once its endorsements hold.
type Chain struct {
	channel   string
	chaincode string
	ch        *trust.Channel
	next      uint64
	last      []byte
	policies  map[string][]byte // key-level endorsement policies in force, by key
	configRaw []byte            // the config block in force
}

// ChainState is what a Chain needs to resume: kept by its user with the
// last block it applied.
type ChainState struct {
	Next     uint64
	LastHash []byte
	Config   []byte            // the config block in force (common.Block bytes)
	Policies map[string][]byte // key-level policies in force
}

// NewChain starts verification at the genesis block, which must match the
// anchor. The genesis block itself is returned by Next like any other.
func NewChain(anchor Anchor, chaincode string) (*Chain, error) {
	if err := anchor.validate(); err != nil {
		return nil, err
	}
	last, err := hex.DecodeString(anchor.Genesis)
	if err != nil {
		return nil, err
	}
	return &Chain{channel: anchor.Channel, chaincode: chaincode, last: last, policies: map[string][]byte{}}, nil
}

// ResumeChain continues from a saved state.
func ResumeChain(anchor Anchor, chaincode string, st ChainState) (*Chain, error) {
	c, err := NewChain(anchor, chaincode)
	if err != nil {
		return nil, err
	}
	if st.Next == 0 {
		return c, nil
	}
	var cb common.Block
	if err := proto.Unmarshal(st.Config, &cb); err != nil {
		return nil, fmt.Errorf("saved chain state: config block: %w", err)
	}
	if c.ch, err = trust.FromConfigBlock(&cb); err != nil {
		return nil, fmt.Errorf("saved chain state: %w", err)
	}
	c.next, c.last, c.configRaw = st.Next, st.LastHash, st.Config
	for k, v := range st.Policies {
		c.policies[k] = v
	}
	return c, nil
}

// Next is the number of the block Verify expects.
func (c *Chain) Next() uint64 { return c.next }

// VerifiedBlock is a block Verify accepted.
type VerifiedBlock struct {
	Number uint64
	Hash   []byte
	Time   time.Time
	Txs    []VerifiedTx
	// Config is set for a config block: its bytes, to save as ChainState.Config.
	Config []byte
	// Policies are the key-level policies the block's valid transactions
	// set (nil value: removed), to save with ChainState.
	Policies map[string][]byte
}

// VerifiedTx is one transaction of a verified block. Foreign is set for a
// transaction of another chaincode or a system transaction, which is not
// decoded further.
type VerifiedTx struct {
	Index          int
	TxID           string
	Time           time.Time
	ValidationCode string
	Foreign        bool
	Function       string
	Args           [][]byte
	CreatorMSP     string
	Creator        string
	Endorsers      []string
	Writes         map[string][]byte // the chaincode's keys written (not deleted), valid transactions only
	// PrivateWrites are the hashes of the private data it wrote:
	// collection → hex SHA-256 of the key → SHA-256 of the value.
	PrivateWrites map[string]map[string][]byte
	Event         *peer.ChaincodeEvent
}

// Valid reports whether the peer marked the transaction VALID.
func (t *VerifiedTx) Valid() bool { return t.ValidationCode == peer.TxValidationCode_VALID.String() }

// Verify checks the next block and returns what it holds.
func (c *Chain) Verify(b *common.Block) (*VerifiedBlock, error) {
	n := b.GetHeader().GetNumber()
	if n != c.next {
		return nil, fmt.Errorf("block %d is not the next block (%d)", n, c.next)
	}
	if err := checkDataHash(b); err != nil {
		return nil, err
	}
	hash := headerHash(b.GetHeader())
	if n == 0 {
		if !bytes.Equal(hash, c.last) {
			return nil, fmt.Errorf("the genesis block's hash is %x, the trust anchor's %x: another network", hash, c.last)
		}
	} else if !bytes.Equal(b.GetHeader().GetPreviousHash(), c.last) {
		return nil, fmt.Errorf("block %d does not chain to block %d (previous hash %x, block %d's hash %x)", n, n-1, b.GetHeader().GetPreviousHash(), n-1, c.last)
	}
	vb := &VerifiedBlock{Number: n, Hash: hash, Policies: map[string][]byte{}}
	at, err := firstTxTime(b)
	if err != nil {
		return nil, err
	}
	vb.Time = at
	if cb, err := configOf(b); err == nil {
		if err := c.config(b, cb); err != nil {
			return nil, err
		}
		raw, err := proto.Marshal(b)
		if err != nil {
			return nil, err
		}
		vb.Config, c.configRaw = raw, raw
	} else {
		if err := c.signedBy(b); err != nil {
			return nil, err
		}
		if err := c.transactions(b, vb); err != nil {
			return nil, err
		}
	}
	c.next, c.last = n+1, hash
	return vb, nil
}

func (c *Chain) signedBy(b *common.Block) error {
	sigs, err := blockSignatures(b)
	if err != nil {
		return err
	}
	at, err := firstTxTime(b)
	if err != nil {
		return err
	}
	if err := c.ch.Evaluate(PolicyBlockValidation, sigs.signed, at); err != nil {
		return fmt.Errorf("block %d is not signed as the channel requires: %w", b.GetHeader().GetNumber(), err)
	}
	return nil
}

func (c *Chain) config(b *common.Block, cb *configBlock) error {
	n := b.GetHeader().GetNumber()
	if cb.channel != c.channel {
		return fmt.Errorf("config block %d is of channel %q, not %q", n, cb.channel, c.channel)
	}
	next, err := trust.FromConfig(cb.channel, cb.config)
	if err != nil {
		return fmt.Errorf("config block %d: %w", n, err)
	}
	if n > 0 {
		if cb.config.GetSequence() != c.ch.Sequence()+1 {
			return fmt.Errorf("config block %d has configuration sequence %d after %d", n, cb.config.GetSequence(), c.ch.Sequence())
		}
		if err := c.signedBy(b); err != nil {
			return err
		}
	}
	c.ch = next
	return nil
}

// transactions checks and decodes a block's transactions in order: key-level
// policies a valid transaction sets apply to the transactions after it.
func (c *Chain) transactions(b *common.Block, vb *VerifiedBlock) error {
	flags := b.GetMetadata().GetMetadata()
	var filter []byte
	if len(flags) > int(common.BlockMetadataIndex_TRANSACTIONS_FILTER) {
		filter = flags[common.BlockMetadataIndex_TRANSACTIONS_FILTER]
	}
	data := b.GetData().GetData()
	if len(filter) != len(data) {
		return fmt.Errorf("block %d has %d transactions and %d validation flags", b.GetHeader().GetNumber(), len(data), len(filter))
	}
	for i := range data {
		code := peer.TxValidationCode(filter[i]).String()
		vt := VerifiedTx{Index: i, ValidationCode: code}
		tx, err := parseEndorserTx(b, i, c.channel, c.chaincode)
		if err != nil {
			// Another chaincode's transaction, or one that does not decode:
			// nothing of it is indexed. A VALID one of this chaincode that
			// does not decode is an error.
			vt.Foreign = true
			vt.TxID = txIDAt(b, i)
			vb.Txs = append(vb.Txs, vt)
			continue
		}
		vt.TxID, vt.Time, vt.Function, vt.Args = tx.txID, tx.time, tx.function, tx.args
		if !vt.Valid() {
			vb.Txs = append(vb.Txs, vt)
			continue
		}
		if err := c.endorsed(tx, &vt); err != nil {
			return fmt.Errorf("block %d transaction %d (%s), which the peer marked VALID: %w", b.GetHeader().GetNumber(), i, tx.txID, err)
		}
		vt.Writes = map[string][]byte{}
		for k, w := range tx.writes {
			if w.GetIsDelete() {
				delete(c.policies, k)
				vb.Policies[k] = nil
				continue
			}
			vt.Writes[k] = w.GetValue()
		}
		for k, p := range tx.sbe {
			if len(p) == 0 {
				delete(c.policies, k)
				vb.Policies[k] = nil
			} else {
				c.policies[k] = p
				vb.Policies[k] = p
			}
		}
		vt.Event = tx.event
		vt.PrivateWrites = tx.private
		vb.Txs = append(vb.Txs, vt)
	}
	return nil
}

// endorsed checks a valid transaction's creator and endorsements against
// the policies in force: each written key's key-level policy, and the
// channel's endorsement policy for keys without one.
func (c *Chain) endorsed(tx *endorserTx, vt *VerifiedTx) error {
	e, err := checkEndorsed(c.ch, tx, func(k string) ([]byte, bool, error) {
		p, ok := c.policies[k]
		return p, ok, nil
	})
	if err != nil {
		return err
	}
	vt.CreatorMSP, vt.Creator, vt.Endorsers = e.creator.MSPID, e.creator.Cert.Subject.String(), e.orgs
	return nil
}

// State is what ResumeChain needs, as of the last verified block.
func (c *Chain) State() ChainState {
	p := make(map[string][]byte, len(c.policies))
	for k, v := range c.policies {
		p[k] = v
	}
	return ChainState{Next: c.next, LastHash: c.last, Config: c.configRaw, Policies: p}
}
