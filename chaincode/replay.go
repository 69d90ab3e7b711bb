package chaincode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/iotledger/iotledger/chaincode/api"
)

// ReplayWindow is how many sequence numbers, counting down from a device's
// highest accepted one, the ledger tells apart: within the window a
// reading that arrives late (store and forward, a batch retried after a
// later one committed, two hubs relaying one device) is still accepted if
// its sequence number was not; below it every reading is refused. 1,024
// is two full batches (MaxBatchReadings) and then some, or 17 minutes of a
// device reporting every second, for at most 128 bytes of state per
// device (docs/decisions.md, "Telemetry at scale").
const ReplayWindow = 1024

const replayWords = ReplayWindow / 64

// replayState is a device's anti-replay state: the highest sequence number
// accepted (0 before the first) and, for the ReplayWindow sequence numbers
// hwm, hwm-1, ..., hwm-ReplayWindow+1, which of them were not accepted.
// Bit i of missing stands for hwm-i; bit 0 (hwm itself) is never set, nor
// is a bit for a sequence number below 1. Keeping the ones not accepted
// rather than the ones accepted makes the usual state — every reading
// arrived — all zeros, which encodes in a few bytes.
type replayState struct {
	hwm     uint64
	missing [replayWords]uint64
	// firstLayout: a reading the window takes for new is also looked up
	// under its first-layout key (a private device enrolled before the
	// replay state; see legacy.go).
	firstLayout bool
}

// What a replay state says of one sequence number (telemetry:Seen reports
// it as api.SeqState).
type seenState int

const (
	seqNotSeen     seenState = iota // not accepted: a reading with it is new
	seqAccepted                     // accepted: a reading with it is a replay
	seqBelowWindow                  // at or below hwm-ReplayWindow: refused, whether it was accepted or not
)

func (s *replayState) seen(seq uint64) seenState {
	if seq > s.hwm {
		return seqNotSeen
	}
	i := s.hwm - seq
	if i >= ReplayWindow {
		return seqBelowWindow
	}
	if s.missing[i/64]&(1<<(i%64)) != 0 {
		return seqNotSeen
	}
	return seqAccepted
}

// accept records seq as accepted. Accepting a set of sequence numbers
// gives the same state in any order: the high-water mark is the largest,
// and whatever falls below the window is forgotten either way.
func (s *replayState) accept(seq uint64) {
	if seq == 0 {
		return // not a sequence number (readings start at 1)
	}
	if seq > s.hwm {
		s.advance(seq - s.hwm)
		s.hwm = seq
		return
	}
	if i := s.hwm - seq; i < ReplayWindow {
		s.missing[i/64] &^= 1 << (i % 64)
	}
}

// advance moves the window up by d: the old bits move d places towards the
// bottom of the window, and the d-1 sequence numbers between the old and
// the new high-water mark become missing.
func (s *replayState) advance(d uint64) {
	var m [replayWords]uint64
	if d < ReplayWindow {
		words, shift := int(d/64), uint(d%64)
		for j := replayWords - 1; j >= words; j-- {
			m[j] = s.missing[j-words] << shift
			if shift > 0 && j-words-1 >= 0 {
				m[j] |= s.missing[j-words-1] >> (64 - shift)
			}
		}
	}
	// Bits 1..min(d, ReplayWindow)-1 are sequence numbers skipped: all
	// above the old high-water mark, so all at least 1.
	for i := uint64(1); i < min(d, ReplayWindow); i++ {
		m[i/64] |= 1 << (i % 64)
	}
	s.missing = m
}

// The encoding of a replay state (the value of rs~<device>):
//
//	byte     0x01, the version; 0x02 for the same layout with firstLayout
//	uvarint  hwm, in its shortest form, at least 1
//	bytes    missing: bit i in byte i/8 at weight 1<<(i%8); trailing zero
//	         bytes are left out, so the last byte present is not zero; at
//	         most ReplayWindow/8 bytes
//
// A device whose readings all arrived takes 2 to 11 bytes. Exactly one
// encoding decodes to each state: decodeReplay refuses anything else.
const (
	replayVersion            byte = 0x01
	replayVersionFirstLayout byte = 0x02
)

var errReplayState = errors.New("malformed replay state")

func encodeReplay(s *replayState) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+ReplayWindow/8)
	v := replayVersion
	if s.firstLayout {
		v = replayVersionFirstLayout
	}
	b = append(b, v)
	b = binary.AppendUvarint(b, s.hwm)
	var bm [ReplayWindow / 8]byte
	for j, w := range s.missing {
		binary.LittleEndian.PutUint64(bm[j*8:], w)
	}
	n := len(bm)
	for n > 0 && bm[n-1] == 0 {
		n--
	}
	return append(b, bm[:n]...)
}

