package chaincode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// readingAt signs the device's reading with sequence number seq.
func (d *testDevice) readingAt(t *testing.T, seq uint64) reading.Envelope {
	t.Helper()
	d.seq = seq
	temp := 4.0
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: seq, Timestamp: 1_700_000_000_000,
		Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &temp}}})
	require.NoError(t, err)
	return env
}

func (w *world) seen(c caller, device string, seqs ...uint64) api.SeenAnswer {
	w.t.Helper()
	return must[api.SeenAnswer](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Seen(ctx, device, jsonArg(w.t, seqs))
	})
}

func states(a api.SeenAnswer) map[uint64]api.SeqState {
	out := map[uint64]api.SeqState{}
	for _, s := range a.Seqs {
		out[s.Seq] = s.State
	}
	return out
}

func TestReplayWindowAcceptsLateReadingsAndRefusesReplays(t *testing.T) {
	w := newWorld(t)
	d := w.enroll(org1Operator, "d", "fridge")
	const below = "older than the device's replay window"
	steps := []struct {
		name string
		seqs []uint64
		// refused: which reading the refusal names and what it says; ""
		// means the batch is accepted.
		refused string
	}{
		{"in order", []uint64{1, 2, 3}, ""},
		{"out of order, gaps left", []uint64{10, 5, 4}, ""},
		{"a replay refuses its batch", []uint64{7, 5}, "reading 1 (device d seq 5): this device and sequence number are already on the ledger"},
		{"late readings within the window", []uint64{7, 6, 8, 9}, ""},
		{"a replay of the first reading", []uint64{1}, "already on the ledger"},
		{"twice in one batch", []uint64{11, 11}, "reading 1 (device d seq 11): the batch carries this device and sequence number twice (also reading 0)"},
		{"a jump larger than the window", []uint64{2010}, ""},
		{"below the window", []uint64{986}, "reading 0 (device d seq 986): " + below + ": the ledger accepted sequence number 2010, and refuses every reading at or below 986 (1024 below it)"},
		{"the lowest in the window", []uint64{987}, ""},
		{"its replay", []uint64{987}, "already on the ledger"},
		{"never submitted, now below the window", []uint64{11}, below},
		{"a batch is judged against the state before it", []uint64{3100, 2050}, ""},
		{"2050 fell out of the window with 3100", []uint64{2050}, below},
		{"the bottom of the new window", []uint64{2077}, ""},
		{"the top of the window", []uint64{3100}, "already on the ledger"},
		{"the largest sequence number", []uint64{math.MaxUint64}, ""},
		{"and its replay", []uint64{math.MaxUint64}, "already on the ledger"},
		{"just below it", []uint64{math.MaxUint64 - 1, math.MaxUint64 - ReplayWindow + 1}, ""},
		{"just below the window", []uint64{math.MaxUint64 - ReplayWindow}, below},
	}
	for _, st := range steps {
		envs := make([]reading.Envelope, len(st.seqs))
		for i, seq := range st.seqs {
			envs[i] = d.readingAt(t, seq)
		}
		if st.refused == "" {
			_, err := w.submitBatch(org1Hub, envs...)
			require.NoError(t, err, st.name)
			require.Contains(t, w.lastTx.order, ckey(t, kindReplay, "d"), st.name)
			continue
		}
		refused(t, w, org1Hub, api.CodeReplay, st.refused, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: envs}))
		})
	}
	got := w.seen(org1Auditor, "d", 1, 3100, 2077, 2078, 3099, 3200, math.MaxUint64, math.MaxUint64-2, math.MaxUint64-ReplayWindow)
	require.Equal(t, uint64(math.MaxUint64), got.HighWater)
	require.Equal(t, []api.SeqSeen{
		{Seq: 1, State: api.SeqBelowWindow}, {Seq: 3100, State: api.SeqBelowWindow}, {Seq: 2077, State: api.SeqBelowWindow},
		{Seq: 2078, State: api.SeqBelowWindow}, {Seq: 3099, State: api.SeqBelowWindow}, {Seq: 3200, State: api.SeqBelowWindow},
		{Seq: math.MaxUint64, State: api.SeqAccepted}, {Seq: math.MaxUint64 - 2, State: api.SeqNotSeen},
		{Seq: math.MaxUint64 - ReplayWindow, State: api.SeqBelowWindow},
	}, got.Seqs)
}

