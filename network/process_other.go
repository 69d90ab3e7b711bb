//go:build !linux

package network

// platformSupported refuses: liveness and PID identity come from /proc, the
// boot ID from /proc/sys and hosts mode from Linux network namespaces.
func platformSupported() error {
	return &LinuxOnlyError{What: "process liveness and start times through /proc"}
}

// procIdentity needs /proc.
func procIdentity(int) (byte, uint64, error) {
	return 0, 0, &LinuxOnlyError{What: "process liveness through /proc"}
}

// currentBootID is unknown off Linux: PIDs are then never dropped as
// being of another boot.
func currentBootID() string { return "" }
