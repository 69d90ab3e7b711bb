package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/iotledger/iotledger/client"
)

// Latency rows of the stages of the hub's batch submits at half load.
const (
	LatBatchEndorse = "hub batch: endorsement"
	LatBatchCommit  = "hub batch: accepted by orderer → committed"
)

// stageTimes keeps the durations of the stages of the hub's successful
// SubmitBatch attempts while recording is on: a reading's time from the
// hub's PUBACK to its commit is the wait for its device's batch in flight
// (device lanes), the wait for its own batch to form, and then these
// stages.
type stageTimes struct {
	mu      sync.Mutex
	on      bool
	endorse []time.Duration
	commit  []time.Duration
	failed  map[client.Stage]int // attempts that failed, by stage
}

func (s *stageTimes) record(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = on
}

func (s *stageTimes) trace() *client.SubmitTrace {
	return &client.SubmitTrace{StageDone: func(tx string, stage client.Stage, d time.Duration, err error) {
		if tx != "telemetry:SubmitBatch" {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.on {
			return
		}
		if err != nil {
			if s.failed == nil {
				s.failed = map[client.Stage]int{}
			}
			s.failed[stage]++
			return
		}
		switch stage {
		case client.StageEndorse:
			s.endorse = append(s.endorse, d)
		case client.StageCommitStatus:
			s.commit = append(s.commit, d)
		}
	}}
}

// results are the two stage rows; none if nothing was recorded.
func (s *stageTimes) results(offered float64) []LatencyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.endorse) == 0 {
		return nil
	}
	note := fmt.Sprintf("at %.0f readings/s offered; successful SubmitBatch attempts of the hub", offered)
	failed := func(st client.Stage) string {
		if n := s.failed[st]; n > 0 {
			return fmt.Sprintf("; %d failed attempts not counted", n)
		}
		return ""
	}
	endorse := LatencyResult{Name: LatBatchEndorse, Note: note + ": proposal → endorsed by every org the gateway asked" + failed(client.StageEndorse)}
	fill(&endorse, s.endorse)
	commit := LatencyResult{Name: LatBatchCommit, Note: note + ": ordering (BatchTimeout), block delivery, validation, commit at the gateway peer" + failed(client.StageCommitStatus)}
	fill(&commit, s.commit)
	return []LatencyResult{endorse, commit}
}
