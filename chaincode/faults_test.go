package chaincode

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/mocks"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// faultScenario is a transaction run on a prepared world.
type faultScenario struct {
	name  string
	setup func(w *world) (caller, txFunc)
}

func faultScenarios(t *testing.T) []faultScenario {
	dev := func(w *world) *testDevice { return w.enroll(org1Operator, "d1", "fridge", "g1") }
	return []faultScenario{
		{"enroll", func(w *world) (caller, txFunc) {
			pem := newKey(t, reading.ECDSAP256).Public().PEM()
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Enroll(ctx, jsonArg(t, api.EnrollRequest{ID: "n", Type: "t", Groups: []string{"g"}, PublicKey: pem}))
			}
		}},
		{"update", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Update(ctx, `{"id":"d1","type":"x","groups":["g2"]}`)
			}
		}},
		{"rotate", func(w *world) (caller, txFunc) {
			dev(w)
			pem := newKey(t, reading.Ed25519).Public().PEM()
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.RotateKey(ctx, "d1", pem)
			}
		}},
		{"offer", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.OfferTransfer(ctx, "d1", "Org2MSP")
			}
		}},
		{"accept", func(w *world) (caller, txFunc) {
			dev(w)
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.OfferTransfer(ctx, "d1", "Org2MSP")
			})
			return org2Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.AcceptTransfer(ctx, "d1")
			}
		}},
		{"cancel", func(w *world) (caller, txFunc) {
			dev(w)
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.OfferTransfer(ctx, "d1", "Org2MSP")
			})
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.CancelTransfer(ctx, "d1")
			}
		}},
		{"suspend", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Suspend(ctx, "d1", "")
			}
		}},
		{"list devices", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.List(ctx, `{"group":"g1"}`)
			}
		}},
		{"history", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.History(ctx, "d1")
			}
		}},
		{"put policy", func(w *world) (caller, txFunc) {
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Policy.Put(ctx, jsonArg(t, grant("p", []string{"*"}, []string{"device:read"}, []string{"*"})))
			}
		}},
		{"delete policy", func(w *world) (caller, txFunc) {
			_, err := w.putPolicy(org1Operator, grant("p", []string{"*"}, []string{"device:read"}, []string{"*"}))
			require.NoError(t, err)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return "", w.c.Policy.Delete(ctx, "p")
			}
		}},
		{"list policies", func(w *world) (caller, txFunc) {
			_, err := w.putPolicy(org1Operator, grant("p", []string{"*"}, []string{"device:read"}, []string{"*"}))
			require.NoError(t, err)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) { return w.c.Policy.List(ctx, `{}`) }
		}},
		{"explain", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Policy.Explain(ctx, `{"action":"device:read","resource":"d1"}`)
			}
		}},
		{"put rule", func(w *world) (caller, txFunc) {
			r := hotRule("r", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo})
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Rule.Put(ctx, jsonArg(t, r))
			}
		}},
		{"delete and list rules", func(w *world) (caller, txFunc) {
			_, err := w.putRule(org1Operator, hotRule("r", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}))
			require.NoError(t, err)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				if _, err := w.c.Rule.List(ctx, `{}`); err != nil {
					return "", err
				}
				return "", w.c.Rule.Delete(ctx, "r")
			}
		}},
		{"batch with rules", func(w *world) (caller, txFunc) {
			d := dev(w)
			w.enroll(org1Operator, "d2", "fan", "g1")
			_, err := w.putRule(org1Operator, api.Rule{ID: "r", Condition: "reading.values.temperature > 8.0", CooldownSeconds: 60,
				Actions: []api.RuleAction{
					{Type: api.ActionTypeAlert, Severity: api.SeverityInfo},
					{Type: api.ActionTypeCommand, Command: "c", Target: "group:g1"},
					{Type: api.ActionTypeCommand, Command: "c", Target: "device:d2"},
					{Type: api.ActionTypeSetStatus, Status: api.StatusSuspended},
				}})
			require.NoError(t, err)
			_, err = w.submitBatch(org1Hub, d.reading(t, 20)) // sets the cooldown key
			require.NoError(t, err)
			must[api.Device](w, org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Device.Activate(ctx, "d1", "")
			})
			w.now = w.now.Add(2 * 60e9)
			envs := []reading.Envelope{d.reading(t, 20), d.reading(t, 21)}
			return org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: envs}))
			}
		}},
		{"read telemetry", func(w *world) (caller, txFunc) {
			d := dev(w)
			_, err := w.submitBatch(org1Hub, d.reading(t, 1), d.reading(t, 2))
			require.NoError(t, err)
			batchID := w.lastTx.id
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				if _, err := w.c.Telemetry.Seen(ctx, "d1", `[1,2,3]`); err != nil {
					return "", err
				}
				return w.c.Telemetry.GetBatch(ctx, batchID)
			}
		}},
		{"first batch after the upgrade", func(w *world) (caller, txFunc) {
			d := dev(w)
			for _, seq := range []uint64{1, 2, 5, 1500, 1502} {
				w.state[readingKey("d1", seq)] = []byte("first layout")
			}
			d.seq = 1502
			envs := []reading.Envelope{d.reading(t, 1), d.reading(t, 2)}
			return org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Telemetry.SubmitBatch(ctx, jsonArg(t, api.BatchRequest{Readings: envs}))
			}
		}},
		{"send to group", func(w *world) (caller, txFunc) {
			dev(w)
			return org1Operator, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Command.Send(ctx, `{"group":"g1","name":"x"}`)
			}
		}},
		{"command lifecycle", func(w *world) (caller, txFunc) {
			d := dev(w)
			cmd := w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "x"})[0]
			ack := d.ack(t, api.AckPayload{Device: "d1", Command: cmd.ID, Status: api.CommandAcked, Ts: 1})
			return org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
				if _, err := w.c.Command.Get(ctx, cmd.ID); err != nil {
					return "", err
				}
				return w.c.Command.Ack(ctx, ack)
			}
		}},
		{"list commands", func(w *world) (caller, txFunc) {
			dev(w)
			w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "x"})
			// A listing reads the caller's private commands too: a query
			// over private data, which Fabric runs only in a transaction
			// that writes nothing.
			return org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Command.List(ctx, `{"device":"d1"}`)
			}
		}},
		{"deliver", func(w *world) (caller, txFunc) {
			dev(w)
			cmd := w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "x"})[0]
			return org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Command.MarkDelivered(ctx, cmd.ID)
			}
		}},
		{"expire", func(w *world) (caller, txFunc) {
			dev(w)
			cmd := w.send(org1Operator, api.CommandRequest{Device: "d1", Name: "x", TTLSeconds: 1})[0]
			w.now = w.now.Add(2e9)
			return org1Hub, func(ctx contractapi.TransactionContextInterface) (string, error) {
				return w.c.Command.Expire(ctx, cmd.ID)
			}
		}},
	}
}

