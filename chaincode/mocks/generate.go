// Package mocks holds counterfeiter fakes of the Fabric interfaces the
// chaincode uses, for unit tests. Regenerate with `go generate ./chaincode/mocks`.
package mocks

//go:generate go tool counterfeiter -o chaincodestub.go -fake-name ChaincodeStub github.com/hyperledger/fabric-chaincode-go/v2/shim.ChaincodeStubInterface
//go:generate go tool counterfeiter -o statequeryiterator.go -fake-name StateQueryIterator github.com/hyperledger/fabric-chaincode-go/v2/shim.StateQueryIteratorInterface
//go:generate go tool counterfeiter -o historyqueryiterator.go -fake-name HistoryQueryIterator github.com/hyperledger/fabric-chaincode-go/v2/shim.HistoryQueryIteratorInterface
//go:generate go tool counterfeiter -o transaction.go -fake-name TransactionContext github.com/hyperledger/fabric-contract-api-go/v2/contractapi.TransactionContextInterface
//go:generate go tool counterfeiter -o clientidentity.go -fake-name ClientIdentity github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid.ClientIdentity