func TestSeenAnswersFromTheReplayState(t *testing.T) {
	w := newWorld(t)
	d := w.enroll(org1Operator, "d", "fridge")
	require.Equal(t, api.SeenAnswer{Device: "d", Window: ReplayWindow, Seqs: []api.SeqSeen{{Seq: 1, State: api.SeqNotSeen}}},
		w.seen(org1Hub, "d", 1), "a device without readings")
	_, err := w.submitBatch(org1Hub, d.readingAt(t, 2), d.readingAt(t, 1), d.readingAt(t, 1500))
	require.NoError(t, err)
	// The hub that writes the device asks, and so does a reader; the order
	// asked is the order answered, duplicates included.
	for _, c := range []caller{org1Hub, org1Auditor, org1Operator} {
		got := w.seen(c, "d", 1500, 1, 476, 477, 1499, 1501, 1500)
		require.Equal(t, uint64(1500), got.HighWater)
		require.Equal(t, []api.SeqSeen{
			{Seq: 1500, State: api.SeqAccepted}, {Seq: 1, State: api.SeqBelowWindow}, {Seq: 476, State: api.SeqBelowWindow},
			{Seq: 477, State: api.SeqNotSeen}, {Seq: 1499, State: api.SeqNotSeen}, {Seq: 1501, State: api.SeqNotSeen},
			{Seq: 1500, State: api.SeqAccepted},
		}, got.Seqs)
		require.Empty(t, w.lastTx.writes, "an evaluation writes nothing")
	}
	// Another org's hub that the owner lets write the device may ask too.
	_, err = w.putPolicy(org1Operator, grant("org2-hubs", []string{"role:hub@Org2MSP"}, []string{api.ActionTelemetryWrite}, []string{"d"}))
	require.NoError(t, err)
	require.Equal(t, api.SeqAccepted, states(w.seen(org2Hub, "d", 1500))[1500])
	refused(t, w, org2Operator, api.CodeAccessDenied, "may neither telemetry:write nor telemetry:read", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Seen(ctx, "d", `[2]`)
	})
}

func TestABatchWritesItsCommitmentOneReplayStatePerDeviceAndWhatItsRulesWrite(t *testing.T) {
	w := newWorld(t)
	var devs []*testDevice
	for i := range 10 {
		devs = append(devs, w.enroll(org1Operator, fmt.Sprintf("d%d", i), "fridge"))
	}
	r := hotRule("hot", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}, api.RuleAction{Type: api.ActionTypeCommand, Command: "cool"})
	r.CooldownSeconds = 60
	_, err := w.putRule(org1Operator, r)
	require.NoError(t, err)
	var envs []reading.Envelope
	for i := range 100 {
		temp := 4.0
		if i == 42 {
			temp = 30 // device d2 is too warm, once
		}
		envs = append(envs, devs[i%10].reading(t, temp))
	}
	_, err = w.submitBatch(org1Hub, envs...)
	require.NoError(t, err)
	require.Len(t, w.lastEvent.Commands, 1)
	cmd := w.lastEvent.Commands[0]
	want := []string{ckey(t, kindBatch, w.lastTx.id)}
	for _, d := range devs {
		want = append(want, ckey(t, kindReplay, d.id))
	}
	want = append(want, ckey(t, kindCooldown, "Org1MSP", "hot", "d2"), ckey(t, kindCommand, "d2", cmd.ID), ckey(t, kindCommandID, cmd.ID))
	require.ElementsMatch(t, want, w.lastTx.order)
	for _, d := range devs {
		st, err := decodeReplay(w.lastTx.writes[ckey(t, kindReplay, d.id)])
		require.NoError(t, err)
		require.Equal(t, replayState{hwm: 10}, st, "device %s: ten readings in order, none missing", d.id)
	}
}

// oldReadings writes reading keys of the first layout, as the chaincode
// before the replay state left them.
func oldReadings(kvs map[string][]byte, device string, seqs ...uint64) {
	for _, seq := range seqs {
		kvs[readingKey(device, seq)] = []byte{0x01, 0x06}
	}
}