func decodeReplay(b []byte) (replayState, error) {
	var s replayState
	if len(b) == 0 || (b[0] != replayVersion && b[0] != replayVersionFirstLayout) {
		return s, fmt.Errorf("%w: unknown version", errReplayState)
	}
	s.firstLayout = b[0] == replayVersionFirstLayout
	hwm, n := binary.Uvarint(b[1:])
	switch {
	case n <= 0:
		return s, fmt.Errorf("%w: high-water mark", errReplayState)
	case n > 1 && b[n] == 0:
		return s, fmt.Errorf("%w: high-water mark not in its shortest form", errReplayState)
	case hwm == 0:
		return s, fmt.Errorf("%w: high-water mark 0 (a state is written with the first reading)", errReplayState)
	}
	bm := b[1+n:]
	switch {
	case len(bm) > ReplayWindow/8:
		return s, fmt.Errorf("%w: %d bytes of window, at most %d", errReplayState, len(bm), ReplayWindow/8)
	case len(bm) > 0 && bm[len(bm)-1] == 0:
		return s, fmt.Errorf("%w: trailing zero bytes", errReplayState)
	}
	var full [ReplayWindow / 8]byte
	copy(full[:], bm)
	for j := range s.missing {
		s.missing[j] = binary.LittleEndian.Uint64(full[j*8:])
	}
	if s.missing[0]&1 != 0 {
		return s, fmt.Errorf("%w: the high-water mark is marked missing", errReplayState)
	}
	if hwm < ReplayWindow && s.highestBit() >= hwm {
		return s, fmt.Errorf("%w: sequence numbers below 1 marked missing", errReplayState)
	}
	s.hwm = hwm
	return s, nil
}

// highestBit is the index of the highest bit set in missing (0 if none).
func (s *replayState) highestBit() uint64 {
	for j := replayWords - 1; j >= 0; j-- {
		if w := s.missing[j]; w != 0 {
			return uint64(j*64 + 63 - bits.LeadingZeros64(w)) //nolint:gosec // j < replayWords
		}
	}
	return 0
}

// replayKey is the key of a device's replay state.
func replayKey(device string) (string, error) {
	return compositeKey(kindReplay, device)
}

// loadReplay reads a device's replay state from where t's records go
// (world state, or the private batch's collection). A device without one
// has it made from its readings of the first layout (legacyReplay).
func (t *txn) loadReplay(device string) (replayState, error) {
	k, err := replayKey(device)
	if err != nil {
		return replayState{}, err
	}
	b, err := t.getRecord(k)
	if err != nil {
		return replayState{}, err
	}
	if b == nil && t.private != "" {
		return t.privateLegacyReplay(device)
	}
	if b == nil {
		return t.legacyReplay(device)
	}
	s, err := decodeReplay(b)
	if err != nil {
		return replayState{}, inconsistent("replay state "+readableKey(k), err.Error())
	}
	return s, nil
}

func (t *txn) putReplay(device string, s *replayState) error {
	k, err := replayKey(device)
	if err != nil {
		return err
	}
	return t.putRecord(k, encodeReplay(s))
}

// seenByLedger is what the ledger says of a device's sequence number: the
// replay state, and for a state with firstLayout the reading's key of the
// first layout (a point read where t's records are).
func (t *txn) seenByLedger(s *replayState, device string, seq uint64) (seenState, error) {
	st := s.seen(seq)
	if st != seqNotSeen || !s.firstLayout {
		return st, nil
	}
	old, err := t.getRecord(readingKey(device, seq))
	if err != nil {
		return st, err
	}
	if old != nil {
		return seqAccepted, nil
	}
	return seqNotSeen, nil
}

// replayRefusal is the REPLAY error of a reading the ledger has, or nil.
func (t *txn) replayRefusal(s *replayState, device string, seq uint64) error {
	st, err := t.seenByLedger(s, device, seq)
	if err != nil {
		return err
	}
	switch st {
	case seqAccepted:
		return api.Errorf(api.CodeReplay, "this device and sequence number are already on the ledger")
	case seqBelowWindow:
		return api.Errorf(api.CodeReplay, fmt.Sprintf("older than the device's replay window: the ledger accepted sequence number %d, and refuses every reading at or below %d (%d below it)",
			s.hwm, s.hwm-ReplayWindow, ReplayWindow))
	}
	return nil
}
