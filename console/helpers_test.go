package console

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
	"github.com/iotledger/iotledger/receipt"
)

// call is one ledger call a fake saw, with the identity it was made as.
type call struct {
	identity string
	method   string
	args     []any
}

// fakeLedgers records every call, per identity, and answers from fixed data.
type fakeLedgers struct {
	mu      sync.Mutex
	calls   []call
	opened  map[string]int
	devices []api.Device
	err     error // returned by every write when set
	events  chan client.ChaincodeEvent
}

func newFakeLedgers() *fakeLedgers {
	return &fakeLedgers{opened: map[string]int{}, events: make(chan client.ChaincodeEvent, 8), devices: []api.Device{
		{ID: "sensor-1", Owner: "Org1MSP", Type: "thermometer", Groups: []string{"cold-chain"}, Status: api.StatusActive, KeyVersion: 1},
		{ID: "sensor-2", Owner: "Org1MSP", Type: "thermometer", Groups: []string{"cold-chain", "dock"}, Status: api.StatusSuspended, KeyVersion: 2},
		{ID: "valve-1", Owner: "Org1MSP", Type: "valve", Status: api.StatusActive, KeyVersion: 1},
	}}
}

func (f *fakeLedgers) open(_ context.Context, name string) (Ledger, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened[name]++
	return &fakeLedger{f: f, identity: name}, nil
}

func (f *fakeLedgers) record(identity, method string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{identity: identity, method: method, args: args})
}

func (f *fakeLedgers) callsOf(method string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

type fakeLedger struct {
	f        *fakeLedgers
	identity string
}

func (l *fakeLedger) Device(_ context.Context, id string) (*api.Device, error) {
	l.f.record(l.identity, "Device", id)
	for _, d := range l.f.devices {
		if d.ID == id {
			return &d, nil
		}
	}
	return nil, &client.TransactionError{Tx: "device:Get", Code: api.CodeNotFound, Message: "device " + id + " not found"}
}

func (l *fakeLedger) ListDevices(_ context.Context, q api.DeviceQuery) (*api.DevicePage, error) {
	l.f.record(l.identity, "ListDevices", q)
	// Two pages, so paging is exercised: the first device, then the rest.
	if q.Bookmark == "" && q.Type == "" && q.Group == "" {
		return &api.DevicePage{Devices: l.f.devices[:1], Bookmark: "p2"}, nil
	}
	var out []api.Device
	for _, d := range l.f.devices {
		if q.Bookmark == "p2" && d.ID == l.f.devices[0].ID {
			continue
		}
		if (q.Type == "" || d.Type == q.Type) && (q.Group == "" || strings.Contains(strings.Join(d.Groups, ","), q.Group)) {
			out = append(out, d)
		}
	}
	return &api.DevicePage{Devices: out}, nil
}

func (l *fakeLedger) DeviceHistory(_ context.Context, id string) ([]api.DeviceHistoryEntry, error) {
	l.f.record(l.identity, "DeviceHistory", id)
	return []api.DeviceHistoryEntry{{TxID: "tx-enroll", Timestamp: wiretest.Epoch, Device: &l.f.devices[0]}}, nil
}

func (l *fakeLedger) SetDeviceStatus(_ context.Context, id string, to api.DeviceStatus, reason string) (*api.Device, error) {
	l.f.record(l.identity, "SetDeviceStatus", id, to, reason)
	if l.f.err != nil {
		return nil, l.f.err
	}
	d := l.f.devices[0]
	d.Status = to
	return &d, nil
}

func (l *fakeLedger) RotateDeviceKey(_ context.Context, id, pemKey string) (*api.Device, error) {
	l.f.record(l.identity, "RotateDeviceKey", id, pemKey)
	d := l.f.devices[0]
	d.KeyVersion++
	return &d, l.f.err
}

func (l *fakeLedger) SendCommand(_ context.Context, req api.CommandRequest) ([]api.Command, error) {
	l.f.record(l.identity, "SendCommand", req)
	if l.f.err != nil {
		return nil, l.f.err
	}
	return []api.Command{{ID: "cmd-1", Device: req.Device, Name: req.Name, Params: req.Params, Status: api.CommandPending}}, nil
}

func (l *fakeLedger) Command(_ context.Context, id string) (*api.Command, error) {
	l.f.record(l.identity, "Command", id)
	return &api.Command{ID: id, Device: "sensor-1", Name: "reboot", Status: api.CommandAcked}, nil
}

func (l *fakeLedger) ListCommands(_ context.Context, q api.CommandQuery) (*api.CommandPage, error) {
	l.f.record(l.identity, "ListCommands", q)
	return &api.CommandPage{}, nil
}

func (l *fakeLedger) ListPolicies(_ context.Context, q api.PolicyQuery) (*api.PolicyPage, error) {
	l.f.record(l.identity, "ListPolicies", q)
	return &api.PolicyPage{}, nil
}

func (l *fakeLedger) PutPolicy(_ context.Context, p api.Policy) (*api.Policy, error) {
	l.f.record(l.identity, "PutPolicy", p)
	if l.f.err != nil {
		return nil, l.f.err
	}
	p.Version++
	return &p, nil
}

func (l *fakeLedger) Explain(_ context.Context, req api.AccessRequest) (*api.Explanation, error) {
	l.f.record(l.identity, "Explain", req)
	return &api.Explanation{Decision: api.Decision{Allowed: false, Effect: api.Deny, Reason: "default deny outside the owner org"}, Owner: "Org1MSP"}, nil
}

func (l *fakeLedger) ListRules(_ context.Context, q api.RuleQuery) (*api.RulePage, error) {
	l.f.record(l.identity, "ListRules", q)
	return &api.RulePage{}, nil
}

func (l *fakeLedger) PutRule(_ context.Context, r api.Rule) (*api.Rule, error) {
	l.f.record(l.identity, "PutRule", r)
	if l.f.err != nil {
		return nil, l.f.err
	}
	return &r, nil
}

func (l *fakeLedger) ReadingReceipt(_ context.Context, p *reading.Proof) (*receipt.Receipt, error) {
	l.f.record(l.identity, "ReadingReceipt", p)
	return &receipt.Receipt{}, nil
}

func (l *fakeLedger) Events(_ context.Context, _ client.EventOptions) (<-chan client.ChaincodeEvent, error) {
	l.f.record(l.identity, "Events")
	return l.f.events, nil
}

// fixture is a console of Org1 over fakes, served over mTLS by httptest.
type fixture struct {
	t       testing.TB
	ca      *wiretest.CA // Org1's CA
	srv     *Server
	ts      *httptest.Server
	ledgers *fakeLedgers
	st      index.Store
	certs   map[string]tls.Certificate // identity name -> client certificate
}

// identities of the test profile and their roles ("" = no role attribute).
var testIdentities = map[string]string{"operator": api.RoleOperator, "auditor": api.RoleAuditor, "hub": api.RoleHub, "admin": ""}

func newFixture(t testing.TB, tweak ...func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{t: t, ca: wiretest.NewCA(t, "ca.org1.example.com"), ledgers: newFakeLedgers(), certs: map[string]tls.Certificate{}}
	p := &client.Profile{Network: "test", Channel: "iotledger", Chaincode: "iotledger", Org: "Org1", MSPID: "Org1MSP",
		Peer: client.PeerEndpoint{Address: "127.0.0.1:7051", TLSCACert: filepath.Join(dir, "peer-ca.pem")}, Identities: map[string]client.IdentityFiles{}}
	for name, role := range testIdentities {
		certPEM, keyPEM := fx.ca.Issue(t, name, role, wiretest.Epoch.AddDate(5, 0, 0))
		files := client.IdentityFiles{MSPID: "Org1MSP", Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"_sk")}
		require.NoError(t, os.WriteFile(files.Cert, certPEM, 0o600))
		require.NoError(t, os.WriteFile(files.Key, keyPEM, 0o600))
		p.Identities[name] = files
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		require.NoError(t, err)
		fx.certs[name] = c
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "index.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	fx.st = st
	cfg := Config{Profile: p, Open: fx.ledgers.open, ClientCAs: fx.ca.Pool(), Certificate: fx.ca.ServerCert(t),
		Index: st, PollInterval: 20 * time.Millisecond, KeepaliveInterval: time.Second}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	fx.srv = srv
	fx.ts = httptest.NewUnstartedServer(srv.Handler())
	fx.ts.TLS = srv.TLSConfig()
	fx.ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests are about
	fx.ts.StartTLS()
	t.Cleanup(fx.ts.Close)
	return fx
}

// clientWith is an HTTPS client presenting certs (none for no client cert).
func (fx *fixture) clientWith(certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: fx.ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12,
	}}}
}

