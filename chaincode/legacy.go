package chaincode

import (
	"math"
)

// Readings of the first layout. Until the replay state (replay.go), every
// reading was kept under its own key rd~<device>~<seq, 20 digits> (a plain
// key), in world state or, for a private device, in its owner's implicit
// collection. Those keys stay where they are, and nothing reads their
// values any more: the readings are in the blocks that carried them. What
// they still decide is whether a reading is a replay (see
// docs/decisions.md, "Telemetry at scale: migration"):
//
//   - A public device's replay state is made from them on its first batch
//     after the upgrade, and written with that batch, so this happens once
//     per device.
//   - A private device's cannot be: Fabric runs a range query over private
//     data only in a transaction that writes nothing, and a private batch
//     writes its collection. So a private device enrolled before the
//     upgrade gets a state with firstLayout, and each reading its window
//     takes for new is also looked up under its first-layout key (one
//     point read, as before the upgrade). A private device enrolled after
//     has no such keys, which Enroll records in rs-new~<device>.

// legacyReplay makes the replay state a device's first-layout readings
// imply: the highest of them is the high-water mark, and those within the
// window below it are accepted. Fabric iterates keys upwards only, so the
// highest is found by bisection, each step a range read closed after its
// first key: at most 65 of them, then one range read of at most
// ReplayWindow keys. A device without such readings (every device enrolled
// after the upgrade) costs one empty range read.
func (t *txn) legacyReplay(device string) (replayState, error) {
	var s replayState
	best, ok, err := t.firstLegacySeq(device, 1)
	if err != nil || !ok {
		return s, err
	}
	// A reading exists at best and none above top.
	top := uint64(math.MaxUint64)
	for best < top {
		mid := best + (top-best)/2 + 1 // best < mid <= top
		seq, ok, err := t.firstLegacySeq(device, mid)
		if err != nil {
			return s, err
		}
		if ok {
			best = seq
		} else {
			top = mid - 1
		}
	}
	s.accept(best)
	low := best - min(best, ReplayWindow) + 1
	it, err := t.recordRange(readingKey(device, low), readingKey(device, best))
	if err != nil {
		return s, err
	}
	kvs, err := drain(it)
	if err != nil {
		return s, err
	}
	for _, e := range kvs {
		seq, err := seqFromReadingKey(device, e.Key)
		if err != nil {
			return s, err
		}
		s.accept(seq)
	}
	return s, nil
}

// privateLegacyReplay is the replay state a private device starts with.
func (t *txn) privateLegacyReplay(device string) (replayState, error) {
	born, err := exists(t.l, kindReplayNew, device)
	if err != nil {
		return replayState{}, err
	}
	return replayState{firstLayout: !born}, nil
}

// firstLegacySeq is the lowest sequence number from on of a device's
// first-layout readings, if it has one.
func (t *txn) firstLegacySeq(device string, from uint64) (uint64, bool, error) {
	start, end := readingRange(device, from)
	it, err := t.recordRange(start, end)
	if err != nil {
		return 0, false, err
	}
	defer closeQuery(it)
	if !it.HasNext() {
		return 0, false, nil
	}
	r, err := it.Next()
	if err != nil {
		return 0, false, internal("iterating readings of the first layout", err)
	}
	seq, err := seqFromReadingKey(device, r.GetKey())
	if err != nil {
		return 0, false, err
	}
	return seq, true, nil
}
