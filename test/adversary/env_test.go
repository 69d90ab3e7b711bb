package adversary_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/adversary/rawgw"
	"github.com/iotledger/iotledger/test/testnet"
)

// hostileServerPackage is the attacker's chaincode server, built from the source tree.
const hostileServerPackage = "./test/adversary/hostilecc"

// environment is the network and the honest parties' clients of one test.
type environment struct {
	net          *network.Network
	org1Operator *client.Client
	org1Hub      *client.Client
	org2Operator *client.Client
	org2Hub      *client.Client
	hostile      *hostileServer
}

// env connects the usual clients of a test (closed when it ends), after
// making sure Org2's peer runs the hostile server; it skips a short run.
func env(t *testing.T) *environment {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a Fabric network")
	}
	require.NotNil(t, fabric, "no network")
	require.NoError(t, hostile.ensure(fabric), "swapping Org2's chaincode server for the hostile one")
	e := &environment{net: fabric, hostile: hostile}
	e.org1Operator = e.connect(t, "Org1", "operator")
	e.org1Hub = e.connect(t, "Org1", "hub")
	e.org2Operator = e.connect(t, "Org2", "operator")
	e.org2Hub = e.connect(t, "Org2", "hub")
	return e
}

// ctx is a per-test context.
func (e *environment) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// connect opens an SDK client of an org's identity, closed at the end of the test.
func (e *environment) connect(t *testing.T, org, identity string, opts ...client.Option) *client.Client {
	t.Helper()
	p, err := e.net.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(e.ctx(t), p, identity, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// raw opens a raw gateway client of an org's identity, closed at the end of the test.
func (e *environment) raw(t *testing.T, org, identity string) *rawgw.Client {
	t.Helper()
	p, err := e.net.Profile(org)
	require.NoError(t, err)
	c, err := rawgw.Connect(p, identity)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// settle waits until every peer has the blocks any peer has now.
func (e *environment) settle(t *testing.T) {
	t.Helper()
	testnet.Settle(e.ctx(t), t, e.net)
}

// --- the hostile server ---

// hostileServer is Org2's modified chaincode server (see ./hostilecc).
type hostileServer struct {
	once    sync.Once
	err     error
	dir     string
	logPath string // HOSTILE_LOG: one JSON line per invocation
	refuse  string // HOSTILE_REFUSE: while it exists, every invocation is refused
	restore func(context.Context) error
}

// ensure swaps Org2's iotledger server for the hostile build, once, and
// waits until Org2's peer reaches it.
func (h *hostileServer) ensure(n *network.Network) error {
	h.once.Do(func() { h.err = h.swap(n) })
	return h.err
}

func (h *hostileServer) swap(n *network.Network) error {
	dir, err := os.MkdirTemp("", "iotledger-hostile-")
	if err != nil {
		return err
	}
	h.dir = dir
	h.logPath, h.refuse = filepath.Join(dir, "invocations.jsonl"), filepath.Join(dir, "refuse")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h.restore, err = n.ReplaceChaincodeServer(ctx, network.DefaultChaincode, "Org2", hostileServerPackage,
		"HOSTILE_LOG="+h.logPath, "HOSTILE_REFUSE="+h.refuse)
	if err != nil {
		return err
	}
	// The peer dials the server again on its next invocation; a hostile
	// function answering proves it reaches the new one.
	p, err := n.Profile("Org2")
	if err != nil {
		return err
	}
	c, err := rawgw.Connect(p, "operator")
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_, last = c.Evaluate(cctx, rawgw.Proposal{Function: "hostile:GetEndorsers", Args: []string{"probe"}}, "Org2MSP")
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Org2's peer never reached the hostile server: %w", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// logEntry is one line of the hostile server's log.
type logEntry struct {
	TxID      string            `json:"txId"`
	Creator   string            `json:"creatorMspId"`
	Function  string            `json:"function"`
	Args      [][]byte          `json:"args"`
	Transient map[string][]byte `json:"transient"`
	Refused   bool              `json:"refused"`
}

// entries reads the hostile server's log: everything Org2's chaincode was sent.
func (h *hostileServer) entries(t *testing.T) []logEntry {
	t.Helper()
	f, err := os.Open(h.logPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e logEntry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "log line %q", sc.Text())
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

// withhold makes Org2's chaincode refuse every invocation until the end of
// the test.
func (h *hostileServer) withhold(t *testing.T) {
	t.Helper()
	require.NoError(t, os.WriteFile(h.refuse, nil, 0o600))
	t.Cleanup(func() { require.NoError(t, os.Remove(h.refuse)) })
}

// hostileGet reads a raw world-state value through Org2's peer, past every
// check of the contracts (nil when the key does not exist).
func (e *environment) hostileGet(t *testing.T, key string) []byte {
	t.Helper()
	v, err := e.raw(t, "Org2", "operator").Evaluate(e.ctx(t), rawgw.Proposal{Function: "hostile:Get", Args: []string{key}}, "Org2MSP")
	require.NoError(t, err)
	return v
}

// hostileEndorsers reads the MSP IDs of a key's endorsement policy ("" if it has none).
func (e *environment) hostileEndorsers(t *testing.T, key string) string {
	t.Helper()
	v, err := e.raw(t, "Org2", "operator").Evaluate(e.ctx(t), rawgw.Proposal{Function: "hostile:GetEndorsers", Args: []string{key}}, "Org2MSP")
	require.NoError(t, err)
	return string(v)
}

// hostileWrite runs a raw hostile:<fn> write endorsed by Org2's peer alone
// and returns how it committed.
func (e *environment) hostileWrite(t *testing.T, fn string, args ...string) peer.TxValidationCode {
	t.Helper()
	_, code, _, err := e.raw(t, "Org2", "operator").Invoke(e.ctx(t), rawgw.Proposal{Function: "hostile:" + fn, Args: args}, "Org2MSP")
	require.NoError(t, err, "hostile:%s", fn)
	return code
}

// --- world-state keys (docs/chaincode.md, "Key layout") ---

func compositeKey(t *testing.T, kind string, attrs ...string) string {
	t.Helper()
	k, err := shim.CreateCompositeKey(kind, attrs)
	require.NoError(t, err)
	return k
}

func deviceKey(t *testing.T, id string) string { return compositeKey(t, "dev", id) }

func ruleKey(t *testing.T, owner, id string) string { return compositeKey(t, "rule", owner, id) }

// replayKey is a device's replay state, written with its first accepted
// batch (the ledger keeps no key per reading).
func replayKey(t *testing.T, device string) string { return compositeKey(t, "rs", device) }

// withField returns a stored JSON record with one field replaced.
func withField(t *testing.T, record []byte, field string, value any) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(record, &m), "stored record %q", record)
	v, err := json.Marshal(value)
	require.NoError(t, err)
	m[field] = v
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// --- fixtures ---

var idNo atomic.Int64

// unique is a suffix no other test (or earlier run on a reused network) uses.
func unique() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(idNo.Add(1), 36)
}

// device is a simulated device: its key and its next sequence number.
type device struct {
	id     string
	signer *reading.Signer
	seq    uint64
}

func newDevice(t *testing.T, prefix string) *device {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	return &device{id: prefix + "-" + unique(), signer: s}
}

// reading signs the device's next reading.
func (d *device) reading(t *testing.T, values ...reading.Value) reading.Envelope {
	t.Helper()
	d.seq++
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: d.seq, Timestamp: time.Now().UnixMilli(), Values: values})
	require.NoError(t, err)
	return env
}

// signed signs payload bytes exactly as given, as a device (or a hub holding
// a device's key) could.
func (d *device) signed(t *testing.T, payload []byte) reading.Envelope {
	t.Helper()
	sig, err := d.signer.Sign(reading.DomainReading, payload)
	require.NoError(t, err)
	return reading.Envelope{Payload: payload, Signature: sig}
}

func num(name string, v float64) reading.Value { return reading.Value{Name: name, Number: &v} }

func text(name, v string) reading.Value { return reading.Value{Name: name, String: &v} }

// enroll enrolls and activates d as the client's org's device, and waits
// until every peer has it: the next transaction about it is endorsed by
// both orgs' peers.
func (e *environment) enroll(ctx context.Context, t *testing.T, c *client.Client, d *device, req api.EnrollRequest) *api.Device {
	t.Helper()
	req.ID, req.PublicKey, req.Activate = d.id, d.signer.Public().PEM(), true
	if req.Type == "" {
		req.Type = "sensor"
	}
	got, err := c.EnrollDevice(ctx, req)
	require.NoError(t, err)
	e.settle(t)
	return got
}

// --- assertions ---

// requireRefused checks a refusal's classified code and that its text
// holds every fragment.
func requireRefused(t *testing.T, err error, code api.Code, contains ...string) {
	t.Helper()
	require.Error(t, err, "want a %s refusal", code)
	require.Equal(t, code, api.CodeOf(err), "error: %v", err)
	for _, c := range contains {
		require.Contains(t, err.Error(), c)
	}
	t.Logf("refused as it should be: %v", err)
}

var rfc3339 = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)

// requireClockSkew checks a CLOCK_SKEW refusal that names the forged
// proposal timestamp and the endorser's own clock.
func requireClockSkew(t *testing.T, err error, forged time.Time) {
	t.Helper()
	requireRefused(t, err, api.CodeClockSkew, "proposal timestamp")
	var sawForged, sawClock bool
	for _, s := range rfc3339.FindAllString(err.Error(), -1) {
		ts, perr := time.Parse(time.RFC3339Nano, s)
		if perr != nil {
			continue
		}
		sawForged = sawForged || ts.Sub(forged).Abs() < time.Second
		sawClock = sawClock || time.Since(ts).Abs() < 5*time.Minute
	}
	require.True(t, sawForged, "the refusal names the proposal timestamp %s: %v", forged.UTC().Format(time.RFC3339), err)
	require.True(t, sawClock, "the refusal names the endorser's clock: %v", err)
}

// containsAny reports which of the needles occurs in blob, or "".
func containsAny(blob []byte, needles map[string][]byte) string {
	for name, n := range needles {
		if len(n) > 0 && bytes.Contains(blob, n) {
			return name
		}
	}
	return ""
}
