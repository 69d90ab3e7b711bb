package hub

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client/hub/wire"
)

// docs/protocol.md states the edge's limits and reasons as the code has
// them, and every test docs/security.md names exists.
func TestEdgeDocsStateTheCodesLimitsAndTests(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	require.NoError(t, err)
	protocol := string(b)
	for _, want := range []string{
		fmt.Sprint(maxEnvelopeBytes), fmt.Sprint(reading.MaxPayloadBytes), fmt.Sprint(maxPacketBytes), fmt.Sprint(wire.MaxInboxBytes),
		"`" + wire.ReasonEnvelopeTooLarge + "`", "`" + wire.ReasonTooLarge + "`", "`will_refused`", "`reserved_id`",
		"`0x90`", "`0x04` bad user name or password", "`0x05` not authorized", "`0x86` bad user name or password", "`0x87` not authorized",
	} {
		require.Contains(t, protocol, want)
	}

	b, err = os.ReadFile("../../docs/security.md")
	require.NoError(t, err)
	security := string(b)
	named := regexp.MustCompile("`(Test[A-Za-z0-9]+)`").FindAllStringSubmatch(security, -1)
	require.NotEmpty(t, named)
	defined := map[string]bool{}
	require.NoError(t, filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "../.." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9]+)\(`).FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	}))
	for _, m := range named {
		require.True(t, defined[m[1]], "docs/security.md names %s, which no test defines", m[1])
	}
}
