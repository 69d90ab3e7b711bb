package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/index/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// cliRun is one in-process run of the ledger verbs against a fake.
type cliRun struct {
	stdout, stderr string
	err            error
	opened         int
	flags          ledgerFlags
}

// runLedgerCLI runs args through the device, policy, rule, command,
// telemetry and events groups with fake as the ledger.
func runLedgerCLI(t *testing.T, fake *fakeLedger, output, stdin string, args ...string) cliRun {
	t.Helper()
	var run cliRun
	g := &globalOptions{output: output, logLevel: "error"}
	open := func(_ context.Context, f ledgerFlags, _ *slog.Logger) (ledger, error) {
		run.opened++
		run.flags = f
		return fake, nil
	}
	root := &cobra.Command{Use: "iotledger", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newDeviceCmd(g, open), newPolicyCmd(g, open), newRuleCmd(g, open),
		newCommandCmd(g, open), newTelemetryCmd(g, open), newReceiptCmd(g, open), newEventsCmd(g, open))
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	run.err = root.ExecuteContext(t.Context())
	run.stdout, run.stderr = out.String(), errb.String()
	return run
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test ./cmd/iotledger -run %s -update", t.Name())
	require.Equal(t, string(want), got)
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

const policyDoc = `{
  "id": "share-cold-chain",
  "description": "Org2 auditors read cold-chain telemetry",
  "statements": [
    {"sid": "read", "effect": "allow", "principals": ["msp:Org2MSP"], "actions": ["telemetry:read"],
     "resources": ["group:cold-chain"], "condition": "principal.role == \"auditor\""}
  ]
}`

const ruleDoc = `{
  "id": "too-warm",
  "selector": {"groups": ["cold-chain"]},
  "condition": "reading.values.temperature > 8.0",
  "actions": [{"type": "alert", "severity": "critical", "message": "too warm"}],
  "cooldownSeconds": 300
}`

func TestJSONOutputMatchesGoldenFiles(t *testing.T) {
	pubPath := writeTemp(t, "pub.pem", deviceSigner(t).Public().PEM())
	policyPath := writeTemp(t, "policy.json", policyDoc)

	cases := []struct {
		golden string
		stdin  string
		args   []string
	}{
		{"device_enroll", "", []string{"device", "enroll", "--id", "fridge-01", "--type", "fridge", "--group", "cold-chain", "--attr", "site=lyon", "--public-key", pubPath, "--activate"}},
		{"device_get", "", []string{"device", "get", "fridge-01"}},
		{"device_list", "", []string{"device", "list"}},
		{"device_list_all", "", []string{"device", "list", "--all"}},
		{"device_update", "", []string{"device", "update", "fridge-01", "--firmware", "1.4.2"}},
		{"device_suspend", "", []string{"device", "suspend", "fridge-01", "--reason", "door sensor broken"}},
		{"device_transfer", "", []string{"device", "transfer", "fridge-01", "--to", "Org2MSP"}},
		{"device_history", "", []string{"device", "history", "fridge-01"}},
		{"policy_put", "", []string{"policy", "put", "-f", policyPath}},
		{"policy_put", policyDoc, []string{"policy", "put", "-f", "-"}},
		{"policy_get", "", []string{"policy", "get", "share-cold-chain"}},
		{"policy_list", "", []string{"policy", "list"}},
		{"policy_delete", "", []string{"policy", "delete", "share-cold-chain"}},
		{"policy_check", "", []string{"policy", "check", "--action", "telemetry:read", "--resource", "fridge-01"}},
		{"policy_explain", "", []string{"policy", "explain", "--action", "device:command", "--resource", "fridge-9"}},
		{"rule_put", ruleDoc, []string{"rule", "put", "-f", "-"}},
		{"rule_get", "", []string{"rule", "get", "too-warm"}},
		{"rule_list", "", []string{"rule", "list"}},
		{"command_send", "", []string{"command", "send", "--group", "cold-chain", "--name", "set-setpoint", "--params", `{"celsius":4}`, "--ttl", "1h"}},
		{"command_get", "", []string{"command", "get", "cmd-1"}},
		{"command_list", "", []string{"command", "list", "--device", "fridge-01"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args[:2], "_")+"_"+tc.golden, func(t *testing.T) {
			fake := &fakeLedger{t: t}
			run := runLedgerCLI(t, fake, "json", tc.stdin, tc.args...)
			require.NoError(t, run.err, run.stderr)
			require.True(t, json.Valid([]byte(run.stdout)), "output is JSON: %s", run.stdout)
			checkGolden(t, tc.golden+".json", run.stdout)
		})
	}
}

func TestTableOutputMatchesGoldenFiles(t *testing.T) {
	cases := []struct {
		golden string
		args   []string
	}{
		{"device_get", []string{"device", "get", "fridge-01"}},
		{"device_list", []string{"device", "list"}},
		{"policy_explain", []string{"policy", "explain", "--action", "device:command", "--resource", "fridge-9"}},
		{"command_get", []string{"command", "get", "cmd-1"}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			run := runLedgerCLI(t, &fakeLedger{t: t}, "table", "", tc.args...)
			require.NoError(t, run.err, run.stderr)
			checkGolden(t, tc.golden+".txt", run.stdout)
		})
	}
}

