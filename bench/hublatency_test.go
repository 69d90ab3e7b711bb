package bench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
)

func TestOnlyAnIssuedCommandTimesARuleTrigger(t *testing.T) {
	cmd := func(device string, st api.CommandStatus) api.Command {
		return api.Command{ID: "c1", Device: device, Status: st}
	}
	tests := []struct {
		name string
		ev   api.Event
		want bool
	}{
		{"issued to the device", api.Event{Type: api.EventCommandIssued, Commands: []api.Command{cmd("d1", api.CommandPending)}}, true},
		{"issued to another device", api.Event{Type: api.EventCommandIssued, Commands: []api.Command{cmd("d2", api.CommandPending)}}, false},
		{"marked delivered by the hub", api.Event{Type: api.EventCommandDelivered, Commands: []api.Command{cmd("d1", api.CommandDelivered)}}, false},
		{"no commands", api.Event{Type: api.EventTelemetryBatch}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, issuesCommandTo(&tt.ev, "d1"))
		})
	}
}