func TestFirstBatchAfterTheUpgradeTakesTheReplayStateFromTheOldReadings(t *testing.T) {
	w := newWorld(t)
	m := w.enroll(org1Operator, "m", "fridge")
	w.enroll(org1Operator, "m-2", "fridge")
	var old []uint64
	for seq := uint64(2990); seq <= 3000; seq++ {
		if seq != 2995 {
			old = append(old, seq)
		}
	}
	oldReadings(w.state, "m", append([]uint64{1, 2, 3, 1500, 1977}, old...)...)
	// Another device's keys sort next to m's; they are not m's.
	oldReadings(w.state, "m-2", 9000, 9001)
	before := len(w.state)

	// Seen answers from the old readings without writing anything.
	w.calls = nil
	require.Equal(t, map[uint64]api.SeqState{
		3000: api.SeqAccepted, 2990: api.SeqAccepted, 1977: api.SeqAccepted, 2995: api.SeqNotSeen, 1978: api.SeqNotSeen,
		1976: api.SeqBelowWindow, 1500: api.SeqBelowWindow, 3001: api.SeqNotSeen, 9000: api.SeqNotSeen,
	}, states(w.seen(org1Hub, "m", 3000, 2990, 1977, 2995, 1978, 1976, 1500, 3001, 9000)))
	require.LessOrEqual(t, w.calls["GetStateByRange"], 66, "bisection, then the window")

	for _, tc := range []struct {
		seq      uint64
		contains string
	}{
		{3000, "already on the ledger"},
		{2990, "already on the ledger"},
		{1977, "already on the ledger"},
		{1976, "older than the device's replay window: the ledger accepted sequence number 3000"},
		{1, "older than the device's replay window"},
	} {
		refused(t, w, org1Hub, api.CodeReplay, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{m.readingAt(t, 3001), m.readingAt(t, tc.seq)}}))
		})
	}
	// A reading the old layout never had, within the window, and a new one.
	_, err := w.submitBatch(org1Hub, m.readingAt(t, 2995), m.readingAt(t, 3001))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{ckey(t, kindBatch, w.lastTx.id), ckey(t, kindReplay, "m")}, w.lastTx.order, "old keys are left alone")
	require.Len(t, w.state, before+2)
	st, err := decodeReplay(w.state[ckey(t, kindReplay, "m")])
	require.NoError(t, err)
	require.Equal(t, uint64(3001), st.hwm)
	require.Equal(t, seqAccepted, st.seen(2990))
	require.Equal(t, seqAccepted, st.seen(2995))
	require.Equal(t, seqNotSeen, st.seen(1978))
	require.Equal(t, seqBelowWindow, st.seen(1977))

	// From now on the state is read, and the old keys are not.
	w.calls = nil
	_, err = w.submitBatch(org1Hub, m.readingAt(t, 3002))
	require.NoError(t, err)
	require.Zero(t, w.calls["GetStateByRange"])
	refused(t, w, org1Hub, api.CodeReplay, "already on the ledger", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{m.readingAt(t, 2999)}}))
	})

	// A device without old readings costs one empty range read, once.
	n := w.enroll(org1Operator, "n", "fridge")
	w.calls = nil
	_, err = w.submitBatch(org1Hub, n.readingAt(t, 1))
	require.NoError(t, err)
	require.Equal(t, 1, w.calls["GetStateByRange"])
}

func TestTheHighestOldReadingIsFoundWithinTheBound(t *testing.T) {
	for _, seqs := range [][]uint64{
		{1}, {5}, {math.MaxUint64}, {1, math.MaxUint64}, {1, 2, 3, 4, 1 << 40}, {7, 8, 1<<63 - 1, 1 << 63},
	} {
		w := newWorld(t)
		d := w.enroll(org1Operator, "d", "fridge")
		oldReadings(w.state, "d", seqs...)
		top := slices.Max(seqs)
		w.calls = nil
		got := w.seen(org1Hub, "d", top)
		require.Equal(t, top, got.HighWater, "old readings %v", seqs)
		require.Equal(t, api.SeqAccepted, got.Seqs[0].State)
		require.LessOrEqual(t, w.calls["GetStateByRange"], 66)
		if top < math.MaxUint64 {
			_, err := w.submitBatch(org1Hub, d.readingAt(t, top+1))
			require.NoError(t, err)
		}
	}
}

