package chaincode

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

func (w *world) send(c caller, r api.CommandRequest) []api.Command {
	w.t.Helper()
	return must[[]api.Command](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Send(ctx, jsonArg(w.t, r))
	})
}

// ack is the envelope a device signs to answer a command.
func (d *testDevice) ack(t *testing.T, a api.AckPayload) string {
	t.Helper()
	payload, err := json.Marshal(a)
	require.NoError(t, err)
	sig, err := d.signer.Sign(reading.DomainAck, payload)
	require.NoError(t, err)
	return string(reading.Envelope{Payload: payload, Signature: sig}.Encode())
}

func TestCommandLifecycleSendDeliverAck(t *testing.T) {
	w := newWorld(t)
	dev := w.enroll(org1Operator, "d1", "valve")
	cmds := w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "open", Params: json.RawMessage(`{"percent":50}`), TTLSeconds: 120})
	require.Len(t, cmds, 1)
	cmd := cmds[0]
	require.Equal(t, w.lastTx.id+"-0", cmd.ID)
	require.Equal(t, api.CommandPending, cmd.Status)
	require.Equal(t, org1Operator.id, cmd.IssuedBy)
	require.Equal(t, w.now.Add(2*time.Minute), cmd.ExpiresAt)
	require.Equal(t, api.EventCommandIssued, w.lastEvent.Type)
	require.Equal(t, cmds, w.lastEvent.Commands)
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindCommand, "d1", cmd.ID)))
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindCommandID, cmd.ID)))

	deliver := func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.MarkDelivered(ctx, cmd.ID)
	}
	refused(t, w, org1Operator, api.CodeAccessDenied, "command:deliver", deliver)
	refused(t, w, org2Hub, api.CodeAccessDenied, "command:deliver", deliver)
	got := must[api.Command](w, org1Hub, deliver)
	require.Equal(t, api.CommandDelivered, got.Status)
	require.Equal(t, org1Hub.id, got.DeliveredBy)
	require.Equal(t, w.now, *got.DeliveredAt)
	require.Equal(t, api.EventCommandDelivered, w.lastEvent.Type)
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "only a pending command", deliver)

	ok := api.AckPayload{Device: "d1", Command: cmd.ID, Status: api.CommandAcked, Result: "opened", Ts: 1}
	other := &testDevice{id: "d1", signer: newKey(t, reading.ECDSAP256)}
	ackTx := func(env string) txFunc {
		return func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Command.Ack(ctx, env) }
	}
	refused(t, w, org1Hub, api.CodeBadSignature, "does not verify", ackTx(other.ack(t, ok)))
	wrongDomain, err := dev.signer.Sign(reading.DomainReading, []byte(jsonArg(t, ok)))
	require.NoError(t, err)
	refused(t, w, org1Hub, api.CodeBadSignature, "does not verify", ackTx(string(reading.Envelope{Payload: []byte(jsonArg(t, ok)), Signature: wrongDomain}.Encode())))
	refused(t, w, org2Hub, api.CodeAccessDenied, "command:deliver", ackTx(dev.ack(t, ok)))

	got = must[api.Command](w, org1Hub, ackTx(dev.ack(t, ok)))
	require.Equal(t, api.CommandAcked, got.Status)
	require.Equal(t, "opened", got.Result)
	require.Equal(t, w.now, *got.CompletedAt)
	require.Equal(t, api.EventCommandCompleted, w.lastEvent.Type)
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "already acked", ackTx(dev.ack(t, ok)))

	read := must[api.Command](w, org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Command.Get(ctx, cmd.ID) })
	require.Equal(t, got, read)
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:read", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Get(ctx, cmd.ID)
	})
}

