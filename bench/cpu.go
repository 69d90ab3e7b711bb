package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat. Linux reports these
// in USER_HZ, which the kernel fixes at 100 for user space on every
// architecture Fabric runs on.
const userHZ = 100

// maxTicks keeps the conversion to time.Duration from overflowing.
const maxTicks = uint64(math.MaxInt64 / int64(time.Second) * userHZ)

// Process names a process whose CPU time is accounted.
type Process struct {
	Name string `json:"name"` // e.g. "peer0.org1", "orderer1", "chaincode.org1", "bench"
	PID  int    `json:"pid"`
}

// ProcessCPU reads utime+stime of a process from /proc/<pid>/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu: read stat of pid %d: %w", pid, err)
	}
	return parseStatCPU(data)
}

// parseStatCPU extracts utime+stime from the text of /proc/<pid>/stat. The
// command name (field 2) is in parentheses and may itself contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(data []byte) (time.Duration, error) {
	closing := bytes.LastIndexByte(data, ')')
	if closing < 0 {
		return 0, errors.New("cpu: malformed stat: no command name")
	}
	fields := bytes.Fields(data[closing+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15); index 0 is field 3.
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, fmt.Errorf("cpu: malformed stat: %d fields after the name", len(fields))
	}
	utime, err := strconv.ParseUint(string(fields[utimeIdx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cpu: malformed utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(fields[stimeIdx]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cpu: malformed stime: %w", err)
	}
	ticks := utime + stime
	if utime > maxTicks || stime > maxTicks || ticks > maxTicks {
		return 0, errors.New("cpu: malformed stat: CPU time out of range")
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// CPUSample is one process's CPU use over a window.
type CPUSample struct {
	Process
	CPU     time.Duration `json:"-"`
	Percent float64       `json:"cpuPercent"` // of one core over the window (200 = both cores of a 2-core machine)
	Err     string        `json:"error,omitempty"`
}

// MachineProcess names the pseudo-process that stands for every process of
// the machine (from /proc/stat): with it a report shows how much CPU others
// took while a workload ran.
const MachineProcess = "machine (all)"

// MachineCPU reads the busy CPU time of all cores from /proc/stat.
func MachineCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu: read /proc/stat: %w", err)
	}
	return parseMachineStat(data)
}

// parseMachineStat sums the non-idle jiffies of the "cpu" line of /proc/stat.
func parseMachineStat(data []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 5 || string(fields[0]) != "cpu" {
		return 0, errors.New("cpu: malformed /proc/stat: no aggregate cpu line")
	}
	var busy uint64
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu: malformed /proc/stat field %d: %w", i+1, err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		switch i {
		case 3, 4, 8, 9:
			continue
		}
		if v > maxTicks || busy > maxTicks-v {
			return 0, errors.New("cpu: /proc/stat value out of range")
		}
		busy += v
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// CPUWindow measures the CPU time each process used between Start and Stop.
type CPUWindow struct {
	procs   []Process
	start   []time.Duration
	errs    []error
	machine time.Duration
	machErr error
	began   time.Time
}

// StartCPU records the current CPU time of each process. A process that
// cannot be read (exited, no /proc) is reported with its error at Stop.
func StartCPU(procs []Process) *CPUWindow {
	w := &CPUWindow{
		procs: append([]Process(nil), procs...),
		start: make([]time.Duration, len(procs)),
		errs:  make([]error, len(procs)),
		began: time.Now(),
	}
	for i, p := range w.procs {
		w.start[i], w.errs[i] = ProcessCPU(p.PID)
	}
	w.machine, w.machErr = MachineCPU()
	return w
}

// Stop returns each process's CPU use since Start, in the order given,
// followed by the whole machine's (MachineProcess).
func (w *CPUWindow) Stop() []CPUSample {
	wall := time.Since(w.began)
	out := make([]CPUSample, len(w.procs))
	for i, p := range w.procs {
		s := CPUSample{Process: p}
		end, err := ProcessCPU(p.PID)
		switch {
		case w.errs[i] != nil:
			s.Err = w.errs[i].Error()
		case err != nil:
			s.Err = err.Error()
		default:
			s.CPU = max(end-w.start[i], 0)
			if wall > 0 {
				s.Percent = float64(s.CPU) / float64(wall) * 100
			}
		}
		out[i] = s
	}
	m := CPUSample{Process: Process{Name: MachineProcess}}
	end, err := MachineCPU()
	switch {
	case w.machErr != nil:
		m.Err = w.machErr.Error()
	case err != nil:
		m.Err = err.Error()
	default:
		m.CPU = max(end-w.machine, 0)
		if wall > 0 {
			m.Percent = float64(m.CPU) / float64(wall) * 100
		}
	}
	return append(out, m)
}
