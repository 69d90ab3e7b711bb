package hub

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client/hub/wire"
)

func TestAnInboxRefusalDoesNotTellWhetherTheRecipientExists(t *testing.T) {
	fx := newFixture(t)
	a := fx.enroll(t, "dev-a", api.StatusActive)
	fx.enroll(t, "dev-b", api.StatusActive) // exists, but a may not message it
	ma := fx.connect(t, a)
	require.Equal(t, []byte{1}, ma.subscribe(t, wire.Topic(a.id, wire.KindErrors)))

	refusal := func(to string) string {
		t.Helper()
		_, err := ma.publish(t, wire.Topic(to, wire.KindInbox), []byte(`{"open":true}`))
		_ = err // MQTT 5 says not authorized; the errors topic says why
		var e wire.ErrorMessage
		require.NoError(t, jsonUnmarshal(ma.next(t, wire.Topic(a.id, wire.KindErrors)).Payload, &e))
		require.Equal(t, wire.ReasonNotAuthorized, e.Reason)
		return strings.ReplaceAll(strings.ReplaceAll(e.Message, to, "<id>"), wire.Topic(to, wire.KindInbox), "<topic>")
	}
	forbidden := refusal("dev-b")
	unknown := refusal("dev-nobody")
	require.Equal(t, forbidden, unknown, "the same answer for a device that exists and one that does not")
	require.Contains(t, forbidden, "no such device, or its owner's policies do not allow it")
}
