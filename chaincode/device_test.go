package chaincode

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

type txFunc = func(contractapi.TransactionContextInterface) (string, error)

func TestEnrollStoresDeviceWithIndexesAndOwnerEndorsement(t *testing.T) {
	w := newWorld(t)
	key := newKey(t, reading.Ed25519)
	req := api.EnrollRequest{ID: "fridge-1", Type: "fridge", Groups: []string{"ward-a", "cold"}, PublicKey: key.Public().PEM(),
		Firmware: "1.2.0", Attributes: map[string]string{"zone": "icu"}}
	d := must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Enroll(ctx, jsonArg(t, req))
	})
	require.Equal(t, "Org1MSP", d.Owner)
	require.Equal(t, api.StatusProvisioned, d.Status)
	require.Equal(t, string(reading.Ed25519), d.KeyAlg)
	require.Equal(t, key.Public().Fingerprint(), d.KeyID)
	require.Equal(t, 1, d.KeyVersion)
	require.Equal(t, org1Operator.id, d.EnrolledBy)
	require.Equal(t, w.now, d.EnrolledAt)
	require.Equal(t, w.getDevice("fridge-1"), d)

	for _, k := range []string{
		ckey(t, kindDevice, "fridge-1"), ckey(t, kindDeviceOwner, "Org1MSP", "fridge-1"),
		ckey(t, kindDeviceType, "Org1MSP", "fridge", "fridge-1"), ckey(t, kindDeviceGroup, "Org1MSP", "ward-a", "fridge-1"),
		ckey(t, kindDeviceGroup, "Org1MSP", "cold", "fridge-1"), ckey(t, kindDeviceKey, "fridge-1", d.KeyID),
	} {
		require.Contains(t, w.state, k)
		require.Equal(t, []string{"Org1MSP"}, w.endorsers(k), "endorsers of %q", k)
	}
	require.Equal(t, api.EventDeviceEnrolled, w.lastEvent.Type)
	require.Equal(t, []string{"fridge-1"}, w.lastEvent.Devices)
	require.Equal(t, "Org1MSP", w.lastEvent.MSPID)
	require.Equal(t, w.lastTx.id, w.lastEvent.TxID)
}

func TestEnrollRefusesBadRequests(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "taken", "fridge")
	pem := newKey(t, reading.ECDSAP256).Public().PEM()
	manyAttrs := map[string]string{}
	for i := 0; i < 40; i++ {
		manyAttrs[strings.Repeat("a", i+1)] = "v"
	}
	cases := []struct {
		name     string
		who      caller
		arg      string
		code     api.Code
		contains string
	}{
		{"not JSON", org1Operator, "{", api.CodeInvalidArgument, "not valid JSON"},
		{"empty", org1Operator, " ", api.CodeInvalidArgument, "empty"},
		{"unknown field", org1Operator, `{"id":"a","type":"t","publicKey":"x","owner":"Org2MSP"}`, api.CodeInvalidArgument, `unknown field "owner"`},
		{"trailing data", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", PublicKey: pem}) + "{}", api.CodeInvalidArgument, "trailing"},
		{"bad id", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a b", Type: "t", PublicKey: pem}), api.CodeInvalidArgument, "id"},
		{"missing type", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", PublicKey: pem}), api.CodeInvalidArgument, "type"},
		{"group twice", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Groups: []string{"g", "g"}, PublicKey: pem}), api.CodeInvalidArgument, "listed twice"},
		{"too many groups", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Groups: strings.Split("a b c d e f g h i j k l m n o p q", " "), PublicKey: pem}), api.CodeInvalidArgument, "the limit is 16"},
		{"too many attributes", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Attributes: manyAttrs, PublicKey: pem}), api.CodeInvalidArgument, "attributes"},
		{"long attribute", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Attributes: map[string]string{"k": strings.Repeat("x", 300)}, PublicKey: pem}), api.CodeInvalidArgument, `attributes["k"]`},
		{"bad attribute key", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Attributes: map[string]string{"a b": "x"}, PublicKey: pem}), api.CodeInvalidArgument, "attributes key"},
		{"long firmware", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Firmware: strings.Repeat("1", 65), PublicKey: pem}), api.CodeInvalidArgument, "firmware"},
		{"not a key", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", PublicKey: "hello"}), api.CodeInvalidArgument, "publicKey"},
		{"huge key", org1Operator, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", PublicKey: strings.Repeat("A", 2000)}), api.CodeInvalidArgument, "the limit is"},
		{"already enrolled", org1Operator, jsonArg(t, api.EnrollRequest{ID: "taken", Type: "t", PublicKey: pem}), api.CodeAlreadyExists, "already enrolled"},
		{"hub may not enroll", org1Hub, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", PublicKey: pem}), api.CodeAccessDenied, "device:manage"},
		{"no role", org1NoRole, jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", PublicKey: pem}), api.CodeAccessDenied, "without the iotledger.role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, w, tc.who, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, tc.arg)
			})
			require.Empty(t, w.lastTx.writes)
		})
	}
}