func TestEventsWatchPrintsOneJSONObjectPerEventAndStopsAfterCount(t *testing.T) {
	fake := &fakeLedger{t: t, events: []client.ChaincodeEvent{
		{BlockNumber: 7, TxID: "tx-a", Event: api.Event{Type: api.EventDeviceEnrolled, TxID: "tx-a", MSPID: "Org1MSP", Timestamp: t0, Devices: []string{"fridge-01"}}},
		{BlockNumber: 8, TxID: "tx-b", Event: api.Event{Type: api.EventTelemetryBatch, TxID: "tx-b", MSPID: "Org1MSP", Timestamp: t1,
			Alerts: []api.Alert{{Rule: "too-warm", Device: "fridge-01", Seq: 9, Severity: "critical", Message: "too warm"}}}},
		{BlockNumber: 9, TxID: "tx-c", Event: api.Event{Type: api.EventDeviceStatus, TxID: "tx-c", MSPID: "Org1MSP", Timestamp: t1,
			StatusChanges: []api.StatusChange{{Device: "fridge-01", From: api.StatusActive, To: api.StatusSuspended}}}},
	}}
	run := runLedgerCLI(t, fake, "json", "", "events", "watch", "--count", "2")
	require.NoError(t, run.err)
	checkGolden(t, "events_watch.jsonl", run.stdout)
	require.Len(t, strings.Split(strings.TrimSpace(run.stdout), "\n"), 2)

	filtered := runLedgerCLI(t, fake, "table", "", "events", "watch", "--type", api.EventDeviceStatus)
	require.NoError(t, filtered.err)
	checkGolden(t, "events_watch_status.txt", filtered.stdout)
}

func TestEventsWatchSavesItsCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	cpPath := filepath.Join(dir, "watch.checkpoint")
	fake := &fakeLedger{t: t}
	run := runLedgerCLI(t, fake, "json", "", "events", "watch", "--checkpoint", cpPath, "--count", "1")
	require.NoError(t, run.err)
	_, err := client.NewFileCheckpointer(cpPath)
	require.NoError(t, err)

	run = runLedgerCLI(t, fake, "json", "", "events", "watch", "--checkpoint", filepath.Join(dir, "missing", "cp"))
	require.ErrorContains(t, run.err, "invalid --checkpoint")
	require.Equal(t, 0, run.opened)
}