func TestAPrivateDeviceEnrolledBeforeTheUpgradeHasItsReadingsLookedUpByTheirOldKeys(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	// Enrolled before the upgrade: no rs-new~ marker, old readings 1, 2, 3
	// and 1500 in Org1's collection.
	delete(w.state, ckey(t, kindReplayNew, "monitor"))
	coll := implicitCollection("Org1MSP")
	w.private[coll] = map[string][]byte{}
	oldReadings(w.private[coll], "monitor", 1, 2, 3, 1500)

	submit := func(seqs ...uint64) (string, error) {
		envs := make([]reading.Envelope, len(seqs))
		for i, seq := range seqs {
			envs[i] = mon.readingAt(t, seq)
		}
		return w.submitPrivate(org1Hub, envs...)
	}
	_, err := submit(4, 2)
	require.ErrorContains(t, err, "reading 1 (device monitor seq 2): this device and sequence number are already on the ledger")
	_, err = submit(4, 5)
	require.NoError(t, err)
	st, err := decodeReplay(w.private[coll][ckey(t, kindReplay, "monitor")])
	require.NoError(t, err)
	require.Equal(t, replayState{hwm: 5, firstLayout: true, missing: [replayWords]uint64{0b1_1100}}, st)
	require.Equal(t, replayVersionFirstLayout, w.private[coll][ckey(t, kindReplay, "monitor")][0])

	// With its replay state written, old readings are still refused: in the
	// window, above it, and below it.
	for _, seq := range []uint64{3, 1500} {
		_, err = submit(seq)
		require.ErrorContains(t, err, "already on the ledger", "seq %d", seq)
	}
	_, err = submit(3000)
	require.NoError(t, err)
	_, err = submit(1500)
	require.ErrorContains(t, err, "older than the device's replay window")
	require.Equal(t, map[uint64]api.SeqState{1: api.SeqBelowWindow, 3000: api.SeqAccepted, 2999: api.SeqNotSeen},
		states(w.seen(org1Hub, "monitor", 1, 3000, 2999)))
	require.NotContains(t, w.state, ckey(t, kindReplay, "monitor"), "a private device's replay state is private too")

	// The window takes 2998 for new; its old key is looked up (a point read).
	oldReadings(w.private[coll], "monitor", 2998)
	require.Equal(t, api.SeqAccepted, states(w.seen(org1Hub, "monitor", 2998))[2998])
	_, err = submit(2998)
	require.ErrorContains(t, err, "already on the ledger")
}

func TestAPrivateDeviceEnrolledAfterTheUpgradeReadsOneKeyPerBatch(t *testing.T) {
	w := newWorld(t)
	mon := w.enrollPrivate(org1Operator, "monitor", "vitals")
	require.Contains(t, w.lastTx.order, ckey(t, kindReplayNew, "monitor"), "enrolment records that it has no old readings")
	w.calls = nil
	_, err := w.submitPrivate(org1Hub, mon.readingAt(t, 1), mon.readingAt(t, 2), mon.readingAt(t, 3))
	require.NoError(t, err)
	require.Equal(t, 1, w.calls["GetPrivateData"], "its replay state, nothing per reading")
	st, err := decodeReplay(w.private[implicitCollection("Org1MSP")][ckey(t, kindReplay, "monitor")])
	require.NoError(t, err)
	require.Equal(t, replayState{hwm: 3}, st)

	public := w.enroll(org1Operator, "fridge", "fridge")
	require.NotContains(t, w.lastTx.order, ckey(t, kindReplayNew, "fridge"), "a public device's first batch looks for itself")
	_, err = w.submitBatch(org1Hub, public.reading(t, 4))
	require.NoError(t, err)
}

// model is the replay window by its definition, for comparison.
type model struct {
	hwm      uint64
	accepted map[uint64]bool
}

func (m *model) seen(seq uint64) seenState {
	switch {
	case seq > m.hwm:
		return seqNotSeen
	case m.hwm >= ReplayWindow && seq <= m.hwm-ReplayWindow:
		return seqBelowWindow
	case m.accepted[seq]:
		return seqAccepted
	}
	return seqNotSeen
}

func TestReplayStateMatchesItsDefinitionWhateverTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		base := uint64(rng.IntN(3)) * uint64(rng.IntN(1<<20))
		spread := []uint64{8, 100, ReplayWindow, 3 * ReplayWindow}[round%4]
		var seqs []uint64
		for range 1 + rng.IntN(200) {
			seqs = append(seqs, 1+base+uint64(rng.Int64N(int64(spread))))
		}
		m := &model{accepted: map[uint64]bool{}}
		var s replayState
		for _, seq := range seqs {
			s.accept(seq)
			m.accepted[seq], m.hwm = true, max(m.hwm, seq)
		}
		lo := uint64(1)
		if m.hwm > ReplayWindow+3 {
			lo = m.hwm - ReplayWindow - 3
		}
		for seq := lo; seq <= m.hwm+3; seq++ {
			require.Equal(t, m.seen(seq), s.seen(seq), "round %d seq %d (hwm %d)", round, seq, m.hwm)
		}
		enc := encodeReplay(&s)
		rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
		var shuffled replayState
		for _, seq := range seqs {
			shuffled.accept(seq)
		}
		require.Equal(t, enc, encodeReplay(&shuffled), "round %d: the order does not matter", round)
		back, err := decodeReplay(enc)
		require.NoError(t, err)
		require.Equal(t, s, back)
	}
}

