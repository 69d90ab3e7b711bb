// Command iotledger-chaincode serves the iotledger chaincode.
//
// As a chaincode-as-a-service server (the usual way here) it needs
// CHAINCODE_SERVER_ADDRESS (e.g. 127.0.0.1:9999) and CORE_CHAINCODE_ID_NAME
// (the package ID the peer knows it by). Optional CHAINCODE_TLS_KEY_FILE,
// CHAINCODE_TLS_CERT_FILE and CHAINCODE_TLS_CLIENT_CA_CERT_FILE enable TLS.
// Without the two variables it starts in peer-launched mode.
//
// IOTLEDGER_MAX_CLOCK_SKEW (default 5m) bounds how far a proposal's
// timestamp may be from this server's clock; proposals outside it are
// refused with CLOCK_SKEW (see docs/decisions.md, "Time").
//
// IOTLEDGER_PPROF_ADDR (e.g. 127.0.0.1:6061), when set, serves Go's pprof
// profiles there, so that `iotledger bench` and operators can see where the
// chaincode spends its CPU.
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/iotledger/iotledger/chaincode"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("chaincode stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.pprofAddr != "" {
		servePprof(log, cfg.pprofAddr)
	}
	cc, err := chaincode.NewChaincode(cfg.options...)
	if err != nil {
		return err
	}
	if cfg.address == "" || cfg.id == "" {
		log.Info("starting in peer-launched mode (CHAINCODE_SERVER_ADDRESS or CORE_CHAINCODE_ID_NAME not set)")
		return cc.Start()
	}
	tlsProps, err := tlsProperties(cfg)
	if err != nil {
		return err
	}
	server := &shim.ChaincodeServer{CCID: cfg.id, Address: cfg.address, CC: cc, TLSProps: tlsProps}
	log.Info("serving chaincode", "address", cfg.address, "id", cfg.id, "tls", !tlsProps.Disabled)
	return server.Start()
}

// serverConfig is everything the server reads from its environment; it
// reads nothing else (deploy/k8s's manifests are checked against it).
type serverConfig struct {
	pprofAddr       string // IOTLEDGER_PPROF_ADDR
	options         []chaincode.Option
	address, id     string // CHAINCODE_SERVER_ADDRESS, CORE_CHAINCODE_ID_NAME
	tlsKeyFile      string // CHAINCODE_TLS_KEY_FILE
	tlsCertFile     string // CHAINCODE_TLS_CERT_FILE
	tlsClientCAFile string // CHAINCODE_TLS_CLIENT_CA_CERT_FILE
}

func configFromEnv(getenv func(string) string) (serverConfig, error) {
	cfg := serverConfig{
		pprofAddr:       getenv("IOTLEDGER_PPROF_ADDR"),
		address:         getenv("CHAINCODE_SERVER_ADDRESS"),
		id:              getenv("CORE_CHAINCODE_ID_NAME"),
		tlsKeyFile:      getenv("CHAINCODE_TLS_KEY_FILE"),
		tlsCertFile:     getenv("CHAINCODE_TLS_CERT_FILE"),
		tlsClientCAFile: getenv("CHAINCODE_TLS_CLIENT_CA_CERT_FILE"),
	}
	var err error
	cfg.options, err = chaincode.OptionsFromEnv(getenv)
	return cfg, err
}

// tlsProperties reads the optional TLS files of the chaincode server.
func tlsProperties(cfg serverConfig) (shim.TLSProperties, error) {
	keyFile, certFile := cfg.tlsKeyFile, cfg.tlsCertFile
	if keyFile == "" && certFile == "" {
		return shim.TLSProperties{Disabled: true}, nil
	}
	key, err := os.ReadFile(keyFile) //nolint:gosec // G703: the operator names the file
	if err != nil {
		return shim.TLSProperties{}, fmt.Errorf("chaincode TLS key (CHAINCODE_TLS_KEY_FILE): %w", err)
	}
	cert, err := os.ReadFile(certFile) //nolint:gosec // G703: the operator names the file
	if err != nil {
		return shim.TLSProperties{}, fmt.Errorf("chaincode TLS certificate (CHAINCODE_TLS_CERT_FILE): %w", err)
	}
	props := shim.TLSProperties{Key: key, Cert: cert}
	if caFile := cfg.tlsClientCAFile; caFile != "" {
		if props.ClientCACerts, err = os.ReadFile(caFile); err != nil { //nolint:gosec // G703: the operator names the file
			return shim.TLSProperties{}, fmt.Errorf("chaincode client CA (CHAINCODE_TLS_CLIENT_CA_CERT_FILE): %w", err)
		}
	}
	return props, nil
}

// servePprof serves the pprof endpoints on addr in the background.
func servePprof(log *slog.Logger, addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		log.Info("serving pprof", "address", addr)
		if err := srv.ListenAndServe(); err != nil {
			log.Warn("pprof server stopped", "address", addr, "err", err)
		}
	}()
}