// as is a client signed in as a profile identity.
func (fx *fixture) as(name string) *http.Client { return fx.clientWith(fx.certs[name]) }

// do sends a request and returns the status and body.
func (fx *fixture) do(c *http.Client, method, path, body string) (int, string) {
	fx.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, fx.ts.URL+path, rd)
	require.NoError(fx.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	require.NoError(fx.t, err)
	defer func() { _ = res.Body.Close() }()
	data, err := io.ReadAll(res.Body)
	require.NoError(fx.t, err)
	return res.StatusCode, string(data)
}

// apiError decodes an error body.
func apiError(t *testing.T, body string) Error {
	t.Helper()
	var e Error
	require.NoError(t, json.Unmarshal([]byte(body), &e), "error body %q", body)
	return e
}

// readingsBlock is block n holding one batch of readings of device,
// seq from..from+count-1, one a second from ts0 (Unix ms).
func readingsBlock(n uint64, device string, from uint64, count int, ts0 int64) *index.Block {
	txID := fmt.Sprintf("batch-%d", n)
	rs := make([]index.Reading, count)
	for i := range rs {
		seq := from + uint64(i)
		ts, values := ts0+int64(i)*1000, fmt.Sprintf(`[{"n":"temp","u":"Cel","v":%d.5}]`, seq)
		rs[i] = index.Reading{Device: device, Seq: seq, Timestamp: ts, Values: json.RawMessage(values),
			// The payload holds the values, as a device's does: the index reads them from it.
			Payload:   fmt.Appendf(nil, `{"device":%q,"seq":%d,"ts":%d,"values":%s}`, device, seq, ts, values),
			Signature: fmt.Appendf(nil, "sig %d", seq),
			BatchTx:   txID, Index: i, Block: n}
	}
	h := make([]byte, 32)
	h[0] = byte(n + 1)
	return &index.Block{Number: n, Hash: h, Time: time.UnixMilli(ts0).UTC(), Transactions: []index.Transaction{{
		Block: n, TxID: txID, Time: time.UnixMilli(ts0).UTC(), ValidationCode: "VALID", Function: "telemetry:SubmitBatch",
		CreatorMSP: "Org1MSP", Creator: "CN=hub,OU=client", Endorsers: []string{"Org1MSP", "Org2MSP"}, Devices: []string{device},
		Event: &api.Event{Type: "telemetry.batch", TxID: txID}, Readings: rs,
		Batch: &index.Batch{TxID: txID, Root: make([]byte, 32), Size: count, Submitter: "hub", MSPID: "Org1MSP", Block: n},
	}}}
}