func TestAckRefusesMalformedOrMismatchedAcks(t *testing.T) {
	w := newWorld(t)
	dev := w.enroll(org1Operator, "d1", "valve")
	dev2 := w.enroll(org1Operator, "d2", "valve")
	cmd := w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "open"})[0]
	for _, tc := range []struct {
		name     string
		env      string
		code     api.Code
		contains string
	}{
		{"not an envelope", `{"x":1}`, api.CodeInvalidArgument, "envelope"},
		{"empty payload", `{"p":"","s":"AQ=="}`, api.CodeInvalidArgument, "ack payload"},
		{"no signature", string(reading.Envelope{Payload: []byte(`{}`)}.Encode()), api.CodeInvalidArgument, "ack signature"},
		{"payload not JSON", dev.ack(t, api.AckPayload{}) + "", api.CodeInvalidArgument, "device"},
		{"bad status", dev.ack(t, api.AckPayload{Device: "d1", Command: cmd.ID, Status: api.CommandExpired, Ts: 1}), api.CodeInvalidArgument, "ack status"},
		{"long result", dev.ack(t, api.AckPayload{Device: "d1", Command: cmd.ID, Status: api.CommandFailed, Result: strings.Repeat("x", 2000), Ts: 1}), api.CodeInvalidArgument, "ack result"},
		{"unknown command", dev.ack(t, api.AckPayload{Device: "d1", Command: "nope", Status: api.CommandAcked, Ts: 1}), api.CodeNotFound, "does not exist"},
		{"other device's command", dev2.ack(t, api.AckPayload{Device: "d2", Command: cmd.ID, Status: api.CommandAcked, Ts: 1}), api.CodeInvalidArgument, `is for device "d1", not "d2"`},
		{"bad command id", dev.ack(t, api.AckPayload{Device: "d1", Command: "a b", Status: api.CommandAcked, Ts: 1}), api.CodeInvalidArgument, "command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, w, org1Hub, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Command.Ack(ctx, tc.env)
			})
		})
	}
	refused(t, w, org1Hub, api.CodeInvalidArgument, "unknown field", func(ctx contractapi.TransactionContextInterface) (string, error) {
		payload := []byte(`{"device":"d1","command":"` + cmd.ID + `","status":"acked","ts":1,"extra":true}`)
		sig, err := dev.signer.Sign(reading.DomainAck, payload)
		require.NoError(t, err)
		return w.c.Command.Ack(ctx, string(reading.Envelope{Payload: payload, Signature: sig}.Encode()))
	})
	// A failed ack is a valid answer.
	got := must[api.Command](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Ack(ctx, dev.ack(t, api.AckPayload{Device: "d1", Command: cmd.ID, Status: api.CommandFailed, Result: "stuck", Ts: 1}))
	})
	require.Equal(t, api.CommandFailed, got.Status)

	// A revoked device's signatures count no more.
	cmd2 := w.send(org1Operator, api.CommandRequest{Device: "d2", Name: "open"})[0]
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Revoke(ctx, "d2", "")
	})
	refused(t, w, org1Hub, api.CodeDeviceInactive, "revoked", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Ack(ctx, dev2.ack(t, api.AckPayload{Device: "d2", Command: cmd2.ID, Status: api.CommandAcked, Ts: 1}))
	})
}

func TestCommandExpiresOnlyAfterItsTTL(t *testing.T) {
	w := newWorld(t)
	dev := w.enroll(org1Operator, "d1", "valve")
	cmd := w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "open", TTLSeconds: 60})[0]
	expire := func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Expire(ctx, cmd.ID)
	}
	refused(t, w, org2Operator, api.CodeFailedPrecondition, "still valid", expire)
	w.now = w.now.Add(61 * time.Second)
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "call command:Expire", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.MarkDelivered(ctx, cmd.ID)
	})
	refused(t, w, org1Hub, api.CodeFailedPrecondition, "call command:Expire", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Ack(ctx, dev.ack(t, api.AckPayload{Device: "d1", Command: cmd.ID, Status: api.CommandAcked, Ts: 1}))
	})
	got := must[api.Command](w, org2Operator, expire) // anyone may expire
	require.Equal(t, api.CommandExpired, got.Status)
	require.Equal(t, api.EventCommandCompleted, w.lastEvent.Type)
	refused(t, w, org1Operator, api.CodeFailedPrecondition, "already expired", expire)
	refused(t, w, org1Operator, api.CodeNotFound, "does not exist", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Expire(ctx, "nope")
	})
}

