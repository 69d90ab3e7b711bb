//go:build linux

package network

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// platformSupported is nil: the network runs on Linux.
func platformSupported() error { return nil }

// procIdentity reads a process's state letter and start time (clock ticks
// since boot) from /proc. The start time tells a live node from an unrelated
// process that was given the same PID after a crash.
func procIdentity(pid int) (state byte, startTicks uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	state, startTicks, err = parseProcStat(string(data))
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return state, startTicks, nil
}

// bootIDFile holds the kernel's random ID of the current boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// currentBootID is the current boot's ID, "" if it cannot be read.
func currentBootID() string {
	data, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
