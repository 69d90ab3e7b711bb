package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/receipt"
)

// fakeLedger answers every call with fixed data and records what it was asked.
type fakeLedger struct {
	t      *testing.T
	calls  []string
	err    error // returned by every call when set
	events []client.ChaincodeEvent

	enrolled   *api.EnrollRequest
	updated    *api.DeviceUpdate
	status     api.DeviceStatus
	reason     string
	policy     *api.Policy
	rule       *api.Rule
	access     *api.AccessRequest
	command    *api.CommandRequest
	devQuery   *api.DeviceQuery
	rotatedPEM string
	bookmarks  []string
	closed     bool
}

var (
	t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	t1 = t0.Add(90 * time.Minute)
)

const fixturePublicKey = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA1NSFLGm6ziRhNlLSjBKIfP1bjjfkNJ1TG5Ze1r4YMUM=\n-----END PUBLIC KEY-----\n"

// operatorID is a client identity ID as the chaincode records it.
var operatorID = base64.StdEncoding.EncodeToString([]byte("x509::CN=operator,OU=client::CN=ca.org1.iotledger.local,O=org1.iotledger.local"))

func fixtureDevice(id string) api.Device {
	return api.Device{
		ID: id, Owner: "Org1MSP", Type: "fridge", Groups: []string{"cold-chain"},
		Attributes: map[string]string{"site": "lyon", "floor": "2"},
		PublicKey:  fixturePublicKey, KeyAlg: "ed25519", KeyID: "6f1c0e7d2a6b4d0f9e8c7b6a5d4c3b2a1f0e9d8c7b6a5d4c3b2a1f0e9d8c7b6a",
		KeyVersion: 1, Firmware: "1.4.2", Status: api.StatusActive, EnrolledBy: operatorID,
		EnrolledAt: t0, UpdatedAt: t1, UpdatedByTx: "5f0a",
	}
}

func fixturePolicy() api.Policy {
	nb := t0
	return api.Policy{
		ID: "share-cold-chain", Owner: "Org1MSP", Description: "Org2 auditors read cold-chain telemetry",
		Statements: []api.Statement{
			{Sid: "read", Effect: api.Allow, Principals: []string{"msp:Org2MSP"}, Actions: []string{"telemetry:read"}, Resources: []string{"group:cold-chain"}, Condition: `principal.role == "auditor"`},
			{Effect: api.Deny, Principals: []string{"*"}, Actions: []string{"device:command"}, Resources: []string{"fridge-9"}},
		},
		NotBefore: &nb, Version: 3, UpdatedAt: t1,
	}
}

func fixtureRule() api.Rule {
	return api.Rule{
		ID: "too-warm", Owner: "Org1MSP", Description: "cold chain broken",
		Selector:  api.DeviceSelector{Groups: []string{"cold-chain"}},
		Condition: "reading.values.temperature > 8.0",
		Actions: []api.RuleAction{
			{Type: api.ActionTypeAlert, Severity: api.SeverityCritical, Message: "too warm"},
			{Type: api.ActionTypeCommand, Command: "defrost-off", TTL: 600},
		},
		CooldownSeconds: 300, Version: 1, UpdatedAt: t1,
	}
}

func fixtureCommand(id, device string) api.Command {
	return api.Command{
		ID: id, Device: device, Owner: "Org1MSP", Name: "set-setpoint", Params: json.RawMessage(`{"celsius":4}`),
		Status: api.CommandPending, IssuedBy: operatorID, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}
}

func num(v float64) *float64 { return &v }

func (f *fakeLedger) call(name string) error {
	f.calls = append(f.calls, name)
	return f.err
}

func (f *fakeLedger) Close() error  { f.closed = true; return nil }
func (f *fakeLedger) MSPID() string { return "Org1MSP" }

func (f *fakeLedger) EnrollDevice(_ context.Context, req api.EnrollRequest) (*api.Device, error) {
	if err := f.call("EnrollDevice"); err != nil {
		return nil, err
	}
	f.enrolled = &req
	d := fixtureDevice(req.ID)
	d.PublicKey = req.PublicKey
	return &d, nil
}

func (f *fakeLedger) Device(_ context.Context, id string) (*api.Device, error) {
	if err := f.call("Device"); err != nil {
		return nil, err
	}
	d := fixtureDevice(id)
	return &d, nil
}

func (f *fakeLedger) ListDevices(_ context.Context, q api.DeviceQuery) (*api.DevicePage, error) {
	if err := f.call("ListDevices"); err != nil {
		return nil, err
	}
	f.devQuery = &q
	f.bookmarks = append(f.bookmarks, q.Bookmark)
	switch q.Bookmark {
	case "":
		return &api.DevicePage{Devices: []api.Device{fixtureDevice("fridge-01"), fixtureDevice("fridge-02")}, Bookmark: "page2"}, nil
	case "page2":
		return &api.DevicePage{Devices: []api.Device{fixtureDevice("fridge-03")}}, nil
	}
	return &api.DevicePage{}, nil
}

