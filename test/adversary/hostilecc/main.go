// Command hostilecc is the chaincode server a dishonest consortium member
// runs behind its own peer, for the attack tests of test/adversary. It is
// the real iotledger contracts, modified the way an attacker would:
//
//   - it appends one JSON line per invocation to the file named by
//     HOSTILE_LOG: function, arguments and transient data (base64) — a log
//     of everything the member's peer is sent;
//   - it refuses every invocation while the file named by HOSTILE_REFUSE
//     exists (a member withholding its endorsement);
//   - it endorses any proposal timestamp (no clock check);
//   - it serves raw functions that bypass every check of the contracts:
//     hostile:Put(key, value), hostile:PutComposite(objectType, attrsJSON,
//     value), hostile:Delete(key), hostile:Get(key),
//     hostile:SetEndorsers(key, "Org1MSP,Org2MSP") and
//     hostile:GetEndorsers(key). Keys are raw world-state keys (composite
//     keys with their \x00 separators, as shim.CreateCompositeKey makes them).
//
// Like cmd/iotledger-chaincode it serves as a chaincode-as-a-service server
// at CHAINCODE_SERVER_ADDRESS under the package ID CORE_CHAINCODE_ID_NAME.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/statebased"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode"
)

// Environment of the server.
const (
	EnvLog    = "HOSTILE_LOG"
	EnvRefuse = "HOSTILE_REFUSE"
)

// anyTime is the clock bound the attacker's contracts use: wide enough to
// endorse every timestamp a test forges.
const anyTime = 200 * 365 * 24 * time.Hour

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("hostile chaincode stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	contracts, err := chaincode.NewChaincode(chaincode.WithMaxClockSkew(anyTime))
	if err != nil {
		return err
	}
	addr, id := os.Getenv("CHAINCODE_SERVER_ADDRESS"), os.Getenv("CORE_CHAINCODE_ID_NAME")
	if addr == "" || id == "" {
		return errors.New("CHAINCODE_SERVER_ADDRESS and CORE_CHAINCODE_ID_NAME are required")
	}
	h := &hostile{contracts: contracts, logPath: os.Getenv(EnvLog), refusePath: os.Getenv(EnvRefuse), log: log}
	server := &shim.ChaincodeServer{CCID: id, Address: addr, CC: h, TLSProps: shim.TLSProperties{Disabled: true}}
	log.Info("serving hostile chaincode", "address", addr, "id", id, "log", h.logPath, "refuse", h.refusePath)
	return server.Start()
}

// hostile wraps the real contracts.
type hostile struct {
	contracts  shim.Chaincode
	logPath    string
	refusePath string
	log        *slog.Logger
	mu         sync.Mutex // one log line at a time
}

// Entry is one line of the log.
type Entry struct {
	Time      time.Time         `json:"time"`
	TxID      string            `json:"txId"`
	Channel   string            `json:"channel"`
	Creator   string            `json:"creatorMspId,omitempty"`
	Function  string            `json:"function"`
	Args      [][]byte          `json:"args"`      // after the function, base64
	Transient map[string][]byte `json:"transient"` // values base64
	Refused   bool              `json:"refused,omitempty"`
}

func (h *hostile) Init(stub shim.ChaincodeStubInterface) *peer.Response {
	return h.contracts.Init(stub)
}

func (h *hostile) Invoke(stub shim.ChaincodeStubInterface) *peer.Response {
	args := stub.GetArgs()
	fn := ""
	if len(args) > 0 {
		fn = string(args[0])
		args = args[1:]
	}
	refuse := h.refusing()
	h.record(stub, fn, args, refuse)
	if refuse {
		return shim.Error("hostile: " + mspOf(stub) + " withholds its endorsement (" + EnvRefuse + " exists)")
	}
	if raw, ok := strings.CutPrefix(fn, "hostile:"); ok {
		return rawCall(stub, raw, args)
	}
	return h.contracts.Invoke(stub)
}

func (h *hostile) refusing() bool {
	if h.refusePath == "" {
		return false
	}
	_, err := os.Stat(h.refusePath)
	return err == nil
}

func (h *hostile) record(stub shim.ChaincodeStubInterface, fn string, args [][]byte, refused bool) {
	if h.logPath == "" {
		return
	}
	transient, err := stub.GetTransient()
	if err != nil {
		h.log.Warn("reading the transient map", "err", err)
	}
	line, err := json.Marshal(Entry{
		Time: time.Now().UTC(), TxID: stub.GetTxID(), Channel: stub.GetChannelID(), Creator: mspOf(stub),
		Function: fn, Args: args, Transient: transient, Refused: refused,
	})
	if err != nil {
		h.log.Warn("encoding a log entry", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.log.Warn("opening the log", "err", err)
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write(append(line, '\n')); err != nil {
		h.log.Warn("writing the log", "err", err)
	}
}

func mspOf(stub shim.ChaincodeStubInterface) string {
	b, err := stub.GetCreator()
	if err != nil {
		return ""
	}
	var id msp.SerializedIdentity
	if proto.Unmarshal(b, &id) != nil {
		return ""
	}
	return id.GetMspid()
}

// rawCall serves the hostile:* functions: world-state access with no check
// at all. Whether the result validates is up to the key's endorsement
// policy, which is the point of the tests.
func rawCall(stub shim.ChaincodeStubInterface, fn string, args [][]byte) *peer.Response {
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("hostile:%s takes %d arguments, got %d", fn, n, len(args))
		}
		return nil
	}
	var (
		out []byte
		err error
	)
	switch fn {
	case "Put":
		if err = want(2); err == nil {
			err = stub.PutState(string(args[0]), args[1])
		}
	case "PutComposite":
		if err = want(3); err == nil {
			var attrs []string
			if err = json.Unmarshal(args[1], &attrs); err != nil {
				err = fmt.Errorf("hostile:PutComposite: attributes must be a JSON list of strings: %w", err)
				break
			}
			var key string
			if key, err = stub.CreateCompositeKey(string(args[0]), attrs); err == nil {
				err = stub.PutState(key, args[2])
			}
		}
	case "Delete":
		if err = want(1); err == nil {
			err = stub.DelState(string(args[0]))
		}
	case "Get":
		if err = want(1); err == nil {
			out, err = stub.GetState(string(args[0]))
		}
	case "SetEndorsers":
		if err = want(2); err == nil {
			var ep []byte
			if ep, err = endorsers(strings.Split(string(args[1]), ",")); err == nil {
				err = stub.SetStateValidationParameter(string(args[0]), ep)
			}
		}
	case "GetEndorsers":
		if err = want(1); err == nil {
			var ep []byte
			if ep, err = stub.GetStateValidationParameter(string(args[0])); err == nil && len(ep) > 0 {
				var sep statebased.KeyEndorsementPolicy
				if sep, err = statebased.NewStateEP(ep); err == nil {
					orgs := sep.ListOrgs()
					slices.Sort(orgs)
					out = []byte(strings.Join(orgs, ","))
				}
			}
		}
	default:
		err = fmt.Errorf("no function hostile:%s (have Put, PutComposite, Delete, Get, SetEndorsers, GetEndorsers)", fn)
	}
	if err != nil {
		return shim.Error(err.Error())
	}
	return shim.Success(out)
}

// endorsers is a key-level policy that needs a peer of every org.
func endorsers(orgs []string) ([]byte, error) {
	ep, err := statebased.NewStateEP(nil)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		if o = strings.TrimSpace(o); o != "" {
			if err := ep.AddOrgs(statebased.RoleTypePeer, o); err != nil {
				return nil, err
			}
		}
	}
	return ep.Policy()
}