func TestOtherOrgCannotReadOrManageDevice(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge")
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:read", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Get(ctx, "d1")
	})
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:manage", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "d1", "mine now")
	})
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:manage", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Update(ctx, `{"id":"d1","firmware":"evil"}`)
	})
	refused(t, w, org1Operator, api.CodeNotFound, "not enrolled", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Get(ctx, "nope")
	})
	for _, c := range []caller{org1Operator, org1Hub, org1Auditor} {
		d := must[api.Device](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Device.Get(ctx, "d1") })
		require.Equal(t, "d1", d.ID)
	}
	require.Nil(t, w.lastEvent, "reads emit no event")
}

func TestListDevicesByOwnerTypeAndGroupWithPages(t *testing.T) {
	w := newWorld(t)
	for _, id := range []string{"a1", "a2", "a3"} {
		w.enroll(org1Operator, id, "fridge", "ward")
	}
	w.enroll(org1Operator, "b1", "pump")
	w.enroll(org2Operator, "c1", "fridge", "ward")
	list := func(c caller, q api.DeviceQuery) api.DevicePage {
		return must[api.DevicePage](w, c, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.List(ctx, jsonArg(t, q))
		})
	}
	ids := func(p api.DevicePage) []string {
		var out []string
		for _, d := range p.Devices {
			out = append(out, d.ID)
		}
		return out
	}
	require.Equal(t, []string{"a1", "a2", "a3", "b1"}, ids(list(org1Operator, api.DeviceQuery{})))
	require.Equal(t, []string{"c1"}, ids(list(org2Operator, api.DeviceQuery{})))
	require.Equal(t, []string{"b1"}, ids(list(org1Operator, api.DeviceQuery{Type: "pump"})))
	// Org2's device of the same type is filtered out: Org1 may not read it.
	require.Equal(t, []string{"a1", "a2", "a3"}, ids(list(org1Auditor, api.DeviceQuery{Type: "fridge"})))
	require.Equal(t, []string{"a1", "a2", "a3"}, ids(list(org1Hub, api.DeviceQuery{Group: "ward"})))
	require.Empty(t, ids(list(org2Operator, api.DeviceQuery{Owner: "Org1MSP"})))

	p1 := list(org1Operator, api.DeviceQuery{PageSize: 2})
	require.Equal(t, []string{"a1", "a2"}, ids(p1))
	require.NotEmpty(t, p1.Bookmark)
	p2 := list(org1Operator, api.DeviceQuery{PageSize: 2, Bookmark: p1.Bookmark})
	require.Equal(t, []string{"a3", "b1"}, ids(p2))
	require.Empty(t, p2.Bookmark, "the last page has no bookmark")

	for _, tc := range []struct {
		q        string
		contains string
	}{
		{`{"type":"a","group":"b"}`, "at most one"},
		{`{"pageSize":501}`, "pageSize 501"},
		{`{"pageSize":-1}`, "pageSize -1"},
		{`{"group":"bad group"}`, "group"},
		{`{"colour":"red"}`, "unknown field"},
	} {
		refused(t, w, org1Operator, api.CodeInvalidArgument, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.List(ctx, tc.q)
		})
	}
}

