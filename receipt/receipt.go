// Package receipt holds iotledger's receipts: self-contained proofs that a
// device-signed reading, a command ack or a change of a device's record was
// committed on the channel, and the offline verifier that checks them with
// nothing but a trust anchor (docs/receipts.md is the specification).
//
// Verification needs no network and no Fabric SDK: only protobuf decoding of
// Fabric's blocks and the standard library's crypto (through receipt/trust).
package receipt

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// Format names this version of the receipt format.
const Format = "iotledger-receipt/1"

// Kind is what a receipt proves.
type Kind string

// The kinds of receipt.
const (
	KindReading      Kind = "reading"       // a device-signed reading in a committed batch
	KindCommandAck   Kind = "command-ack"   // a device-signed command ack
	KindDeviceStatus Kind = "device-status" // a device record as a transaction wrote it (enrolment, rotation, revocation)
)

// MaxBytes bounds a receipt the verifier reads: whole blocks are inside, and
// a block is at most the channel's AbsoluteMaxBytes (10 MB here).
const MaxBytes = 64 << 20

// Receipt is the JSON document of docs/receipts.md §2.
type Receipt struct {
	Format    string   `json:"format"`
	Kind      Kind     `json:"kind"`
	Channel   string   `json:"channel"`
	Chaincode string   `json:"chaincode"`
	Device    string   `json:"device"`
	TxID      string   `json:"txId"`
	Config    []string `json:"config"` // base64 common.Block: genesis first, then every later config block in force
	Blocks    []string `json:"blocks"` // base64 common.Block holding the subject and its anchors, ascending
	Reading   *Reading `json:"reading,omitempty"`
	Command   *string  `json:"command,omitempty"`

	// What Parse decoded: every base64 and hex value.
	configRaw, blocksRaw [][]byte
	payload, signature   []byte
	path                 [][32]byte
}

// Reading is the reading of a kind-reading receipt and its Merkle path.
type Reading struct {
	Payload   string   `json:"payload"`   // base64 of the signed payload bytes
	Signature string   `json:"signature"` // base64 of the device signature
	Index     int      `json:"index"`
	Size      int      `json:"size"`
	Path      []string `json:"path"` // hex hashes, leaf to root
}

// Parse decodes a receipt strictly (no unknown, duplicate or case-variant
// keys, nothing after the object) and checks that the kind's fields, and
// only those, are present.
func Parse(data []byte) (*Receipt, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("receipt is %d bytes, the limit is %d", len(data), MaxBytes)
	}
	var r Receipt
	if err := reading.DecodeStrict(data, &r); err != nil {
		return nil, fmt.Errorf("receipt is not valid receipt JSON: %w", err)
	}
	if r.Format != Format {
		return nil, fmt.Errorf("format is %q, this verifier reads %q", r.Format, Format)
	}
	for _, f := range []struct{ name, v string }{{"channel", r.Channel}, {"chaincode", r.Chaincode}, {"device", r.Device}} {
		if f.v == "" {
			return nil, fmt.Errorf("%s is missing", f.name)
		}
	}
	if len(r.TxID) != 64 || strings.ToLower(r.TxID) != r.TxID {
		return nil, fmt.Errorf("txId must be 64 lowercase hex characters, got %q", r.TxID)
	}
	if _, err := hex.DecodeString(r.TxID); err != nil {
		return nil, fmt.Errorf("txId: %w", err)
	}
	if len(r.Config) == 0 {
		return nil, errors.New("config holds no block: the genesis block comes first")
	}
	if len(r.Blocks) == 0 {
		return nil, errors.New("blocks holds no block")
	}
	switch r.Kind {
	case KindReading:
		if r.Reading == nil {
			return nil, errors.New("a reading receipt needs the reading field")
		}
	case KindCommandAck:
		if r.Command == nil || *r.Command == "" {
			return nil, errors.New("a command-ack receipt needs the command field")
		}
	case KindDeviceStatus:
	default:
		return nil, fmt.Errorf("kind %q is not one of reading, command-ack, device-status", r.Kind)
	}
	if r.Reading != nil && r.Kind != KindReading {
		return nil, fmt.Errorf("a %s receipt has no reading field", r.Kind)
	}
	if r.Command != nil && r.Kind != KindCommandAck {
		return nil, fmt.Errorf("a %s receipt has no command field", r.Kind)
	}
	if err := refuseNulls(data); err != nil {
		return nil, err
	}
	var err error
	if r.configRaw, err = decodeAll("config", r.Config); err != nil {
		return nil, err
	}
	if r.blocksRaw, err = decodeAll("blocks", r.Blocks); err != nil {
		return nil, err
	}
	if rr := r.Reading; rr != nil {
		var present struct {
			Reading map[string]json.RawMessage `json:"reading"`
		}
		if err := json.Unmarshal(data, &present); err != nil {
			return nil, fmt.Errorf("receipt is not valid receipt JSON: %w", err)
		}
		for _, k := range []string{"payload", "signature", "index", "size", "path"} {
			if _, ok := present.Reading[k]; !ok {
				return nil, fmt.Errorf("reading.%s is missing", k)
			}
		}
		if r.payload, err = decodeB64("reading.payload", rr.Payload); err != nil {
			return nil, err
		}
		if r.signature, err = decodeB64("reading.signature", rr.Signature); err != nil {
			return nil, err
		}
		for i, h := range rr.Path {
			p, err := reading.ParseHash(h)
			if err != nil || strings.ToLower(h) != h {
				return nil, fmt.Errorf("reading.path[%d] is not 64 lowercase hex characters", i)
			}
			r.path = append(r.path, p)
		}
	}
	return &r, nil
}

