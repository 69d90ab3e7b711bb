package network

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLinuxOnlyErrorSaysWhatNeedsLinux(t *testing.T) {
	var err error = &HostsError{Reason: "not Linux", Err: &LinuxOnlyError{What: "network namespaces (--hosts)"}}
	var lo *LinuxOnlyError
	require.True(t, errors.As(err, &lo))
	require.Equal(t, "iotledger network needs Linux: network namespaces (--hosts)", lo.Error())
	require.Contains(t, err.Error(), "iotledger network needs Linux: network namespaces (--hosts)")
}
