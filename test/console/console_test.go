// Package console_test drives the web console in a real headless Chromium
// against a real Fabric network: the console runs in the test process over
// the network's Org1 profile and index, and the browser reaches it through
// a TLS-terminating proxy of the test that presents the signed-in
// identity's client certificate upstream (the console's mutual TLS itself
// is covered by the unit tests in console/; importing a client certificate
// into a headless browser's NSS store and auto-selecting it is more fragile
// than the proxy and tests nothing more of the console).
package console_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/console"
	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

var fabric *network.Network

func TestMain(m *testing.M) { os.Exit(testnet.Run(m, &fabric)) }

func connect(t *testing.T, org, name string) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(context.Background(), p, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type networkHealth struct{ n *network.Network }

func (h networkHealth) Health(ctx context.Context) (any, error) { return h.n.Status(ctx) }

// orgConsole is an org's console serving in the test, with its index.
type orgConsole struct {
	url     string // https://127.0.0.1:PORT
	profile *client.Profile
	index   *testnet.Index // nil for a console over another store
}

// startConsole serves org's console as `iotledger console` would: over its
// profile, its index (following the network) and the network's status.
func startConsole(t *testing.T, org string, tweak ...func(*console.Config)) *orgConsole {
	t.Helper()
	ix := testnet.StartIndex(t, fabric, org)
	c := startConsoleWith(t, org, ix, tweak...)
	c.index = ix
	return c
}

// startConsoleWith serves org's console over the index st.
func startConsoleWith(t *testing.T, org string, st index.Store, tweak ...func(*console.Config)) *orgConsole {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	require.NotNil(t, p.HubTLS, "the profile of %s has no hubTLS (server certificate and CA)", org)
	pool, err := identity.CertPool(p.HubTLS.CACert)
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(p.HubTLS.Cert, p.HubTLS.Key)
	require.NoError(t, err)
	conn, err := client.NewConnection(p)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	cfg := console.Config{
		Profile: p, ClientCAs: pool, Certificate: cert, Index: st, Health: networkHealth{fabric},
		Open: func(ctx context.Context, name string) (console.Ledger, error) { return client.Dial(ctx, conn, p, name) },
	}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := console.New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_ = srv.Close()
	})
	return &orgConsole{url: "https://" + ln.Addr().String(), profile: p}
}

// signIn is a plain-HTTP proxy on loopback that forwards to the console
// over TLS with identity's client certificate: the browser is then signed
// in as that identity.
func (c *orgConsole) signIn(t *testing.T, name string) string {
	t.Helper()
	return c.signInVia(t, name, nil)
}

// signInVia is signIn with the browser's requests passing through wrap
// before they reach the console (nil: straight through).
func (c *orgConsole) signInVia(t *testing.T, name string, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	files, err := c.profile.Identity(name)
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	require.NoError(t, err)
	roots, err := identity.CertPool(c.profile.HubTLS.CACert)
	require.NoError(t, err)
	target, err := url.Parse(c.url)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1 // server-sent events go through at once
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var h http.Handler = proxy
	if wrap != nil {
		h = wrap(proxy)
	}
	h = traceRequests(t, name, h)
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String()
}

// browser is a headless Chromium tab; when the test fails, a screenshot
// of the page goes into the test's artifact directory (kept with
// `go test -artifacts`) or IOTLEDGER_TEST_ARTIFACTS.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	require.NoError(t, chromedp.Do(bctx), "starting Chromium")
	ctx, cancelTimeout := context.WithTimeout(bctx, 5*time.Minute)
	// The page's console (script errors, failed requests) is shown when
	// the test fails.
	var mu sync.Mutex
	var messages []string
	consoleCtx, stopConsole := context.WithCancel(bctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range chromedp.Console(consoleCtx) {
			if err != nil {
				return
			}
			mu.Lock()
			messages = append(messages, m.String())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stopConsole()
		<-consoleDone
		if t.Failed() {
			// The tab's own context: the test's deadline may be what failed it.
			screenshot(t, bctx, "failure")
			for _, m := range messages {
				t.Logf("browser console: %s", m)
			}
		}
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	return ctx
}

// traceRequests keeps the browser's requests through a sign-in proxy; when
// the test fails it logs those still open and the last ones answered, with
// how long each took: a page that waits for ever shows what it waits for.
func traceRequests(t *testing.T, name string, next http.Handler) http.Handler {
	type request struct {
		what    string
		started time.Time
		took    time.Duration
		status  int
	}
	var mu sync.Mutex
	open := map[*request]bool{}
	var done []*request
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for r := range open {
			t.Logf("%s's browser: still open after %v: %s", name, time.Since(r.started).Round(time.Millisecond), r.what)
		}
		for _, r := range done[max(0, len(done)-30):] {
			t.Logf("%s's browser: %s at %s: %d after %v", name, r.what, r.started.Format("15:04:05.000"), r.status, r.took.Round(time.Millisecond))
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{what: r.Method + " " + r.URL.RequestURI(), started: time.Now()}
		mu.Lock()
		open[req] = true
		mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			delete(open, req)
			req.took, req.status = time.Since(req.started), sw.status
			done = append(done, req)
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter keeps the status a handler wrote; Flush passes through so
// server-sent events still stream.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// slowPath holds back the answers to GET requests of path by delay: a
// slow ledger or index, as a loaded machine has them.
func slowPath(path string, delay time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == path {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(delay):
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// step runs actions with a bound of its own, so a step that waits for
// something that never comes fails under its name within a minute and a
// half instead of spending the whole test's budget.
func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(sctx, actions...), name)
}

// clickStill clicks the first node of selector once its box has stayed
// where it is for stillFor. A mouse click goes to a point: pages draw what
// their requests return, and a click aimed before a redraw lands on
// whatever has moved under that point instead.
func clickStill(selector string) chromedp.Action[chromedp.Void] {
	const stillFor = 300 * time.Millisecond
	box := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return ''; const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].join(' '); })()`, selector)
	return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		last, since := "", time.Now()
		for {
			now, err := chromedp.Evaluate[string](box)(ctx, tab)
			if err != nil {
				return err
			}
			switch {
			case now == "" || now != last:
				last, since = now, time.Now()
			case time.Since(since) >= stillFor:
				_, err := chromedp.Click(chromedp.CSS(selector))(ctx, tab)
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never stayed still for %v (last box %q): %w", selector, stillFor, last, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func screenshot(t *testing.T, ctx context.Context, name string) string {
	dir := os.Getenv("IOTLEDGER_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.ArtifactDir()
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("no screenshot: %v", err)
		return ""
	}
	path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Logf("no screenshot: %v", err)
		return ""
	}
	t.Logf("screenshot: %s", path)
	return path
}

// enroll enrolls a device as op, active, with a new key (returned: the
// device signs readings with it), and waits until both peers know it.
func enroll(t *testing.T, op *client.Client, req api.EnrollRequest) *reading.Signer {
	t.Helper()
	key, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	req.PublicKey, req.Activate = key.Public().PEM(), true
	_, err = op.EnrollDevice(t.Context(), req)
	require.NoError(t, err)
	testnet.Settle(t.Context(), t, fabric)
	return key
}

// enrollConsoleDevice enrolls an active device of Org1 for a page test,
// with the key it signs readings with.
func enrollConsoleDevice(t *testing.T, prefix string) (string, *reading.Signer) {
	t.Helper()
	id := testnet.UniqueID(t, prefix)
	return id, enroll(t, connect(t, "Org1", "operator"), api.EnrollRequest{ID: id, Type: "thermometer", Groups: []string{"cold-chain"}})
}
