// Command iotledger-chaincode serves the iotledger chaincode.
//
// As a chaincode-as-a-service server (the usual way here) it needs
// CHAINCODE_SERVER_ADDRESS (e.g. 127.0.0.1:9999) and CORE_CHAINCODE_ID_NAME
// (the package ID the peer knows it by). Optional CHAINCODE_TLS_KEY_FILE,
// CHAINCODE_TLS_CERT_FILE and CHAINCODE_TLS_CLIENT_CA_CERT_FILE enable TLS.
// Without the two variables it starts in peer-launched mode.
package main

import (
	"fmt"
	"log/slog"
	"os"

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
	cc, err := chaincode.NewChaincode()
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
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return shim.TLSProperties{}, fmt.Errorf("chaincode TLS key (CHAINCODE_TLS_KEY_FILE): %w", err)
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return shim.TLSProperties{}, fmt.Errorf("chaincode TLS certificate (CHAINCODE_TLS_CERT_FILE): %w", err)
	}
	props := shim.TLSProperties{Key: key, Cert: cert}
	if caFile := os.Getenv("CHAINCODE_TLS_CLIENT_CA_CERT_FILE"); caFile != "" {
		if props.ClientCACerts, err = os.ReadFile(caFile); err != nil {
			return shim.TLSProperties{}, fmt.Errorf("chaincode client CA (CHAINCODE_TLS_CLIENT_CA_CERT_FILE): %w", err)
		}
	}
	return props, nil
}