var stubMethods = []string{
	"GetTxTimestamp", "GetState", "PutState", "DelState", "SetStateValidationParameter", "SetEvent",
	"GetStateByPartialCompositeKey", "GetStateByPartialCompositeKeyWithPagination", "GetStateByRange", "GetStateByRangeWithPagination",
	"GetHistoryForKey", "HistoryNext", "Next",
}

func TestLedgerFailuresAreReportedAndCommitNothing(t *testing.T) {
	for _, sc := range faultScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			for _, method := range stubMethods {
				for n := 1; n < 100; n++ {
					w := newWorld(t)
					who, tx := sc.setup(w)
					before := len(w.state)
					w.fault = fault{method: method, n: n}
					_, err := w.invoke(who, tx)
					if !w.fault.hit {
						require.NoError(t, err, "%s without a fault", method)
						break
					}
					require.Error(t, err, "%s failing at call %d", method, n)
					code := api.CodeOf(err)
					require.Contains(t, []api.Code{api.CodeInternal, api.CodeInvalidArgument}, code, "%s call %d: %v", method, n, err)
					require.Equal(t, before, len(w.state))
				}
			}
		})
	}
}

func TestCallerIdentityComesFromTheCertificate(t *testing.T) {
	w := newWorld(t)
	w.enroll(org1Operator, "d1", "fridge")
	cert := &x509.Certificate{}
	require.NoError(t, attrmgr.New().AddAttributesToCert(&attrmgr.Attributes{Attrs: map[string]string{
		api.RoleAttribute: api.RoleHub, "hf.EnrollmentID": "hub-7",
	}}, cert))
	run := func(ci *mocks.ClientIdentity) (string, error) {
		stub := w.stub(&txRecord{id: "t", writes: map[string][]byte{}, sbe: map[string][]byte{}}, "Org1MSP")
		ctx := &mocks.TransactionContext{}
		ctx.GetStubReturns(stub)
		ctx.GetClientIdentityReturns(ci)
		return w.c.Policy.Explain(ctx, `{"action":"telemetry:write","resource":"d1"}`)
	}
	ci := w.identity(org1Hub)
	ci.GetX509CertificateReturns(cert, nil)
	out, err := run(ci)
	require.NoError(t, err)
	var x api.Explanation
	require.NoError(t, json.Unmarshal([]byte(out), &x))
	require.Equal(t, "hub-7", x.Principal.Attrs["hf.EnrollmentID"])
	require.True(t, x.Decision.Allowed)

	for _, tc := range []struct {
		name     string
		mutate   func(ci *mocks.ClientIdentity)
		contains string
	}{
		{"no MSP ID", func(ci *mocks.ClientIdentity) { ci.GetMSPIDReturns("", errors.New("no creator")) }, "MSP ID"},
		{"odd MSP ID", func(ci *mocks.ClientIdentity) { ci.GetMSPIDReturns("Org 1", nil) }, "caller MSP ID"},
		{"no ID", func(ci *mocks.ClientIdentity) { ci.GetIDReturns("", errors.New("bad cert")) }, "identity"},
		{"attribute error", func(ci *mocks.ClientIdentity) {
			ci.GetAttributeValueStub = nil
			ci.GetAttributeValueReturns("", false, errors.New("bad attrs"))
		}, api.RoleAttribute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := w.identity(org1Hub)
			tc.mutate(ci)
			_, err := run(ci)
			require.Equal(t, api.CodeAccessDenied, api.CodeOf(err))
			require.Contains(t, err.Error(), tc.contains)
		})
	}
}

func TestKeyHelpers(t *testing.T) {
	_, err := compositeKey("dev", "bad\x00")
	require.Equal(t, api.CodeInvalidArgument, api.CodeOf(err))
	_, _, err = splitKey("plain")
	require.Equal(t, api.CodeInternal, api.CodeOf(err))
	_, _, err = splitKey("\x00")
	require.Equal(t, api.CodeInternal, api.CodeOf(err))
	_, err = lastAttr(ckey(t, "dev"))
	require.Equal(t, api.CodeInternal, api.CodeOf(err))
	_, err = seqFromReadingKey("d", "rd~d~")
	require.Equal(t, api.CodeInternal, api.CodeOf(err))
	_, err = seqFromReadingKey("d", "rd~d~x")
	require.Equal(t, api.CodeInternal, api.CodeOf(err))
	seq, err := seqFromReadingKey("d", readingKey("d", 42))
	require.NoError(t, err)
	require.Equal(t, uint64(42), seq)
	start, end := readingRange("d", 7)
	require.Less(t, start, readingKey("d", 8))
	require.Less(t, readingKey("d", ^uint64(0)), end)
	require.Greater(t, readingKey("d-x", 1), end[:len("rd~d")], "another device's keys fall outside the range")
}
