// Command iotledger-refchaincode is the raw-Fabric reference chaincode: Put
// and Get of one key with nothing else (no access checks, no events, no
// contract API). Benchmarks deploy it beside iotledger to measure the
// ceiling the real chaincode is compared with; network tests use it because
// it never changes.
//
// It runs as a chaincode-as-a-service server: CHAINCODE_SERVER_ADDRESS
// (e.g. 127.0.0.1:9999) and CORE_CHAINCODE_ID_NAME (the package ID) are
// required.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
)

// maxKeyLen bounds keys so that a client error is caught here rather than
// deep in the ledger.
const maxKeyLen = 256

// store is the reference chaincode.
type store struct{}

// Init does nothing: the chaincode has no initial state.
func (store) Init(shim.ChaincodeStubInterface) *peer.Response { return shim.Success(nil) }

// Invoke dispatches Put(key, value) and Get(key).
func (store) Invoke(stub shim.ChaincodeStubInterface) *peer.Response {
	fn, args := stub.GetFunctionAndParameters()
	switch fn {
	case "Put":
		if len(args) != 2 {
			return shim.Error(fmt.Sprintf("INVALID_ARGUMENT: Put takes key and value, got %d arguments", len(args)))
		}
		if err := checkKey(args[0]); err != nil {
			return shim.Error(err.Error())
		}
		if err := stub.PutState(args[0], []byte(args[1])); err != nil {
			return shim.Error("INTERNAL: put " + args[0] + ": " + err.Error())
		}
		return shim.Success(nil)
	case "Get":
		if len(args) != 1 {
			return shim.Error(fmt.Sprintf("INVALID_ARGUMENT: Get takes a key, got %d arguments", len(args)))
		}
		if err := checkKey(args[0]); err != nil {
			return shim.Error(err.Error())
		}
		v, err := stub.GetState(args[0])
		if err != nil {
			return shim.Error("INTERNAL: get " + args[0] + ": " + err.Error())
		}
		if v == nil {
			return shim.Error("NOT_FOUND: no value for key " + args[0])
		}
		return shim.Success(v)
	default:
		return shim.Error(fmt.Sprintf("INVALID_ARGUMENT: unknown function %q (have Put, Get)", fn))
	}
}

func checkKey(k string) error {
	if k == "" || len(k) > maxKeyLen {
		return fmt.Errorf("INVALID_ARGUMENT: key must be 1-%d bytes", maxKeyLen)
	}
	if k[0] == 0x00 {
		return fmt.Errorf("INVALID_ARGUMENT: key must not start with a NUL byte (composite key namespace)")
	}
	return nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	addr, id := os.Getenv("CHAINCODE_SERVER_ADDRESS"), os.Getenv("CORE_CHAINCODE_ID_NAME")
	if addr == "" || id == "" {
		log.Error("CHAINCODE_SERVER_ADDRESS and CORE_CHAINCODE_ID_NAME are required")
		os.Exit(2)
	}
	server := &shim.ChaincodeServer{CCID: id, Address: addr, CC: store{}, TLSProps: shim.TLSProperties{Disabled: true}}
	log.Info("serving reference chaincode", "address", addr, "id", id)
	if err := server.Start(); err != nil {
		log.Error("chaincode server stopped", "err", err)
		os.Exit(1)
	}
}
