package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/receipt"
	"github.com/iotledger/iotledger/test/testnet"
)

// gate is a plain-HTTP proxy in front of the signed-in proxy that counts
// the requests it forwards and can be closed: everything the page loads
// passes it, so the page's requests are counted, and once it is closed
// the console is gone as far as the browser can tell.
type gate struct {
	url      string
	requests atomic.Int64
	srv      *http.Server
}

func openGate(t *testing.T, upstream string) *gate {
	t.Helper()
	target, err := url.Parse(upstream)
	require.NoError(t, err)
	g := &gate{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	g.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.srv.Serve(ln) }()
	t.Cleanup(func() { _ = g.srv.Close() })
	g.url = "http://" + ln.Addr().String()
	return g
}

// verdict is what the receipts page shows after verifying.
type verdict struct {
	Verdict, Step, Text string
}

// verifyInPage picks the two files, submits the form from the keyboard
// (focus on Verify, Enter) and waits for the page's verdict.
func verifyInPage(t *testing.T, ctx context.Context, receiptPath, anchorPath string) verdict {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS(`#verify input[name=receipt]`), []string{receiptPath}),
		chromedp.SetUploadFiles(chromedp.CSS(`#verify input[name=anchor]`), []string{anchorPath}),
		chromedp.Focus(chromedp.CSS(`#verify button[type=submit]`)),
	))
	start := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("\r")))
	v, err := chromedp.Run(ctx, chromedp.Poll[verdict](`(() => {
		const r = document.getElementById('verify-result');
		const v = r.dataset.verdict;
		if (!v || v === 'working') return null;
		return { Verdict: v, Step: r.dataset.step || '', Text: r.innerText };
	})()`, chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
	require.NoError(t, err, "the page gave no verdict")
	t.Logf("%s against %s: %s in %v (from Enter to the verdict shown)", filepath.Base(receiptPath), filepath.Base(anchorPath), v.Verdict, time.Since(start).Round(time.Millisecond))
	return v
}

// goVerdict is the Go verifier's step for a receipt ("" when it verifies).
func goVerdict(t *testing.T, doc []byte, a receipt.Anchor) string {
	t.Helper()
	_, err := receipt.Verify(doc, a)
	if err == nil {
		return ""
	}
	var re *receipt.Error
	require.True(t, errors.As(err, &re), "%v", err)
	return string(re.Step)
}

func TestTheReceiptsPageVerifiesAReceiptInTheBrowserWithoutTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	op, hub := connect(t, "Org1", "operator"), connect(t, "Org1", "hub")
	device := testnet.UniqueID(t, "console-receipt")
	signer := enroll(t, op, api.EnrollRequest{ID: device, Type: "reefer-sensor"})
	var envs []reading.Envelope
	for seq := uint64(1); seq <= 3; seq++ {
		v := 4 + float64(seq)/10
		env, err := signer.SignReading(reading.Payload{Device: device, Seq: seq, Timestamp: time.Now().UnixMilli(),
			Values: []reading.Value{{Name: "temperature", Unit: "Cel", Number: &v}}})
		require.NoError(t, err)
		envs = append(envs, env)
	}
	_, err := hub.SubmitBatch(t.Context(), api.BatchRequest{Readings: envs})
	require.NoError(t, err)

	org1 := startConsole(t, "Org1")
	org1.index.Sync(t)
	signedIn := org1.signIn(t, "operator")

	// The receipt of reading 2, as the receipts page's Download gives it.
	res, err := http.Get(signedIn + "/api/v1/devices/" + device + "/readings/2/receipt")
	require.NoError(t, err)
	genuine, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", genuine)

	anchor, err := receipt.AnchorOfFile(fabric.GenesisBlockPath())
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	anchorJSON, err := json.Marshal(anchor)
	require.NoError(t, err)
	anchorPath := write("anchor.json", anchorJSON)
	// Another channel's anchor, as far as this receipt is concerned: one
	// hex digit of the genesis hash differs.
	wrong := anchor
	wrong.Genesis = flipHex(anchor.Genesis)
	wrongJSON, err := json.Marshal(wrong)
	require.NoError(t, err)
	wrongPath := write("wrong-anchor.json", wrongJSON)

	// One byte of the reading changed: a digit of the temperature the
	// device signed.
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(genuine, &doc))
	var rd map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc["reading"], &rd))
	var payloadB64 string
	require.NoError(t, json.Unmarshal(rd["payload"], &payloadB64))
	payload, err := base64.StdEncoding.DecodeString(payloadB64)
	require.NoError(t, err)
	at := strings.Index(string(payload), `"v":4.2`)
	require.GreaterOrEqual(t, at, 0, "reading 2 holds 4.2: %s", payload)
	payload[at+len(`"v":4.`)] = '9'
	rd["payload"], err = json.Marshal(base64.StdEncoding.EncodeToString(payload))
	require.NoError(t, err)
	doc["reading"], err = json.Marshal(rd)
	require.NoError(t, err)
	tampered, err := json.Marshal(doc)
	require.NoError(t, err)

	genuinePath := write("receipt.json", genuine)
	tamperedPath := write("tampered.json", tampered)

	// The Go verifier's verdicts, which the page must repeat.
	require.Equal(t, "", goVerdict(t, genuine, anchor))
	require.Equal(t, "subject", goVerdict(t, tampered, anchor))
	require.Equal(t, "anchor", goVerdict(t, genuine, wrong))

	g := openGate(t, signedIn)
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(g.url+"/receipts"),
		chromedp.WaitVisible(chromedp.CSS(`#verify[data-ready="true"]`)),
	))
	// Every label names its input.
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#verify input')].map((i) => i.labels.length ? i.labels[0].textContent.trim() : '')`))
	require.NoError(t, err)
	require.Len(t, labels, 2)
	for _, l := range labels {
		require.NotEmpty(t, l)
	}

	// The page may fetch from the console; the verifier's worker may not
	// (its own Content-Security-Policy), whatever code it runs.
	fetchFrom := func(ctx context.Context) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/static/css/console.css').then((r) => 'fetched ' + r.status, (e) => 'blocked: ' + e.message)`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		return v
	}
	require.Equal(t, "fetched 200", fetchFrom(ctx))
	worker := workerOf(t, ctx, "/static/js/receipt-worker.js")
	require.True(t, strings.HasPrefix(fetchFrom(worker), "blocked"), "the verifier's worker fetched")
	// protobufjs decodes 64-bit fields with long, as in node, not into
	// float64 numbers.
	longOK, err := chromedp.Run(worker, chromedp.Evaluate[bool](`protobuf.util.Long === self.Long && protobuf.util.Long.fromString('18446744073709551615', true).toString() === '18446744073709551615'`))
	require.NoError(t, err)
	require.True(t, longOK, "protobufjs in the worker runs without long")

	// A genuine receipt verifies, and verifying asks no server anything.
	loaded := g.requests.Load()
	v := verifyInPage(t, ctx, genuinePath, anchorPath)
	require.Equal(t, "valid", v.Verdict, v.Text)
	require.Contains(t, v.Text, "Valid: every check passed")
	require.Contains(t, v.Text, device)
	require.Equal(t, loaded, g.requests.Load(), "verifying made requests")
	screenshot(t, ctx, "valid")

	// With the console gone, the page still verifies: the genuine receipt
	// against the genesis block file itself, and the refusals.
	require.NoError(t, g.srv.Close())
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(g.url, "http://"), 5*time.Second)
	require.Error(t, err, "the gate is closed")

	v = verifyInPage(t, ctx, genuinePath, fabric.GenesisBlockPath())
	require.Equal(t, "valid", v.Verdict, v.Text)
	require.Contains(t, v.Text, anchor.Genesis, "the anchor computed from the genesis block is the network's")

	v = verifyInPage(t, ctx, tamperedPath, anchorPath)
	require.Equal(t, "invalid", v.Verdict, v.Text)
	require.Equal(t, "subject", v.Step)
	require.Contains(t, v.Text, "Invalid: the subject check failed")
	require.Contains(t, v.Text, "does not lead with reading.path to the batch root", "the page says why")
	require.Contains(t, v.Text, "Blocks: passed", "the checks before it passed")
	screenshot(t, ctx, "tampered")

	v = verifyInPage(t, ctx, genuinePath, wrongPath)
	require.Equal(t, "invalid", v.Verdict, v.Text)
	require.Equal(t, "anchor", v.Step)
	require.Contains(t, v.Text, "Invalid: the trust anchor check failed")
	require.Contains(t, v.Text, "is not the anchor's "+wrong.Genesis)
	require.Contains(t, v.Text, "Subject: not checked")

	// A file that is no anchor is said to be one, and verifies nothing.
	v = verifyInPage(t, ctx, genuinePath, genuinePath)
	require.Equal(t, "error", v.Verdict, v.Text)
	require.Contains(t, v.Text, "The trust anchor is neither an anchor file nor a genesis block")
	require.Contains(t, v.Text, `unknown key "format" in the anchor`)
}

// workerOf attaches to the page's dedicated worker whose script is path.
func workerOf(t *testing.T, ctx context.Context, path string) context.Context {
	t.Helper()
	targets, err := chromedp.Targets(ctx)
	require.NoError(t, err)
	for _, ti := range targets {
		if ti.Type == "worker" && strings.HasSuffix(ti.URL, path) {
			wctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(ti.TargetID))
			t.Cleanup(cancel)
			return wctx
		}
	}
	t.Fatalf("the page runs no worker %s", path)
	return nil
}

// flipHex changes the first hex digit of s.
func flipHex(s string) string {
	b := []byte(s)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}