func TestInvalidFlagsAreRefusedBeforeConnecting(t *testing.T) {
	pubPath := writeTemp(t, "pub.pem", deviceSigner(t).Public().PEM())
	badKey := writeTemp(t, "bad.pem", "not a key")
	badPolicy := writeTemp(t, "bad-policy.json", `{"id":"p","statements":[{"effect":"maybe","principals":["*"],"actions":["*"],"resources":["*"]}]}`)
	typoPolicy := writeTemp(t, "typo-policy.json", `{"id":"p","stmts":[]}`)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"enroll without id", []string{"device", "enroll", "--type", "fridge", "--public-key", pubPath}, "invalid --id"},
		{"enroll with bad id", []string{"device", "enroll", "--id", "a b", "--type", "fridge", "--public-key", pubPath}, "invalid --id"},
		{"enroll without type", []string{"device", "enroll", "--id", "d1", "--public-key", pubPath}, "--type is required"},
		{"enroll without key", []string{"device", "enroll", "--id", "d1", "--type", "t"}, "the device needs a key"},
		{"enroll with both keys", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", pubPath, "--generate-key"}, "not both"},
		{"enroll with bad key", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", badKey}, "--public-key " + badKey},
		{"enroll with missing key file", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", "/nonexistent.pem"}, "reading --public-key"},
		{"key-out without generate", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", pubPath, "--key-out", "x.pem"}, "--key-out only applies"},
		{"bad alg", []string{"device", "enroll", "--id", "d1", "--type", "t", "--generate-key", "--alg", "rsa"}, "invalid --alg"},
		{"bad attr", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", pubPath, "--attr", "novalue"}, "use key=value"},
		{"duplicate attr", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", pubPath, "--attr", "a=1", "--attr", "a=2"}, "given twice"},
		{"bad group", []string{"device", "enroll", "--id", "d1", "--type", "t", "--public-key", pubPath, "--group", "a/b"}, "invalid --group"},
		{"update nothing", []string{"device", "update", "d1"}, "nothing to update"},
		{"list two indexes", []string{"device", "list", "--type", "t", "--group", "g"}, "at most one of"},
		{"list bad page size", []string{"device", "list", "--page-size", "501"}, "invalid --page-size"},
		{"transfer without target", []string{"device", "transfer", "d1"}, "give --to MSPID"},
		{"transfer both", []string{"device", "transfer", "d1", "--to", "Org2MSP", "--cancel"}, "not both"},
		{"get without id", []string{"device", "get"}, "accepts 1 arg"},
		{"policy without file", []string{"policy", "put"}, "-f FILE"},
		{"policy invalid", []string{"policy", "put", "-f", badPolicy}, `policy "p" is not valid`},
		{"policy with unknown field", []string{"policy", "put", "-f", typoPolicy}, `unknown field "stmts"`},
		{"check bad action", []string{"policy", "check", "--action", "read", "--resource", "d1"}, "invalid --action"},
		{"check without resource", []string{"policy", "check", "--action", "telemetry:read"}, "--resource is required"},
		{"check bad context", []string{"policy", "check", "--action", "telemetry:read", "--resource", "d1", "--context", "[1]"}, "--context"},
		{"rule invalid", []string{"rule", "put", "-f", "-"}, "not valid"},
		{"command without target", []string{"command", "send", "--name", "reboot"}, "give the target"},
		{"command owner without group", []string{"command", "send", "--device", "d1", "--owner", "Org2MSP", "--name", "reboot"}, "--owner names the org of a --group"},
		{"command bad owner", []string{"command", "send", "--group", "g", "--owner", "Org 2", "--name", "reboot"}, "invalid --owner"},
		{"command bad params", []string{"command", "send", "--device", "d1", "--name", "reboot", "--params", "[1,2]"}, "invalid --params"},
		{"command bad ttl", []string{"command", "send", "--device", "d1", "--name", "reboot", "--ttl", "10ms"}, "invalid --ttl"},
		{"command list bad status", []string{"command", "list", "--device", "d1", "--status", "done"}, "invalid --status"},
		{"telemetry bad seq", []string{"telemetry", "get", "d1", "3x"}, "invalid sequence number"},
		{"verify unknown flag", []string{"telemetry", "verify", "proof.json", "--root", "xyz"}, "unknown flag: --root"},
		{"events bad count", []string{"events", "watch", "--count", "-1"}, "invalid --count"},
		{"empty org", []string{"device", "get", "d1", "--org", ""}, "--org must not be empty"},
		{"org with slash", []string{"device", "get", "d1", "--org", "../x"}, "invalid --org"},
		{"empty identity", []string{"device", "get", "d1", "--identity", ""}, "--identity must not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeLedger{t: t}
			run := runLedgerCLI(t, fake, "table", "{}", tc.args...)
			require.ErrorContains(t, run.err, tc.want)
			require.Zero(t, run.opened, "no connection for invalid input")
			require.Empty(t, fake.calls)
		})
	}
}

func TestFlagsReachTheLedgerAsTyped(t *testing.T) {
	fake := &fakeLedger{t: t}
	run := runLedgerCLI(t, fake, "json", "", "device", "update", "d1", "--type", "freezer", "--group", "a", "--group", "b", "--attr", "k=v=w",
		"--org", "Org2", "--identity", "auditor", "--state-dir", "/srv/net")
	require.NoError(t, run.err)
	require.Equal(t, "freezer", *fake.updated.Type)
	require.Equal(t, []string{"a", "b"}, *fake.updated.Groups)
	require.Equal(t, map[string]string{"k": "v=w"}, *fake.updated.Attributes)
	require.Nil(t, fake.updated.Firmware)
	require.Equal(t, ledgerFlags{stateDir: "/srv/net", org: "Org2", identity: "auditor"}, run.flags)
	require.Equal(t, filepath.Join("/srv/net", "org2", "connection.json"), run.flags.profilePath())

	run = runLedgerCLI(t, fake, "json", "", "device", "revoke", "d1", "--reason", "key leaked")
	require.NoError(t, run.err)
	require.Equal(t, api.StatusRevoked, fake.status)
	require.Equal(t, "key leaked", fake.reason)

	run = runLedgerCLI(t, fake, "json", "", "policy", "check", "--action", "telemetry:read", "--resource", "d1", "--device", "d2", "--context", `{"site":"lyon"}`)
	require.NoError(t, run.err)
	require.Equal(t, api.AccessRequest{Device: "d2", Action: "telemetry:read", Resource: "d1", Context: map[string]any{"site": "lyon"}}, *fake.access)

	run = runLedgerCLI(t, fake, "json", "", "command", "send", "--device", "d1", "--name", "reboot")
	require.NoError(t, run.err)
	require.Equal(t, api.CommandRequest{Device: "d1", Name: "reboot"}, *fake.command)
	require.True(t, fake.closed)
}

func TestListAllFollowsBookmarks(t *testing.T) {
	fake := &fakeLedger{t: t}
	run := runLedgerCLI(t, fake, "json", "", "device", "list", "--all", "--group", "cold-chain")
	require.NoError(t, run.err)
	require.Equal(t, []string{"", "page2"}, fake.bookmarks)
	var page api.DevicePage
	require.NoError(t, json.Unmarshal([]byte(run.stdout), &page))
	require.Len(t, page.Devices, 3)
	require.Empty(t, page.Bookmark)
	require.Equal(t, "cold-chain", fake.devQuery.Group)

	one := runLedgerCLI(t, &fakeLedger{t: t}, "table", "", "device", "list")
	require.NoError(t, one.err)
	require.Contains(t, one.stderr, "--bookmark page2")
}

func TestGeneratedKeyIsSavedOnlyWhenTheLedgerAcceptsTheDevice(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "d1.key.pem")

	refused := &fakeLedger{t: t, err: &client.TransactionError{Tx: "device:Enroll", Code: api.CodeAlreadyExists, Message: `device "d1" is already enrolled`}}
	run := runLedgerCLI(t, refused, "table", "", "device", "enroll", "--id", "d1", "--type", "t", "--generate-key", "--key-out", keyPath)
	require.ErrorContains(t, run.err, "ALREADY_EXISTS")
	require.NoFileExists(t, keyPath, "a refused enrollment leaves no key behind")

	ok := &fakeLedger{t: t}
	run = runLedgerCLI(t, ok, "json", "", "device", "enroll", "--id", "d1", "--type", "t", "--generate-key", "--alg", "ed25519", "--key-out", keyPath)
	require.NoError(t, run.err)
	keyPEM, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	signer, err := reading.ParsePrivateKey(keyPEM)
	require.NoError(t, err)
	require.Equal(t, signer.Public().PEM(), ok.enrolled.PublicKey, "the enrolled key is the saved key's public half")
	info, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	again := runLedgerCLI(t, &fakeLedger{t: t}, "json", "", "device", "enroll", "--id", "d1", "--type", "t", "--generate-key", "--key-out", keyPath)
	require.ErrorContains(t, again.err, "already exists")
	require.Zero(t, again.opened)
}

func TestLedgerErrorsSayWhatToDo(t *testing.T) {
	notFoundErr := &client.TransactionError{Tx: "device:Get", Stage: client.StageEvaluate, Code: api.CodeNotFound, Message: `device "ghost" not found`}
	run := runLedgerCLI(t, &fakeLedger{t: t, err: notFoundErr}, "table", "", "device", "get", "ghost")
	require.EqualError(t, run.err, "no device \"ghost\" on the ledger; list devices with `iotledger device list`")
	require.Equal(t, api.CodeNotFound, api.CodeOf(run.err))

	denied := &client.TransactionError{Tx: "device:Get", Stage: client.StageEvaluate, Code: api.CodeAccessDenied, Message: "Org2MSP may not device:read d1"}
	run = runLedgerCLI(t, &fakeLedger{t: t, err: denied}, "table", "", "device", "get", "d1", "--org", "Org2")
	require.ErrorContains(t, run.err, "ACCESS_DENIED: Org2MSP may not device:read d1")
	require.ErrorContains(t, run.err, "iotledger policy explain")

	var te *client.TransactionError
	require.True(t, errors.As(run.err, &te))

	revoked := &client.TransactionError{Tx: "device:Get", Stage: client.StageEvaluate,
		Message: "evaluate call to endorser returned error: error validating proposal: access denied: channel [iotledger] creator org [Org1MSP]"}
	run = runLedgerCLI(t, &fakeLedger{t: t, err: revoked}, "table", "", "device", "get", "d1", "--identity", "hub")
	require.ErrorContains(t, run.err, `the peers refuse identity "hub" of Org1 itself: its certificate is revoked`)
	require.True(t, client.IsIdentityRefused(run.err))
}

func TestMissingNetworkSaysHowToStartOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	_, err := connectLedger(t.Context(), ledgerFlags{stateDir: dir, org: "Org1", identity: "operator"}, slog.New(slog.DiscardHandler))
	require.EqualError(t, err, "no network at "+dir+": start one with `iotledger network up`")

	existing := t.TempDir()
	_, err = connectLedger(t.Context(), ledgerFlags{stateDir: existing, org: "Org7", identity: "operator"}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, `no connection profile for org "Org7"`)

	_, err = connectLedger(t.Context(), ledgerFlags{profile: filepath.Join(existing, "x.json"), identity: "operator"}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "check --profile")
}

func TestVerifyNeedsATrustAnchorAndNeverTheNetwork(t *testing.T) {
	// A proof that carries its own key and root proves nothing: verify
	// refuses to run without an anchor obtained independently, and reads
	// a receipt (test/receipts checks real ones, forged and tampered).
	proof := realProof(t)
	selfMade, err := json.Marshal(proof)
	require.NoError(t, err)
	path := writeTemp(t, "proof.json", string(selfMade))
	anchor := writeTemp(t, "anchor.json", `{"channel":"iotledger","genesis":"`+strings.Repeat("ab", 32)+`"}`)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no anchor", []string{"telemetry", "verify", path}, "trust anchor obtained independently"},
		{"receipt verify, no anchor", []string{"receipt", "verify", path}, "trust anchor obtained independently"},
		{"both anchors", []string{"receipt", "verify", path, "--anchor", anchor, "--channel", "c", "--genesis", "ab"}, "not both"},
		{"bad genesis", []string{"receipt", "verify", path, "--channel", "c", "--genesis", "xyz"}, "64 hex characters"},
		{"self-made proof", []string{"telemetry", "verify", path, "--anchor", anchor}, "does NOT verify: receipt refused at format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := runLedgerCLI(t, &fakeLedger{t: t}, "table", "", tc.args...)
			require.ErrorContains(t, run.err, tc.want)
			require.Zero(t, run.opened, "verify never touches the network")
		})
	}
}

