package receipt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// Anchor is what a verifier trusts: the channel's name and the hash of its
// genesis block header (docs/receipts.md §1). Every member computes the same.
type Anchor struct {
	Channel string `json:"channel"`
	Genesis string `json:"genesis"` // hex SHA-256 of block 0's DER header
}

// AnchorOf computes the anchor of a channel from its genesis block.
func AnchorOf(genesis *common.Block) (Anchor, error) {
	if genesis.GetHeader().GetNumber() != 0 {
		return Anchor{}, fmt.Errorf("block %d is not a genesis block (number 0)", genesis.GetHeader().GetNumber())
	}
	if err := checkDataHash(genesis); err != nil {
		return Anchor{}, err
	}
	cb, err := configOf(genesis)
	if err != nil {
		return Anchor{}, err
	}
	return Anchor{Channel: cb.channel, Genesis: hex.EncodeToString(headerHash(genesis.GetHeader()))}, nil
}

// AnchorOfFile computes the anchor from a genesis block file (the one a
// channel was created with, common.Block protobuf bytes).
func AnchorOfFile(path string) (Anchor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Anchor{}, err
	}
	var b common.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return Anchor{}, fmt.Errorf("%s is not a block: %w", path, err)
	}
	return AnchorOf(&b)
}

// ParseAnchor decodes an anchor strictly.
func ParseAnchor(data []byte) (Anchor, error) {
	var a Anchor
	if err := reading.DecodeStrict(data, &a); err != nil {
		return a, fmt.Errorf("trust anchor is not valid anchor JSON: %w", err)
	}
	return a, a.validate()
}

func (a Anchor) validate() error {
	if a.Channel == "" {
		return errors.New("trust anchor: channel is missing")
	}
	if b, err := hex.DecodeString(a.Genesis); err != nil || len(b) != 32 {
		return fmt.Errorf("trust anchor: genesis must be 64 hex characters, got %q", a.Genesis)
	}
	return nil
}