func TestUpdateMovesIndexesAndRefusesEmptyOrRetired(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge", "g1", "g2")
	d := must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Update(ctx, `{"id":"d1","type":"freezer","groups":["g2","g3"],"attributes":{"zone":"icu"},"firmware":"2.0"}`)
	})
	require.Equal(t, "freezer", d.Type)
	require.Equal(t, []string{"g2", "g3"}, d.Groups)
	require.Equal(t, "2.0", d.Firmware)
	require.Equal(t, map[string]string{"zone": "icu"}, d.Attributes)
	require.NotContains(t, w.state, ckey(t, kindDeviceType, "Org1MSP", "fridge", "d1"))
	require.NotContains(t, w.state, ckey(t, kindDeviceGroup, "Org1MSP", "g1", "d1"))
	require.Contains(t, w.state, ckey(t, kindDeviceGroup, "Org1MSP", "g2", "d1"))
	require.Contains(t, w.state, ckey(t, kindDeviceGroup, "Org1MSP", "g3", "d1"))
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindDeviceGroup, "Org1MSP", "g3", "d1")))
	require.Contains(t, w.state, ckey(t, kindDeviceType, "Org1MSP", "freezer", "d1"))
	require.Equal(t, api.EventDeviceUpdated, w.lastEvent.Type)

	for _, tc := range []struct {
		arg      string
		code     api.Code
		contains string
	}{
		{`{"id":"d1"}`, api.CodeInvalidArgument, "nothing to update"},
		{`{"id":"d 1","firmware":"x"}`, api.CodeInvalidArgument, "id"},
		{`{"id":"d1","type":""}`, api.CodeInvalidArgument, "type"},
		{`{"id":"d1","groups":["x","x"]}`, api.CodeInvalidArgument, "twice"},
		{`{"id":"d1","attributes":{"k":"` + strings.Repeat("v", 257) + `"}}`, api.CodeInvalidArgument, "attributes"},
		{`{"id":"d1","firmware":"` + strings.Repeat("v", 65) + `"}`, api.CodeInvalidArgument, "firmware"},
		{`{"id":"nope","firmware":"1"}`, api.CodeNotFound, "not enrolled"},
	} {
		refused(t, w, org1Operator, tc.code, tc.contains, func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.Update(ctx, tc.arg)
		})
	}
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Decommission(ctx, "d1", "end of life")
	})
	refused(t, w, org1Operator, api.CodeFailedPrecondition, "final", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Update(ctx, `{"id":"d1","firmware":"3"}`)
	})
}

func TestDeviceLifecycleTransitions(t *testing.T) {
	type step struct {
		to   api.DeviceStatus
		ok   bool
		from api.DeviceStatus
	}
	call := func(w *world, id string, to api.DeviceStatus) txFunc {
		return func(ctx contractapi.TransactionContextInterface) (string, error) {
			switch to {
			case api.StatusActive:
				return w.c.Device.Activate(ctx, id, "go")
			case api.StatusSuspended:
				return w.c.Device.Suspend(ctx, id, "quarantine")
			case api.StatusRevoked:
				return w.c.Device.Revoke(ctx, id, "key leaked")
			default:
				return w.c.Device.Decommission(ctx, id, "retired")
			}
		}
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"provisioned to active to suspended and back", []step{{api.StatusActive, true, ""}, {api.StatusSuspended, true, ""}, {api.StatusActive, true, ""}}},
		{"provisioned cannot be suspended", []step{{api.StatusSuspended, false, api.StatusProvisioned}}},
		{"active cannot be activated", []step{{api.StatusActive, true, ""}, {api.StatusActive, false, api.StatusActive}}},
		{"revoked is final", []step{{api.StatusRevoked, true, ""}, {api.StatusActive, false, api.StatusRevoked}}},
		{"decommissioned is final", []step{{api.StatusActive, true, ""}, {api.StatusDecommissioned, true, ""}, {api.StatusRevoked, false, api.StatusDecommissioned}}},
		{"suspended can be revoked", []step{{api.StatusActive, true, ""}, {api.StatusSuspended, true, ""}, {api.StatusRevoked, true, ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: "d", Type: "t", PublicKey: newKey(t, reading.ECDSAP256).Public().PEM()}))
			})
			for _, s := range tc.steps {
				if !s.ok {
					refused(t, w, org1Operator, api.CodeFailedPrecondition, "from "+string(s.from)+" to "+string(s.to), call(w, "d", s.to))
					continue
				}
				before := w.getDevice("d").Status
				d := must[api.Device](w, org1Operator, call(w, "d", s.to))
				require.Equal(t, s.to, d.Status)
				require.Equal(t, api.EventDeviceStatus, w.lastEvent.Type)
				require.Equal(t, []api.StatusChange{{Device: "d", Owner: "Org1MSP", From: before, To: s.to, Reason: d.StatusNote, Cause: org1Operator.id}}, w.lastEvent.StatusChanges)
				if final(s.to) {
					require.Equal(t, []string{"d"}, w.lastEvent.Revocations)
				} else {
					require.Empty(t, w.lastEvent.Revocations)
				}
			}
		})
	}
	w := newWorld(t)
	w.enroll(org1Operator, "d", "t")
	refused(t, w, org1Operator, api.CodeInvalidArgument, "reason", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "d", strings.Repeat("r", 300))
	})
	refused(t, w, org1Hub, api.CodeAccessDenied, "device:manage", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "d", "")
	})
	refused(t, w, org1Operator, api.CodeInvalidArgument, "id", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Revoke(ctx, "", "")
	})
}

