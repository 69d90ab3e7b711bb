package chaincode

import (
	"crypto/x509"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"github.com/iotledger/iotledger/chaincode/api"
)

// Chaincode is the iotledger chaincode as the peer calls it. contract-api
// builds the contracts' metadata and answers everything it describes; the
// transactions themselves, whose arguments and result are all strings that
// the contracts decode strictly on their own (reading.DecodeStrict), are
// called directly. contract-api would otherwise parse the caller's
// certificate before every call, whether or not the call is ever let in, and
// validate each string argument and result against the JSON schema
// {"type":"string"} — a third of the chaincode's work per access decision.
// The direct call answers exactly as contract-api does: same function
// names (first letter case-folded), same errors for too few arguments, the
// result as the payload and an error as its message (dispatch_test.go holds
// the two to each other for every transaction).
type Chaincode struct {
	router *contractapi.ContractChaincode
	direct map[string]directTx
}

// directTx is one transaction that Chaincode calls itself.
type directTx struct {
	params int
	call   func(ctx contractapi.TransactionContextInterface, params []string) (string, error)
}

var _ shim.Chaincode = (*Chaincode)(nil)

// newDispatcher wraps contract-api's router and indexes the transactions of
// contracts whose parameters (after the context) are strings and whose
// results are (string, error) or error.
func newDispatcher(router *contractapi.ContractChaincode, contracts ...contractapi.ContractInterface) *Chaincode {
	c := &Chaincode{router: router, direct: map[string]directTx{}}
	ctxType := reflect.TypeFor[contractapi.TransactionContextInterface]()
	strType := reflect.TypeFor[string]()
	errType := reflect.TypeFor[error]()
	skip := map[string]bool{}
	base := reflect.TypeFor[*contractapi.Contract]()
	for i := range base.NumMethod() {
		skip[base.Method(i).Name] = true
	}
	for _, contract := range contracts {
		v := reflect.ValueOf(contract)
		t := v.Type()
		for i := range t.NumMethod() {
			m := t.Method(i)
			if skip[m.Name] {
				continue
			}
			ft := m.Type // receiver first
			if ft.NumIn() < 2 || ft.In(1) != ctxType || ft.IsVariadic() || ft.NumOut() < 1 || ft.NumOut() > 2 ||
				ft.Out(ft.NumOut()-1) != errType || (ft.NumOut() == 2 && ft.Out(0) != strType) {
				continue
			}
			returns := ft.NumOut() == 2
			params := ft.NumIn() - 2
			allStrings := true
			for j := 2; j < ft.NumIn(); j++ {
				allStrings = allStrings && ft.In(j) == strType
			}
			if !allStrings {
				continue
			}
			fn := v.Method(i)
			c.direct[contract.GetName()+":"+m.Name] = directTx{params: params, call: func(ctx contractapi.TransactionContextInterface, ps []string) (string, error) {
				in := make([]reflect.Value, 1+params)
				in[0] = reflect.ValueOf(ctx)
				for j := range params {
					in[1+j] = reflect.ValueOf(ps[j])
				}
				out := fn.Call(in)
				if err, _ := out[len(out)-1].Interface().(error); err != nil {
					return "", err
				}
				if !returns {
					return "", nil
				}
				return out[0].String(), nil
			}}
		}
	}
	return c
}

// Start serves the chaincode to the peer that launched this process
// (peer-launched mode; a chaincode server uses shim.ChaincodeServer).
func (c *Chaincode) Start() error {
	return shim.Start(c)
}

// Init is contract-api's (the chaincode needs no initialisation).
func (c *Chaincode) Init(stub shim.ChaincodeStubInterface) *peer.Response {
	return c.router.Init(stub)
}

// Invoke calls a transaction directly when it is one of the contracts' and
// hands everything else (metadata, unknown names) to contract-api.
func (c *Chaincode) Invoke(stub shim.ChaincodeStubInterface) *peer.Response {
	name, params := stub.GetFunctionAndParameters()
	tx, ok := c.direct[canonicalTxName(name)]
	if !ok {
		return c.router.Invoke(stub)
	}
	if len(params) < tx.params {
		return shim.Error(fmt.Sprintf("incorrect number of params. Expected %d, received %d", tx.params, len(params)))
	}
	ctx := &contractapi.TransactionContext{}
	ctx.SetStub(stub)
	ctx.SetClientIdentity(&lazyIdentity{stub: stub})
	res, err := tx.call(ctx, params)
	if err != nil {
		return shim.Error(err.Error())
	}
	return shim.Success([]byte(res))
}

// canonicalTxName spells "contract:function" as contract-api looks it up:
// the function's first letter upper-cased. A name without a contract is
// left alone (contract-api would use its default contract).
func canonicalTxName(name string) string {
	i := strings.LastIndex(name, ":")
	if i < 0 || i == len(name)-1 {
		return name
	}
	r, n := utf8.DecodeRuneInString(name[i+1:])
	return name[:i+1] + string(unicode.ToUpper(r)) + name[i+1+n:]
}

// lazyIdentity is the caller's identity, parsed from the creator only if a
// transaction asks for it (engines.begin finds most callers in its cache).
type lazyIdentity struct {
	stub shim.ChaincodeStubInterface
	once sync.Once
	ci   cid.ClientIdentity
	err  error
}

func (l *lazyIdentity) get() (cid.ClientIdentity, error) {
	l.once.Do(func() { l.ci, l.err = cid.New(l.stub) })
	return l.ci, l.err
}

func (l *lazyIdentity) GetID() (string, error) {
	ci, err := l.get()
	if err != nil {
		return "", err
	}
	return ci.GetID()
}

func (l *lazyIdentity) GetMSPID() (string, error) {
	ci, err := l.get()
	if err != nil {
		return "", err
	}
	return ci.GetMSPID()
}

func (l *lazyIdentity) GetAttributeValue(attrName string) (string, bool, error) {
	ci, err := l.get()
	if err != nil {
		return "", false, err
	}
	return ci.GetAttributeValue(attrName)
}

func (l *lazyIdentity) AssertAttributeValue(attrName, attrValue string) error {
	ci, err := l.get()
	if err != nil {
		return err
	}
	return ci.AssertAttributeValue(attrName, attrValue)
}

func (l *lazyIdentity) GetX509Certificate() (*x509.Certificate, error) {
	ci, err := l.get()
	if err != nil {
		return nil, err
	}
	return ci.GetX509Certificate()
}

// callerCache remembers the principal of each creator seen lately. A
// principal is a pure function of the creator's bytes (MSP ID and
// certificate), so every endorser still derives the same one; the cache only
// saves parsing the certificate again. Bounded: it starts afresh when full.
type callerCache struct {
	mu sync.Mutex
	m  map[string]api.Principal
}

const maxCachedCallers = 1024

func (c *callerCache) get(creator []byte) (api.Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[string(creator)]
	return p, ok
}

func (c *callerCache) put(creator []byte, p api.Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedCallers {
		c.m = make(map[string]api.Principal, 64)
	}
	c.m[string(creator)] = p
}
