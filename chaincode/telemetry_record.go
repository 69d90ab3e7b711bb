package chaincode

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
)

// The value of a reading key rd~<device>~<seq> holds only what cannot be
// derived from the key or from the signed payload. The device and sequence
// number are in the key; a public reading's device clock and values are in
// its payload and are decoded from it when the reading is read. Version 1
// is binary:
//
//	byte     0x01, the version (a record of the first layout is JSON and starts with '{')
//	byte     flags (bit 0 is reserved: it marked the earlier split layout of
//	         private readings, which keep the same record in their owner's
//	         implicit collection now)
//	uvarint  index of the reading in its batch
//	varint   committed: transaction timestamp, Unix seconds
//	uvarint  committed: nanoseconds within the second (< 1e9)
//	key id   32 bytes if flag bit 1 is set (the id is 64 lowercase hex
//	         digits, a SHA-256 fingerprint), else a string (uvarint length,
//	         then the bytes)
//	batch id 32 bytes if flag bit 2 is set (the id is 64 lowercase hex
//	         digits, as Fabric transaction ids are), else a string
//	string   payload, the signed bytes
//	string   signature
//
// Varints take their shortest form. Nothing may follow the last field.
const (
	recordVersion    byte = 0x01
	recordFlagKeyHex byte = 1 << 1
	recordFlagTxHex  byte = 1 << 2
	recordKnownFlags      = recordFlagKeyHex | recordFlagTxHex
	// maxRecordString bounds a length prefix so that a corrupt record
	// cannot ask for a huge allocation.
	maxRecordString = 1 << 24
)

// errRecord says that a stored reading record is malformed.
var errRecord = errors.New("malformed stored reading record")

// encodeRecord encodes a reading's stored record. Device, Seq, Timestamp
// and Values are not stored (they are in the key and the payload).
func encodeRecord(r *api.StoredReading) []byte {
	n := 2 + 5*binary.MaxVarintLen64 + len(r.KeyID) + len(r.BatchID) + len(r.Payload) + len(r.Signature)
	b := make([]byte, 0, n)
	flags := byte(0)
	if hex32(r.KeyID) {
		flags |= recordFlagKeyHex
	}
	if hex32(r.BatchID) {
		flags |= recordFlagTxHex
	}
	b = append(b, recordVersion, flags)
	b = binary.AppendUvarint(b, uint64(r.Index)) //nolint:gosec // an index in a batch is never negative
	b = binary.AppendVarint(b, r.Committed.Unix())
	b = binary.AppendUvarint(b, uint64(r.Committed.Nanosecond())) //nolint:gosec // 0 ≤ ns < 1e9
	b = appendID(b, r.KeyID, flags&recordFlagKeyHex != 0)
	b = appendID(b, r.BatchID, flags&recordFlagTxHex != 0)
	b = appendString(b, r.Payload)
	b = appendString(b, r.Signature)
	return b
}

func appendString(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// hex32 reports whether id is 64 lowercase hex digits, which the record
// keeps as the 32 bytes they spell.
func hex32(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func appendID(b []byte, id string, raw bool) []byte {
	if raw {
		// hex32 checked the digits, so decoding cannot fail; 32 zero
		// bytes keep the layout if it ever did.
		out, err := hex.AppendDecode(b, []byte(id))
		if err != nil {
			return append(b, make([]byte, 32)...)
		}
		return out
	}
	return appendString(b, []byte(id))
}

// recordReader reads the fields of a version 1 record in order.
type recordReader struct {
	b   []byte
	err error
}

func (rr *recordReader) fail(what string) {
	if rr.err == nil {
		rr.err = fmt.Errorf("%w: %s", errRecord, what)
	}
}

func (rr *recordReader) uvarint(what string) uint64 {
	if rr.err != nil {
		return 0
	}
	v, n := binary.Uvarint(rr.b)
	if n <= 0 || (n > 1 && rr.b[n-1] == 0) { // malformed, or longer than needed
		rr.fail(what)
		return 0
	}
	rr.b = rr.b[n:]
	return v
}

func (rr *recordReader) varint(what string) int64 {
	if rr.err != nil {
		return 0
	}
	v, n := binary.Varint(rr.b)
	if n <= 0 || (n > 1 && rr.b[n-1] == 0) { // malformed, or longer than needed
		rr.fail(what)
		return 0
	}
	rr.b = rr.b[n:]
	return v
}

func (rr *recordReader) bytes(what string, n uint64) []byte {
	if rr.err != nil {
		return nil
	}
	if n > uint64(len(rr.b)) || n > maxRecordString {
		rr.fail(what)
		return nil
	}
	out := rr.b[:n:n]
	rr.b = rr.b[n:]
	return out
}

func (rr *recordReader) string(what string) []byte {
	return rr.bytes(what, rr.uvarint(what+" length"))
}

// id reads an id written by appendID.
func (rr *recordReader) id(what string, raw bool) string {
	if raw {
		return hex.EncodeToString(rr.bytes(what, 32))
	}
	id := string(rr.string(what))
	if hex32(id) {
		rr.fail(what + " not in its short form")
	}
	return id
}

// decodeRecord decodes a stored record of either layout into the record
// fields it holds. The caller adds Device and Seq (from the key) and, for a
// public reading, Timestamp and Values (from the payload).
func decodeRecord(b []byte) (api.StoredReading, error) {
	var r api.StoredReading
	if len(b) > 0 && b[0] == '{' {
		// The first layout: api.StoredReading as JSON.
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("%w: %w", errRecord, err)
		}
		return r, nil
	}
	if len(b) < 2 || b[0] != recordVersion {
		return r, fmt.Errorf("%w: unknown version", errRecord)
	}
	flags := b[1]
	if flags&^recordKnownFlags != 0 {
		return r, fmt.Errorf("%w: unknown flags %#x", errRecord, flags)
	}
	rr := &recordReader{b: b[2:]}
	index := rr.uvarint("index")
	sec := rr.varint("committed seconds")
	nsec := rr.uvarint("committed nanoseconds")
	keyID := rr.id("key id", flags&recordFlagKeyHex != 0)
	batchID := rr.id("batch id", flags&recordFlagTxHex != 0)
	if index > MaxBatchReadings {
		rr.fail("index out of range")
	}
	if nsec >= uint64(time.Second) {
		rr.fail("committed nanoseconds out of range")
	}
	r.Index = int(index) //nolint:gosec // checked above
	r.Committed = time.Unix(sec, int64(nsec)).UTC()
	r.KeyID, r.BatchID = keyID, batchID
	r.Payload = rr.string("payload")
	r.Signature = rr.string("signature")
	if rr.err == nil && len(rr.b) != 0 {
		rr.fail("trailing bytes")
	}
	if rr.err != nil {
		return api.StoredReading{}, rr.err
	}
	return r, nil
}