func TestRotateKeyKeepsOldKeyAndRefusesReuse(t *testing.T) {
	w := newWorld(t)
	dev := w.enroll(org1Operator, "d1", "fridge")
	first := w.getDevice("d1")
	next := newKey(t, reading.Ed25519)
	rotate := func(pem string) txFunc {
		return func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.RotateKey(ctx, "d1", pem)
		}
	}
	d := must[api.Device](w, org1Operator, rotate(next.Public().PEM()))
	require.Equal(t, 2, d.KeyVersion)
	require.Equal(t, next.Public().Fingerprint(), d.KeyID)
	require.Equal(t, string(reading.Ed25519), d.KeyAlg)
	require.Equal(t, api.EventDeviceKeyRotated, w.lastEvent.Type)
	require.Equal(t, first.PublicKey, string(w.state[ckey(t, kindDeviceKey, "d1", first.KeyID)]), "the old key stays retrievable")
	require.Equal(t, next.Public().PEM(), string(w.state[ckey(t, kindDeviceKey, "d1", d.KeyID)]))

	refused(t, w, org1Operator, api.CodeFailedPrecondition, "already uses this key", rotate(next.Public().PEM()))
	refused(t, w, org1Operator, api.CodeFailedPrecondition, "used this key before", rotate(dev.signer.Public().PEM()))
	refused(t, w, org1Operator, api.CodeInvalidArgument, "publicKey", rotate("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:manage", rotate(newKey(t, reading.ECDSAP256).Public().PEM()))
	refused(t, w, org1Operator, api.CodeInvalidArgument, "id", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.RotateKey(ctx, "", next.Public().PEM())
	})

	hist := must[[]api.DeviceHistoryEntry](w, org1Auditor, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.History(ctx, "d1")
	})
	require.Len(t, hist, 2)
	require.Equal(t, 1, hist[0].Device.KeyVersion)
	require.Equal(t, first.PublicKey, hist[0].Device.PublicKey)
	require.Equal(t, 2, hist[1].Device.KeyVersion)
	require.Equal(t, w.now, hist[1].Timestamp)
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:read", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.History(ctx, "d1")
	})
}

