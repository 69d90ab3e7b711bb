// Package console serves one org's web console: a JSON API (documented in
// docs/console-api.yaml) and the pages of a web UI over it, embedded in the
// binary. People sign in with their Fabric CA identity: the TLS handshake
// requires a client certificate issued by the org's CA, and the console
// acts as the identity of the org's connection profile that holds that very
// certificate, so every write is a ledger transaction submitted as the
// person who asked for it. Nothing is served without a certificate, not even
// the static assets.
package console

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/receipt"
)

// Ledger is what the console asks of the ledger, as one identity.
// *client.Client implements it.
type Ledger interface {
	Device(ctx context.Context, id string) (*api.Device, error)
	ListDevices(ctx context.Context, q api.DeviceQuery) (*api.DevicePage, error)
	DeviceHistory(ctx context.Context, id string) ([]api.DeviceHistoryEntry, error)
	SetDeviceStatus(ctx context.Context, id string, to api.DeviceStatus, reason string) (*api.Device, error)
	RotateDeviceKey(ctx context.Context, id, publicKeyPEM string) (*api.Device, error)

	SendCommand(ctx context.Context, req api.CommandRequest) ([]api.Command, error)
	Command(ctx context.Context, id string) (*api.Command, error)
	ListCommands(ctx context.Context, q api.CommandQuery) (*api.CommandPage, error)

	ListPolicies(ctx context.Context, q api.PolicyQuery) (*api.PolicyPage, error)
	PutPolicy(ctx context.Context, p api.Policy) (*api.Policy, error)
	Explain(ctx context.Context, req api.AccessRequest) (*api.Explanation, error)
	ListRules(ctx context.Context, q api.RuleQuery) (*api.RulePage, error)
	PutRule(ctx context.Context, r api.Rule) (*api.Rule, error)

	ReadingReceipt(ctx context.Context, p *reading.Proof) (*receipt.Receipt, error)
	Events(ctx context.Context, opts client.EventOptions) (<-chan client.ChaincodeEvent, error)
}

var _ Ledger = (*client.Client)(nil)

// Opener connects to the ledger as the named identity of the profile. The
// console calls it once per identity, on that identity's first request; a
// Ledger that is an io.Closer is closed with the server.
type Opener func(ctx context.Context, identity string) (Ledger, error)

// HealthSource reports the network's health (what `iotledger network status`
// shows); *network.Network's Status is one, through a small adapter.
type HealthSource interface {
	Health(ctx context.Context) (any, error)
}

// Limits bound what one request or one person can hold.
type Limits struct {
	MaxBodyBytes       int64 // request body (default 1 MiB)
	StreamsPerIdentity int   // concurrent live streams of one identity (default 8: a device page holds two)
	Streams            int   // concurrent live streams in all (default 64)
	FleetDevices       int   // devices the fleet overview counts at most (default 10,000)
	SummaryReadings    int   // readings one chart summary reads at most (default 1,000,000)
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	if l.StreamsPerIdentity <= 0 {
		l.StreamsPerIdentity = 8
	}
	if l.Streams <= 0 {
		l.Streams = 64
	}
	if l.FleetDevices <= 0 {
		l.FleetDevices = 10_000
	}
	if l.SummaryReadings <= 0 {
		l.SummaryReadings = 1_000_000
	}
	return l
}

// Config is a console of one org.
type Config struct {
	// Profile is the org's connection profile: its MSP and the identities
	// people sign in as (their certificates and keys).
	Profile *client.Profile
	// Open connects as an identity of Profile.
	Open Opener
	// ClientCAs verify the client certificates (the org's CA).
	ClientCAs *x509.CertPool
	// Certificate is the console's TLS server certificate.
	Certificate tls.Certificate
	// Index is the org's index (readings, alerts, audit trail, receipts);
	// without one those endpoints answer 503.
	Index index.Store
	// Health is optional; without it /api/v1/health answers 503.
	Health HealthSource
	// Hubs are the org's hubs the fleet overview asks (optional).
	Hubs HubSource
	// PollInterval is how often a live reading stream looks for new
	// readings in the index (default 1 s).
	PollInterval time.Duration
	// KeepaliveInterval is how often an idle live stream sends a comment
	// (default 15 s), so proxies keep it open.
	KeepaliveInterval time.Duration
	Limits            Limits
	Logger            *slog.Logger
	// Now is the console's clock (default time.Now): the throughput window
	// ends at it.
	Now func() time.Time
}

// Server is a console.
type Server struct {
	cfg     Config
	log     *slog.Logger
	dir     *identity.Directory
	limits  Limits
	routes  []route
	handler http.Handler
	streams *streamLimiter
	csrf    *http.CrossOriginProtection

	mu      sync.Mutex
	ledgers map[string]Ledger
}

// New checks the configuration and builds the server (no I/O beyond
// reading the profile's certificates).
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Profile == nil:
		return nil, errors.New("console: no connection profile")
	case cfg.Open == nil:
		return nil, errors.New("console: no ledger opener")
	case cfg.ClientCAs == nil:
		return nil, errors.New("console: no CA to verify client certificates with: without one nobody could sign in")
	}
	dir, err := identity.NewDirectory(cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, dir: dir, limits: cfg.Limits.withDefaults(), ledgers: map[string]Ledger{}}
	s.streams = newStreamLimiter(s.limits.Streams, s.limits.StreamsPerIdentity)
	s.csrf = http.NewCrossOriginProtection()
	pages, err := newPages()
	if err != nil {
		return nil, err
	}
	s.routes = append(s.apiRoutes(), pages.routes(s)...)
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.path, s.authorize(rt))
	}
	mux.Handle("/api/", s.authenticated(func(w http.ResponseWriter, r *http.Request, _ identity.Caller) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such API endpoint: " + r.Method + " " + r.URL.Path + " (see docs/console-api.yaml)"})
	}))
	mux.Handle("/", s.authenticated(func(w http.ResponseWriter, r *http.Request, _ identity.Caller) {
		http.NotFound(w, r)
	}))
	s.handler = mux
	return s, nil
}

// Handler serves the console. It refuses every request that did not come
// over TLS with a verified client certificate.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig requires and verifies a client certificate of the org's CA in
// the handshake itself: a browser without one is turned away before any
// HTTP is spoken.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.cfg.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.cfg.ClientCAs,
		MinVersion:   tls.VersionTLS12,
	}
}

// Serve serves the console over TLS on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err := hs.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// Close closes the ledger connections the console opened.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, l := range s.ledgers {
		if c, ok := l.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
		delete(s.ledgers, name)
	}
	return errors.Join(errs...)
}

// Route is a method and path pattern the server serves.
type Route struct {
	Method string
	Path   string
}

// Routes lists what the server serves (API and pages), in registration order.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, r := range s.routes {
		out[i] = Route{Method: r.method, Path: r.path}
	}
	return out
}

// ledger is the caller's ledger client, opened on first use.
func (s *Server) ledger(ctx context.Context, c identity.Caller) (Ledger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.ledgers[c.Name]; ok {
		return l, nil
	}
	l, err := s.cfg.Open(ctx, c.Name)
	if err != nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: fmt.Sprintf("cannot connect to the ledger as %q: %v", c.Name, err)}
	}
	s.ledgers[c.Name] = l
	return l, nil
}
