package api

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseErrorFindsCodeInsideWrappedMessages(t *testing.T) {
	tests := []struct {
		in   string
		code Code
		msg  string
	}{
		{"REPLAY: device d1 sequence 4 was already recorded", CodeReplay, "device d1 sequence 4 was already recorded"},
		{"rpc error: chaincode response 500, ACCESS_DENIED: hub may not write", CodeAccessDenied, "hub may not write"},
		{"no code here", "", ""},
	}
	for _, tc := range tests {
		got := ParseError(tc.in)
		if tc.code == "" {
			require.Nil(t, got)
			continue
		}
		require.Equal(t, tc.code, got.Code)
		require.Equal(t, tc.msg, got.Message)
	}
}

func TestCodeOfUnwrapsAndParses(t *testing.T) {
	require.Equal(t, CodeNotFound, CodeOf(fmt.Errorf("get: %w", Errorf(CodeNotFound, "device x"))))
	require.Equal(t, CodeBadSignature, CodeOf(errors.New("endorse failed: BAD_SIGNATURE: forged")))
	require.Equal(t, Code(""), CodeOf(errors.New("plain")))
	require.Equal(t, Code(""), CodeOf(nil))
}
