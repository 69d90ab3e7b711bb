package bench

import "time"

// SoakInterval is one reporting interval of a soak.
type SoakInterval struct {
	N              int     `json:"n"`
	EndSec         float64 `json:"endSec"`   // since the load started
	Readings       int64   `json:"readings"` // committed so far (cumulative)
	ReadingsPerSec float64 `json:"readingsPerSec"`
	LagBlocks      uint64  `json:"lagBlocks"`    // index behind the peer at the interval's end
	MaxLagBlocks   uint64  `json:"maxLagBlocks"` // most seen during the interval (sampled every second)
	// DeviceReadings are the queried device's committed readings at the
	// end of the interval, DeviceReadingsAtStart at its start.
	DeviceReadings        int64        `json:"deviceReadings"`
	DeviceReadingsAtStart int64        `json:"deviceReadingsAtStart"`
	Queries               int          `json:"queries"`
	LastHour              QueryLatency `json:"lastHour"` // the device's last hour, newest 1000
	Range                 QueryLatency `json:"range"`    // a random window of its history that holds about 1000 readings
	AllP99Ms              float64      `json:"allP99Ms"` // p99 of both kinds together
	Partial               bool         `json:"partial,omitempty"`
}

// QueryLatency summarises one kind of query in an interval.
type QueryLatency struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	Rows  float64 `json:"rows"` // readings returned, on average
}

// soakMark is the state of a soak at one instant.
type soakMark struct {
	at             time.Time
	readings       int64 // committed so far
	deviceReadings int64 // the queried device's, so far
	lag            uint64
}

// querySample is one timed index query.
type querySample struct {
	lastHour bool
	took     time.Duration
	rows     int
}

// aggregateInterval makes the row of the interval between two marks from
// the queries timed in it and the most blocks the index was seen behind.
func aggregateInterval(n int, start time.Time, prev, cur soakMark, queries []querySample, maxLag uint64, partial bool) SoakInterval {
	iv := SoakInterval{
		N:                     n,
		EndSec:                round(cur.at.Sub(start).Seconds(), 1),
		Readings:              cur.readings,
		ReadingsPerSec:        round(Rate(cur.readings-prev.readings, cur.at.Sub(prev.at)), 1),
		LagBlocks:             cur.lag,
		MaxLagBlocks:          max(maxLag, cur.lag),
		DeviceReadings:        cur.deviceReadings,
		DeviceReadingsAtStart: prev.deviceReadings,
		Queries:               len(queries),
		Partial:               partial,
	}
	var hour, rng, all []time.Duration
	var hourRows, rngRows int
	for _, q := range queries {
		all = append(all, q.took)
		if q.lastHour {
			hour = append(hour, q.took)
			hourRows += q.rows
		} else {
			rng = append(rng, q.took)
			rngRows += q.rows
		}
	}
	iv.LastHour = queryLatency(hour, hourRows)
	iv.Range = queryLatency(rng, rngRows)
	iv.AllP99Ms = ms(Summarize(all).P99)
	return iv
}

func queryLatency(took []time.Duration, rows int) QueryLatency {
	s := Summarize(took)
	q := QueryLatency{Count: s.Count, P50Ms: ms(s.P50), P99Ms: ms(s.P99)}
	if s.Count > 0 {
		q.Rows = round(float64(rows)/float64(s.Count), 1)
	}
	return q
}

// soakSlots says which device of a worker fills each slot of a batch: the
// first heavy slots its heavy device (index 0), the rest round-robin over
// its light devices 1..light. Without light devices the heavy device
// fills the batch.
func soakSlots(batchSize, heavy, light int) []int {
	out := make([]int, batchSize)
	heavy = min(max(heavy, 0), batchSize)
	if light < 1 {
		heavy = batchSize
	}
	for i := heavy; i < batchSize; i++ {
		out[i] = 1 + (i-heavy)%light
	}
	return out
}

// soakInterval is the reporting interval of a soak of duration d: a tenth
// of it, at least 10 s (and never more than d).
func soakInterval(d, every time.Duration) time.Duration {
	if every <= 0 {
		every = max(d/10, 10*time.Second)
	}
	return min(every, d)
}