func TestTransferNeedsOfferAndAcceptAndMovesEndorsement(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge", "g")
	devKey := ckey(t, kindDevice, "d1")
	offer := func(to string) txFunc {
		return func(ctx contractapi.TransactionContextInterface) (string, error) {
			return w.c.Device.OfferTransfer(ctx, "d1", to)
		}
	}
	accept := func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.AcceptTransfer(ctx, "d1")
	}
	cancel := func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.CancelTransfer(ctx, "d1")
	}

	refused(t, w, org2Operator, api.CodeFailedPrecondition, "no transfer offer to Org2MSP", accept)
	refused(t, w, org1Operator, api.CodeFailedPrecondition, "no pending transfer", cancel)
	refused(t, w, org1Operator, api.CodeInvalidArgument, "already owned by Org1MSP", offer("Org1MSP"))
	refused(t, w, org1Operator, api.CodeInvalidArgument, "toMSPID", offer("bad msp"))
	refused(t, w, org2Operator, api.CodeAccessDenied, "device:manage", offer("Org2MSP"))

	d := must[api.Device](w, org1Operator, offer("Org2MSP"))
	require.Equal(t, "Org2MSP", d.PendingTo)
	require.Equal(t, api.EventDeviceTransfer, w.lastEvent.Type)
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(devKey), "the offered org gets no veto over the owner's changes")

	d = must[api.Device](w, org1Operator, cancel)
	require.Empty(t, d.PendingTo)
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(devKey))
	refused(t, w, org2Operator, api.CodeFailedPrecondition, "no transfer offer", accept)

	must[api.Device](w, org1Operator, offer("Org2MSP"))
	refused(t, w, org2Hub, api.CodeAccessDenied, "device:manage", accept)
	d = must[api.Device](w, org2Operator, accept)
	require.Equal(t, "Org2MSP", d.Owner)
	require.Empty(t, d.PendingTo)
	require.Equal(t, []string{"Org2MSP"}, w.endorsers(devKey))
	require.NotContains(t, w.state, ckey(t, kindDeviceOwner, "Org1MSP", "d1"))
	require.Contains(t, w.state, ckey(t, kindDeviceOwner, "Org2MSP", "d1"))
	require.Equal(t, []string{"Org2MSP"}, w.endorsers(ckey(t, kindDeviceOwner, "Org2MSP", "d1")))
	require.Equal(t, []string{"Org2MSP"}, w.endorsers(ckey(t, kindDeviceGroup, "Org2MSP", "g", "d1")))
	require.NotContains(t, w.state, ckey(t, kindDeviceGroup, "Org1MSP", "g", "d1"))
	require.Equal(t, []string{"Org2MSP"}, w.endorsers(ckey(t, kindDeviceKey, "d1", d.KeyID)))

	refused(t, w, org1Operator, api.CodeAccessDenied, "device:manage", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "d1", "")
	})
	must[api.Device](w, org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Suspend(ctx, "d1", "")
	})
}

func TestRetiringDeviceWithPendingOfferCancelsIt(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge")
	must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.OfferTransfer(ctx, "d1", "Org2MSP")
	})
	d := must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.Revoke(ctx, "d1", "stolen")
	})
	require.Empty(t, d.PendingTo)
	require.Equal(t, []string{"Org1MSP"}, w.endorsers(ckey(t, kindDevice, "d1")))
	refused(t, w, org2Operator, api.CodeFailedPrecondition, "no transfer offer", func(ctx contractapi.TransactionContextInterface) (string, error) {
		return w.c.Device.AcceptTransfer(ctx, "d1")
	})
}

func TestStoredDeviceIsPlainJSON(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge")
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.state[ckey(t, kindDevice, "d1")], &m))
	require.Equal(t, "d1", m["id"])
	require.Equal(t, "Org1MSP", m["owner"])
}

func TestRefusalMessagesAreTheSameOnEveryEndorser(t *testing.T) {
	w := newWorld(t)
	attrs := map[string]string{}
	for i := 0; i < 20; i++ {
		attrs[strings.Repeat("k", i+1)+" bad"] = "v"
	}
	arg := jsonArg(t, api.EnrollRequest{ID: "a", Type: "t", Attributes: attrs, PublicKey: newKey(t, reading.ECDSAP256).Public().PEM()})
	var first string
	for i := 0; i < 30; i++ {
		_, err := w.invoke(org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Device.Enroll(ctx, arg) })
		require.Error(t, err)
		if i == 0 {
			first = err.Error()
		}
		require.Equal(t, first, err.Error())
	}
	require.Contains(t, first, `"k bad"`)
}