func (f *fakeLedger) UpdateDevice(_ context.Context, u api.DeviceUpdate) (*api.Device, error) {
	if err := f.call("UpdateDevice"); err != nil {
		return nil, err
	}
	f.updated = &u
	d := fixtureDevice(u.ID)
	return &d, nil
}

func (f *fakeLedger) RotateDeviceKey(_ context.Context, id, pemText string) (*api.Device, error) {
	if err := f.call("RotateDeviceKey"); err != nil {
		return nil, err
	}
	f.rotatedPEM = pemText
	d := fixtureDevice(id)
	d.KeyVersion = 2
	return &d, nil
}

func (f *fakeLedger) SetDeviceStatus(_ context.Context, id string, to api.DeviceStatus, reason string) (*api.Device, error) {
	if err := f.call("SetDeviceStatus"); err != nil {
		return nil, err
	}
	f.status, f.reason = to, reason
	d := fixtureDevice(id)
	d.Status, d.StatusNote = to, reason
	return &d, nil
}

func (f *fakeLedger) OfferTransfer(_ context.Context, id, to string) (*api.Device, error) {
	if err := f.call("OfferTransfer:" + to); err != nil {
		return nil, err
	}
	d := fixtureDevice(id)
	d.PendingTo = to
	return &d, nil
}

func (f *fakeLedger) AcceptTransfer(_ context.Context, id string) (*api.Device, error) {
	if err := f.call("AcceptTransfer"); err != nil {
		return nil, err
	}
	d := fixtureDevice(id)
	d.Owner = "Org2MSP"
	return &d, nil
}

func (f *fakeLedger) CancelTransfer(_ context.Context, id string) (*api.Device, error) {
	if err := f.call("CancelTransfer"); err != nil {
		return nil, err
	}
	d := fixtureDevice(id)
	return &d, nil
}

func (f *fakeLedger) DeviceHistory(_ context.Context, id string) ([]api.DeviceHistoryEntry, error) {
	if err := f.call("DeviceHistory"); err != nil {
		return nil, err
	}
	first := fixtureDevice(id)
	first.Status, first.UpdatedAt, first.UpdatedByTx = api.StatusProvisioned, t0, "tx-enroll"
	second := fixtureDevice(id)
	return []api.DeviceHistoryEntry{
		{TxID: "tx-enroll", Timestamp: t0, Device: &first},
		{TxID: "5f0a", Timestamp: t1, Device: &second},
	}, nil
}

func (f *fakeLedger) PutPolicy(_ context.Context, p api.Policy) (*api.Policy, error) {
	if err := f.call("PutPolicy"); err != nil {
		return nil, err
	}
	f.policy = &p
	out := fixturePolicy()
	return &out, nil
}

func (f *fakeLedger) Policy(_ context.Context, _ string) (*api.Policy, error) {
	if err := f.call("Policy"); err != nil {
		return nil, err
	}
	out := fixturePolicy()
	return &out, nil
}

func (f *fakeLedger) ListPolicies(_ context.Context, _ api.PolicyQuery) (*api.PolicyPage, error) {
	if err := f.call("ListPolicies"); err != nil {
		return nil, err
	}
	return &api.PolicyPage{Policies: []api.Policy{fixturePolicy()}}, nil
}

func (f *fakeLedger) DeletePolicy(_ context.Context, _ string) error { return f.call("DeletePolicy") }

func (f *fakeLedger) CheckAccess(_ context.Context, req api.AccessRequest) (*api.Decision, error) {
	if err := f.call("CheckAccess"); err != nil {
		return nil, err
	}
	f.access = &req
	return &api.Decision{Allowed: true, Effect: api.Allow, Reason: "allowed by share-cold-chain/read", PolicyID: "share-cold-chain", Sid: "read"}, nil
}

func (f *fakeLedger) Explain(_ context.Context, req api.AccessRequest) (*api.Explanation, error) {
	if err := f.call("Explain"); err != nil {
		return nil, err
	}
	f.access = &req
	return &api.Explanation{
		Decision:  api.Decision{Allowed: false, Effect: api.Deny, Reason: "denied by share-cold-chain #1", PolicyID: "share-cold-chain", Sid: ""},
		Principal: api.Principal{MSPID: "Org2MSP", ClientID: "x509::CN=auditor", Role: "auditor"},
		Owner:     "Org1MSP",
		Statements: []api.StatementResult{
			{PolicyID: "share-cold-chain", Sid: "read", Index: 0, Effect: api.Allow, Matched: false, Why: "action device:command not listed"},
			{PolicyID: "share-cold-chain", Index: 1, Effect: api.Deny, Matched: true, Why: "principal * matched; action matched; resource fridge-9 matched"},
		},
	}, nil
}

func (f *fakeLedger) PutRule(_ context.Context, r api.Rule) (*api.Rule, error) {
	if err := f.call("PutRule"); err != nil {
		return nil, err
	}
	f.rule = &r
	out := fixtureRule()
	return &out, nil
}

