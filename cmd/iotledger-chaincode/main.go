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
	if addr := os.Getenv("IOTLEDGER_PPROF_ADDR"); addr != "" {
		servePprof(log, addr)
	}
	opts, err := chaincode.OptionsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cc, err := chaincode.NewChaincode(opts...)
	if err != nil {
		return err
	}
	addr, id := os.Getenv("CHAINCODE_SERVER_ADDRESS"), os.Getenv("CORE_CHAINCODE_ID_NAME")
	if addr == "" || id == "" {
		log.Info("starting in peer-launched mode (CHAINCODE_SERVER_ADDRESS or CORE_CHAINCODE_ID_NAME not set)")
		return cc.Start()
	}
	tlsProps, err := tlsProperties()
	if err != nil {
		return err
	}
	server := &shim.ChaincodeServer{CCID: id, Address: addr, CC: cc, TLSProps: tlsProps}
	log.Info("serving chaincode", "address", addr, "id", id, "tls", !tlsProps.Disabled)
	return server.Start()
}

// tlsProperties reads the optional TLS files of the chaincode server.
func tlsProperties() (shim.TLSProperties, error) {
	keyFile, certFile := os.Getenv("CHAINCODE_TLS_KEY_FILE"), os.Getenv("CHAINCODE_TLS_CERT_FILE")
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
	if caFile := os.Getenv("CHAINCODE_TLS_CLIENT_CA_CERT_FILE"); caFile != "" {
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
