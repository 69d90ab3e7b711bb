package main

import (
	"bytes"
	"testing"

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
