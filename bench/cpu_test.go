package bench

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCPUWindowMeasuresWorkOfTheTestProcess(t *testing.T) {
	self := Process{Name: "test", PID: os.Getpid()}
	before, err := ProcessCPU(self.PID)
	require.NoError(t, err)

	w := StartCPU([]Process{self})
	// Burn CPU until the kernel's tick-granular counters move.
	sum := sha256.Sum256([]byte("seed"))
	for {
		for range 20000 {
			sum = sha256.Sum256(sum[:])
		}
		now, err := ProcessCPU(self.PID)
		require.NoError(t, err)
		if now-before >= 50*time.Millisecond {
			break
		}
	}
	samples := w.Stop()
	require.Len(t, samples, 2)
	require.Equal(t, "test", samples[0].Name)
	require.Empty(t, samples[0].Err)
	require.Positive(t, samples[0].CPU)
	require.Positive(t, samples[0].Percent)
	require.Equal(t, MachineProcess, samples[1].Name)
	require.Empty(t, samples[1].Err)
	require.GreaterOrEqual(t, samples[1].CPU, samples[0].CPU-20*time.Millisecond, "the machine is busy at least while this process is")
}

func TestParseMachineStatSumsBusyJiffies(t *testing.T) {
	stat := "cpu  100 5 50 1000 30 1 2 3 7 0\ncpu0 50 2 25 500 15 0 1 1 0 0\n"
	got, err := parseMachineStat([]byte(stat))
	require.NoError(t, err)
	require.Equal(t, 1610*time.Millisecond, got) // 100+5+50+1+2+3 ticks at 100 Hz

	_, err = parseMachineStat([]byte("intr 1 2 3\n"))
	require.ErrorContains(t, err, "no aggregate cpu line")
	_, err = parseMachineStat([]byte("cpu 1 2 x 4 5\n"))
	require.ErrorContains(t, err, "field 3")
}

func TestCPUWindowReportsProcessesItCannotRead(t *testing.T) {
	w := StartCPU([]Process{{Name: "gone", PID: 1 << 30}})
	samples := w.Stop()
	require.Len(t, samples, 2)
	require.Contains(t, samples[0].Err, "pid 1073741824")
	require.Zero(t, samples[0].Percent)
}

func TestParseStatCPUCountsFieldsAfterTheCommandName(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
		err  string
	}{
		{
			name: "plain name",
			stat: "1234 (peer) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0",
			want: 3 * time.Second, // (250 + 50) ticks at 100 Hz
		},
		{
			name: "name with spaces and parentheses",
			stat: "99 (iot (x) y) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0",
			want: 100 * time.Millisecond,
		},
		{name: "no name", stat: "garbage", err: "no command name"},
		{name: "truncated", stat: "1 (a) S 1 2 3", err: "fields after the name"},
		{name: "not a number", stat: "1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 3 0", err: "utime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1234 (peer) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0"))
	f.Add([]byte("1 ())) R"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseStatCPU(data)
		if err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
	})
}