func TestReplayStateEncodingIsCompact(t *testing.T) {
	var s replayState
	for seq := uint64(1); seq <= 100_000; seq++ {
		s.accept(seq)
	}
	require.Equal(t, binary.AppendUvarint([]byte{replayVersion}, 100_000), encodeReplay(&s), "every reading arrived: no window bytes")
	var first replayState
	first.accept(5)
	require.Equal(t, []byte{replayVersion, 5, 0b0001_1110}, encodeReplay(&first), "1 to 4 missing")
	var jump replayState
	jump.accept(1)
	jump.accept(1 << 40)
	enc := encodeReplay(&jump)
	require.Len(t, enc, 1+6+ReplayWindow/8, "a jump leaves the whole window missing")
	require.Equal(t, byte(0xfe), enc[7])
	require.Equal(t, byte(0xff), enc[len(enc)-1])
}

func TestReplayStateDecodingIsStrict(t *testing.T) {
	good := func(hwm uint64, window ...byte) []byte {
		return append(binary.AppendUvarint([]byte{replayVersion}, hwm), window...)
	}
	full := bytes.Repeat([]byte{0xff}, ReplayWindow/8)
	full[0] = 0xfe // bit 0 is the high-water mark, accepted
	firstLayout := []byte{replayVersionFirstLayout, 9, 0xfe}
	for _, b := range [][]byte{good(1), good(2, 0x02), good(9, 0xfe), good(ReplayWindow, full[:ReplayWindow/8-1]...), good(1<<40, full...), good(math.MaxUint64), firstLayout} {
		s, err := decodeReplay(b)
		require.NoError(t, err, "%x", b)
		require.Equal(t, b, encodeReplay(&s))
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "unknown version"},
		{"version 3", []byte{3, 1}, "unknown version"},
		{"version 0", []byte{0, 1}, "unknown version"},
		{"JSON", []byte(`{"hwm":1}`), "unknown version"},
		{"no high-water mark", []byte{replayVersion}, "high-water mark"},
		{"cut varint", []byte{replayVersion, 0x80}, "high-water mark"},
		{"varint too long", []byte{replayVersion, 0x81, 0x00}, "shortest form"},
		{"varint overflow", append([]byte{replayVersion}, bytes.Repeat([]byte{0xff}, 10)...), "high-water mark"},
		{"high-water mark 0", []byte{replayVersion, 0}, "high-water mark 0"},
		{"trailing zero", good(5, 0x1e, 0), "trailing zero bytes"},
		{"only a zero", good(5, 0), "trailing zero bytes"},
		{"too long", good(1<<20, append(bytes.Repeat([]byte{0xff}, ReplayWindow/8), 1)...), "at most 128"},
		{"high-water mark missing", good(5, 0x01), "the high-water mark is marked missing"},
		{"below 1 missing", good(5, 0x20), "below 1"},
		{"far below 1 missing", good(3, 0x00, 0x80), "below 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeReplay(tc.b)
			require.ErrorIs(t, err, errReplayState)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestAnUndecodableReplayStateRefusesTheDevicesBatches(t *testing.T) {
	w := newWorld(t)
	d := w.enroll(org1Operator, "d", "fridge")
	_, err := w.submitBatch(org1Hub, d.reading(t, 1))
	require.NoError(t, err)
	w.state[ckey(t, kindReplay, "d")] = []byte{replayVersion, 0x81, 0x00}
	refused(t, w, org1Hub, api.CodeInconsistentRecord, "reading 0 (device d seq 2): replay state rs~d malformed replay state", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: []reading.Envelope{d.reading(t, 2)}}))
	})
	refused(t, w, org1Hub, api.CodeInconsistentRecord, "replay state rs~d", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Telemetry.Seen(ctx, "d", `[1]`)
	})
}

func FuzzDecodeReplay(f *testing.F) {
	var s replayState
	for _, seq := range []uint64{1, 3, 700, 1500, 1501} {
		s.accept(seq)
	}
	f.Add(encodeReplay(&s))
	f.Add([]byte{replayVersion, 5, 0x1e})
	f.Add([]byte{replayVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{replayVersion, 0})
	f.Add([]byte(strings.Repeat("\xff", 140)))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeReplay(b)
		if err != nil {
			require.ErrorIs(t, err, errReplayState)
			return
		}
		// One encoding per state, and a state that keeps its invariants.
		require.Equal(t, b, encodeReplay(&s))
		require.Positive(t, s.hwm)
		require.Equal(t, seqAccepted, s.seen(s.hwm))
		next := s
		next.accept(s.hwm + 1)
		if s.hwm < math.MaxUint64 {
			_, err := decodeReplay(encodeReplay(&next))
			require.NoError(t, err)
		}
	})
}
