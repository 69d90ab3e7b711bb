package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseConcurrencyReadsCommaSeparatedWorkerCounts(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{in: "16,64,256", want: []int{16, 64, 256}},
		{in: " 8 , 32 ", want: []int{8, 32}},
		{in: "4", want: []int{4}},
		{in: "", err: true},
		{in: "8,,32", err: true},
		{in: "0", err: true},
		{in: "-3", err: true},
		{in: "many", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseConcurrency(tc.in)
			if tc.err {
				require.ErrorContains(t, err, "positive worker counts")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestBenchRefusesBadFlagsBeforeTouchingANetwork(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown workload", []string{"bench", "--only", "raw-put,warp-drive"}, `unknown workload "warp-drive"`},
		{"bad concurrency", []string{"bench", "--concurrency", "16,x"}, "positive worker counts"},
		{"batch too large", []string{"bench", "--batch-size", "5000"}, "batch size 5000 out of range"},
		{"no batch", []string{"bench", "--batch-size", "0"}, "out of range"},
		{"soak batch over the chaincode's limit", []string{"bench", "--soak", "1m", "--batch-size", "600"}, "soak batch size 600 out of range 1..500"},
		{"soak index not PostgreSQL", []string{"bench", "--soak", "1m", "--soak-index", "mysql://x"}, "--soak-index: want a postgres://"},
		{"negative soak", []string{"bench", "--soak", "-1m"}, "soak's duration must be positive"},
		{"negative hub batch wait", []string{"bench", "--hub-batch-wait", "-1s"}, "invalid --hub-batch-wait -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs(append(tc.args, "--state-dir", t.TempDir()))
			err := root.Execute()
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, out.String(), "nothing is measured or printed")
		})
	}
}

func TestSoakFlagsMakeTheSoakConfig(t *testing.T) {
	tests := []struct {
		name         string
		flags        soakFlags
		batchSet     bool
		batchSize    int
		wantWorkers  int
		wantBatch    int
		wantHeavy    int
		wantIndexURL string
	}{
		{"defaults", soakFlags{duration: 15 * time.Minute}, false, 100, 8, 500, 300, ""},
		{"--batch-size given: the heavy device fills three fifths", soakFlags{duration: time.Minute, workers: 16}, true, 200, 16, 200, 120, ""},
		{"PostgreSQL index", soakFlags{duration: time.Minute, index: "postgres://u@db/idx"}, false, 100, 8, 500, 300, "postgres://u@db/idx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.flags.config(tc.batchSet, tc.batchSize)
			require.NoError(t, err)
			require.Equal(t, tc.flags.duration, cfg.Duration)
			require.Equal(t, tc.wantWorkers, cfg.Workers)
			require.Equal(t, tc.wantBatch, cfg.BatchSize)
			require.Equal(t, tc.wantHeavy, cfg.HeavyPerBatch)
			require.Equal(t, tc.wantIndexURL, cfg.IndexURL)
		})
	}
}