func TestSendToGroupAndListByStatus(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "a", "valve", "line")
	w.enroll(org1Operator, "b", "valve", "line")
	w.enroll(org1Operator, "dead", "valve", "line")
	w.enroll(org2Operator, "x", "valve", "line")
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Decommission(ctx, "dead", "")
	})
	cmds := w.send(org1Operator, api.CommandRequest{Group: "line", Name: "close"})
	require.Len(t, cmds, 2, "live members the caller may command: not the retired one, not Org2's")
	require.Equal(t, []string{"a", "b"}, []string{cmds[0].Device, cmds[1].Device})
	require.Equal(t, []string{"a", "b"}, w.lastEvent.Devices)
	w.send(org1Operator, api.CommandRequest{Device: "a", Name: "open"})
	must[api.Command](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.MarkDelivered(ctx, cmds[0].ID)
	})
	list := func(q string) api.CommandPage {
		return must[api.CommandPage](w, org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Command.List(ctx, q) })
	}
	require.Len(t, list(`{"device":"a"}`).Commands, 2)
	pending := list(`{"device":"a","status":"pending"}`).Commands
	require.Len(t, pending, 1)
	require.Equal(t, "open", pending[0].Name)
	require.Len(t, list(`{"device":"a","status":"delivered"}`).Commands, 1)

	for _, tc := range []struct {
		who      caller
		arg      string
		code     api.Code
		contains string
	}{
		{org1Operator, `{"name":"x"}`, api.CodeInvalidArgument, "exactly one of device and group"},
		{org1Operator, `{"device":"a","group":"line","name":"x"}`, api.CodeInvalidArgument, "exactly one"},
		{org1Operator, `{"device":"a","name":""}`, api.CodeInvalidArgument, "name"},
		{org1Operator, `{"device":"a","name":"x","params":[1]}`, api.CodeInvalidArgument, "params must be a JSON object"},
		{org1Operator, `{"device":"a","name":"x","params":{"a":"` + strings.Repeat("p", 5000) + `"}}`, api.CodeInvalidArgument, "the limit is 4096"},
		{org1Operator, `{"device":"a","name":"x","ttlSeconds":-1}`, api.CodeInvalidArgument, "ttlSeconds"},
		{org1Operator, `{"device":"a","name":"x","ttlSeconds":99999999}`, api.CodeInvalidArgument, "ttlSeconds"},
		{org1Operator, `{"device":"dead","name":"x"}`, api.CodeDeviceInactive, "takes no more commands"},
		{org1Operator, `{"device":"zz","name":"x"}`, api.CodeNotFound, "not enrolled"},
		{org1Hub, `{"device":"a","name":"x"}`, api.CodeAccessDenied, "device:command"},
		{org2Operator, `{"device":"a","name":"x"}`, api.CodeAccessDenied, "device:command"},
		{org2Hub, `{"group":"line","name":"x"}`, api.CodeAccessDenied, "may not command any device of group"},
		{org1Operator, `{"group":"nobody","name":"x"}`, api.CodeNotFound, "no device"},
		{org1Operator, `{"group":"bad group","name":"x"}`, api.CodeInvalidArgument, "group"},
		{org1Operator, `{"device":"a","name":"x","colour":1}`, api.CodeInvalidArgument, "unknown field"},
	} {
		refused(t, w, tc.who, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Command.Send(ctx, tc.arg)
		})
	}
	for _, tc := range []struct {
		who      caller
		arg      string
		code     api.Code
		contains string
	}{
		{org1Hub, `{"device":"a","status":"lost"}`, api.CodeInvalidArgument, "not a command status"},
		{org1Hub, `{"device":"a","pageSize":9999}`, api.CodeInvalidArgument, "pageSize"},
		{org2Hub, `{"device":"a"}`, api.CodeAccessDenied, "device:read"},
		{org1Hub, `{}`, api.CodeInvalidArgument, "device"},
		{org1Hub, `x`, api.CodeInvalidArgument, "command query"},
	} {
		refused(t, w, tc.who, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Command.List(ctx, tc.arg)
		})
	}
	refused(t, w, org1Hub, api.CodeInvalidArgument, "command id", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Command.Get(ctx, "")
	})
}

func FuzzAckEnvelope(f *testing.F) {
	f.Add([]byte(`{"device":"d1","command":"c","status":"acked","ts":1}`), []byte{1, 2})
	f.Add([]byte(`{"device":"d1","command":"c","status":"failed","result":"x","ts":1}`), []byte{})
	f.Add([]byte(`{}`), []byte{0})
	f.Add([]byte(`{"device":"d1","command":"c","status":"acked","STATUS":"failed","ts":1}`), []byte{1})
	f.Add([]byte(`{"device":"d1","command":"c","status":"failed","status":"acked","ts":1}`), []byte{1})
	f.Add([]byte("{\"device\":\"d1\",\"command\":\"c\",\"status\":\"acked\",\"result\":\"\xff\",\"ts\":1}"), []byte{1})
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		a, err := parseAck(reading.Envelope{Payload: payload, Signature: sig})
		if err != nil {
			require.Equal(t, api.CodeInvalidArgument, api.CodeOf(err))
			return
		}
		require.True(t, a.Status == api.CommandAcked || a.Status == api.CommandFailed)
		require.NoError(t, reading.ValidateID("device", a.Device))
	})
}