func TestParseAttrs(t *testing.T) {
	cases := []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{nil, nil, ""},
		{[]string{"site=lyon"}, map[string]string{"site": "lyon"}, ""},
		{[]string{"a=", "b=x=y"}, map[string]string{"a": "", "b": "x=y"}, ""},
		{[]string{"=v"}, nil, "the key is empty"},
		{[]string{"k"}, nil, "use key=value"},
		{[]string{"a b=c"}, nil, "spaces"},
		{[]string{"a=1", "a=2"}, nil, "given twice"},
		{[]string{strings.Repeat("k", 65) + "=v"}, nil, "at most 64"},
		{[]string{"k=" + strings.Repeat("v", 257)}, nil, "at most 256"},
	}
	for _, tc := range cases {
		got, err := parseAttrs(tc.in)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, "%q", tc.in)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

func FuzzParseAttrs(f *testing.F) {
	for _, s := range []string{"site=lyon", "a=b=c", "=", "k", " =x", "é=ü", "a\x00=b"} {
		f.Add(s, "other=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := parseAttrs([]string{a, b})
		if err != nil {
			return
		}
		for k, v := range got {
			require.NotEmpty(t, k)
			require.LessOrEqual(t, len(k), maxAttrKey)
			require.LessOrEqual(t, len(v), maxAttrValue)
			require.NotContains(t, k, "=")
			require.False(t, strings.ContainsAny(k, " \t\n"))
		}
		require.Len(t, got, 2)
	})
}