func decodeAll(field string, in []string) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := decodeB64(fmt.Sprintf("%s[%d]", field, i), s)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// refuseNulls refuses a null anywhere in the receipt: a field is present
// with a value, or absent.
func refuseNulls(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receipt is not valid JSON: %w", err)
		}
		if tok.Kind() == 'n' {
			return fmt.Errorf("null at %s: a field is given a value, or left out", dec.StackPointer())
		}
	}
}

// Marshal encodes the receipt as indented JSON.
func (r *Receipt) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeB64 decodes standard, padded base64 and nothing else (Go's
// decoder would skip line breaks).
func decodeB64(field, s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%s is not standard base64: it holds a line break", field)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s is not standard base64: %w", field, err)
	}
	return b, nil
}

// metadataEntries is how many metadata entries a Fabric v2 block has.
const metadataEntries = 5

// decodeBlock decodes one common.Block of the receipt. Its encoding must
// be canonical — no unknown fields, the five metadata entries, and the
// bytes exactly those that encoding the decoded block gives — so that a
// receipt has one encoding: framing nobody signs cannot vary.
func decodeBlock(field string, raw []byte) (*common.Block, error) {
	var b common.Block
	if err := proto.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s is not a block: %w", field, err)
	}
	if b.GetHeader() == nil || b.GetData() == nil || b.GetMetadata() == nil {
		return nil, fmt.Errorf("%s: a block has a header, data and metadata", field)
	}
	for _, m := range []proto.Message{&b, b.GetHeader(), b.GetData(), b.GetMetadata()} {
		if len(m.ProtoReflect().GetUnknown()) != 0 {
			return nil, fmt.Errorf("%s: a block with fields Fabric does not define is not canonical", field)
		}
	}
	if n := len(b.GetMetadata().GetMetadata()); n != metadataEntries {
		return nil, fmt.Errorf("%s: a block has %d metadata entries, not %d", field, metadataEntries, n)
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(&b)
	if err != nil || !bytes.Equal(again, raw) {
		return nil, fmt.Errorf("%s is not canonically encoded (encoding it again gives other bytes)", field)
	}
	return &b, nil
}

// encodeBlock is decodeBlock's inverse.
func encodeBlock(b *common.Block) (string, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// DecodeBlocks returns the receipt's blocks (not its config blocks),
// unverified.
func (r *Receipt) DecodeBlocks() ([]*common.Block, error) {
	out := make([]*common.Block, 0, len(r.Blocks))
	raws, err := decodeAll("blocks", r.Blocks)
	if err != nil {
		return nil, err
	}
	for i, raw := range raws {
		b, err := decodeBlock(fmt.Sprintf("blocks[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Envelope returns the envelope of transaction txID from the receipt's
// blocks, unverified.
func (r *Receipt) Envelope(txID string) (*common.Envelope, error) {
	blocks, err := r.DecodeBlocks()
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		for i, raw := range b.GetData().GetData() {
			if txIDAt(b, i) == txID {
				var env common.Envelope
				if err := proto.Unmarshal(raw, &env); err != nil {
					return nil, err
				}
				return &env, nil
			}
		}
	}
	return nil, fmt.Errorf("the receipt holds no transaction %s", txID)
}