func (f *fakeLedger) Rule(_ context.Context, _ string) (*api.Rule, error) {
	if err := f.call("Rule"); err != nil {
		return nil, err
	}
	out := fixtureRule()
	return &out, nil
}

func (f *fakeLedger) ListRules(_ context.Context, _ api.RuleQuery) (*api.RulePage, error) {
	if err := f.call("ListRules"); err != nil {
		return nil, err
	}
	return &api.RulePage{Rules: []api.Rule{fixtureRule()}}, nil
}

func (f *fakeLedger) DeleteRule(_ context.Context, _ string) error { return f.call("DeleteRule") }

func (f *fakeLedger) SendCommand(_ context.Context, req api.CommandRequest) ([]api.Command, error) {
	if err := f.call("SendCommand"); err != nil {
		return nil, err
	}
	f.command = &req
	return []api.Command{fixtureCommand("cmd-1", "fridge-01"), fixtureCommand("cmd-2", "fridge-02")}, nil
}

func (f *fakeLedger) Command(_ context.Context, id string) (*api.Command, error) {
	if err := f.call("Command"); err != nil {
		return nil, err
	}
	c := fixtureCommand(id, "fridge-01")
	delivered, done := t0.Add(time.Minute), t0.Add(2*time.Minute)
	c.Status, c.DeliveredBy, c.DeliveredAt, c.CompletedAt, c.Result = api.CommandAcked, "x509::CN=hub1", &delivered, &done, "setpoint 4"
	return &c, nil
}

func (f *fakeLedger) ListCommands(_ context.Context, q api.CommandQuery) (*api.CommandPage, error) {
	if err := f.call("ListCommands"); err != nil {
		return nil, err
	}
	return &api.CommandPage{Commands: []api.Command{fixtureCommand("cmd-1", q.Device)}}, nil
}

// The receipt verbs need real blocks; test/receipts runs them on a network.
var errNoReceipts = errors.New("the fake ledger makes no receipts")

func (f *fakeLedger) TrustAnchor(context.Context) (receipt.Anchor, *common.Block, error) {
	return receipt.Anchor{}, nil, errors.Join(f.call("TrustAnchor"), errNoReceipts)
}

func (f *fakeLedger) ReadingReceipt(context.Context, *reading.Proof) (*receipt.Receipt, error) {
	return nil, errors.Join(f.call("ReadingReceipt"), errNoReceipts)
}

func (f *fakeLedger) ReceiptOfReading(context.Context, string, *reading.Proof) (*receipt.Receipt, error) {
	return nil, errors.Join(f.call("ReceiptOfReading"), errNoReceipts)
}

func (f *fakeLedger) CommandAckReceipt(context.Context, string) (*receipt.Receipt, error) {
	return nil, errors.Join(f.call("CommandAckReceipt"), errNoReceipts)
}

func (f *fakeLedger) DeviceReceipt(context.Context, string, string) (*receipt.Receipt, error) {
	return nil, errors.Join(f.call("DeviceReceipt"), errNoReceipts)
}

func (f *fakeLedger) CheckReceipt(context.Context, *receipt.Receipt, *receipt.Result) (*client.CrossCheck, error) {
	return nil, errors.Join(f.call("CheckReceipt"), errNoReceipts)
}

func (f *fakeLedger) Events(ctx context.Context, _ client.EventOptions) (<-chan client.ChaincodeEvent, error) {
	if err := f.call("Events"); err != nil {
		return nil, err
	}
	ch := make(chan client.ChaincodeEvent)
	go func() {
		defer close(ch)
		for _, e := range f.events {
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// deviceSigner is a deterministic Ed25519 device key, so proofs and their
// golden files are the same on every run.
func deviceSigner(t *testing.T) *reading.Signer {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	s, err := reading.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	return s
}

// realProof builds a batch of three signed readings and the proof of the
// second one, exactly as the chaincode commits them.
func realProof(t *testing.T) *reading.Proof {
	t.Helper()
	s := deviceSigner(t)
	var (
		leaves [][32]byte
		envs   []reading.Envelope
	)
	for seq := uint64(1); seq <= 3; seq++ {
		env, err := s.SignReading(reading.Payload{
			Device: "fridge-01", Seq: seq, Timestamp: t0.UnixMilli() + int64(seq)*1000,
			Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: num(3.5 + float64(seq))}},
		})
		require.NoError(t, err)
		envs = append(envs, env)
		leaves = append(leaves, reading.LeafHash(env.Payload, env.Signature))
	}
	root, err := reading.MerkleRoot(leaves)
	require.NoError(t, err)
	path, err := reading.InclusionPath(leaves, 1)
	require.NoError(t, err)
	hashes := make([]reading.Hash, len(path))
	for i, h := range path {
		hashes[i] = h
	}
	p := &reading.Proof{
		BatchID: "9a8b7c6d", Root: root, Size: len(leaves), Index: 1, Path: hashes,
		Payload: envs[1].Payload, Signature: envs[1].Signature, PublicKey: s.Public().PEM(),
	}
	_, err = p.Verify()
	require.NoError(t, err, "the fixture proof must verify")
	return p
}