func FuzzAccessContext(f *testing.F) {
	for _, s := range []string{`{"site":"lyon"}`, `[]`, `{"a":{"b":[1,2]}}`, `{} {}`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ctxJSON string) {
		a := accessFlags{req: api.AccessRequest{Action: "telemetry:read", Resource: "d1"}, context: ctxJSON}
		req, err := a.build()
		if err != nil {
			return
		}
		if ctxJSON != "" {
			require.True(t, json.Valid([]byte(ctxJSON)))
		}
		require.Equal(t, "d1", req.Resource)
	})
}

func TestClientNamesAreReadableInTables(t *testing.T) {
	id := base64.StdEncoding.EncodeToString([]byte("x509::CN=operator,OU=client,O=Hyperledger::CN=ca.org1.iotledger.local,O=org1.iotledger.local"))
	cases := map[string]string{
		id:              "operator@ca.org1.iotledger.local",
		"rule:too-warm": "rule:too-warm",
		"":              "-",
		base64.StdEncoding.EncodeToString([]byte("plain")): base64.StdEncoding.EncodeToString([]byte("plain")),
	}
	for in, want := range cases {
		require.Equal(t, want, clientName(in), in)
	}
}

func TestVerbsThatReadReadingsAskTheOrgsIndex(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, args := range [][]string{
		{"telemetry", "get", "fridge-01", "7"},
		{"telemetry", "list", "fridge-01", "--from-seq", "3"},
	} {
		run := runLedgerCLI(t, &fakeLedger{t: t}, "table", "", append(args, "--index", "sqlite:"+missing)...)
		require.ErrorContains(t, run.err, "no index at "+missing, "%v", args)
		require.ErrorContains(t, run.err, "iotledger index --org Org1")
		require.Zero(t, run.opened, "%v: nothing to ask the ledger", args)
		_, err := os.Stat(missing)
		require.ErrorIs(t, err, os.ErrNotExist, "a reader creates no empty index")
	}

	// An index with three readings of fridge-01 (one block, one batch).
	path := filepath.Join(t.TempDir(), "index.db")
	st, err := store.OpenSQLite(t.Context(), path)
	require.NoError(t, err)
	tx := index.Transaction{Block: 0, TxID: "9a8b7c6d", ValidationCode: "VALID", Function: "telemetry:SubmitBatch", Devices: []string{"fridge-01"},
		Batch: &index.Batch{TxID: "9a8b7c6d", Root: make([]byte, 32), Size: 3, MSPID: "Org1MSP"}}
	for i, seq := range []uint64{6, 7, 8} {
		ts, values := 1_767_225_600_000+int64(seq), `[{"n":"temperature","u":"Cel","v":5.5}]`
		tx.Readings = append(tx.Readings, index.Reading{Device: "fridge-01", Seq: seq, Timestamp: ts, Values: []byte(values),
			Payload:   fmt.Appendf(nil, `{"device":"fridge-01","seq":%d,"ts":%d,"values":%s}`, seq, ts, values),
			Signature: []byte("s"), BatchTx: "9a8b7c6d", Index: i})
	}
	require.NoError(t, st.Apply(t.Context(), &index.Block{Number: 0, Hash: make([]byte, 32), Transactions: []index.Transaction{tx}}))
	require.NoError(t, st.Close())

	run := runLedgerCLI(t, &fakeLedger{t: t}, "table", "", "telemetry", "get", "fridge-01", "7", "--index", "sqlite:"+path)
	require.NoError(t, run.err)
	require.Contains(t, run.stdout, "temperature=5.5Cel")
	require.Contains(t, run.stdout, "9a8b7c6d #1")
	run = runLedgerCLI(t, &fakeLedger{t: t}, "json", "", "telemetry", "list", "fridge-01", "--from-seq", "7", "--index", "sqlite:"+path)
	require.NoError(t, run.err)
	var page index.ReadingPage
	require.NoError(t, json.Unmarshal([]byte(run.stdout), &page))
	require.Len(t, page.Readings, 2)
	require.Equal(t, uint64(7), page.Readings[0].Seq)
	run = runLedgerCLI(t, &fakeLedger{t: t}, "table", "", "telemetry", "get", "fridge-01", "9", "--index", "sqlite:"+path)
	require.ErrorContains(t, run.err, "the index has no reading 9")
	require.Zero(t, run.opened)
}
