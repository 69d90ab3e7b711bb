package network

// LinuxOnlyError reports a part of the network that only works on Linux:
// liveness through /proc, the boot ID, network namespaces.
type LinuxOnlyError struct {
	What string // what needs Linux
}

func (e *LinuxOnlyError) Error() string { return "iotledger network needs Linux: " + e.What }
