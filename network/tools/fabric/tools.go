//go:build tools

// Package fabric pins the Hyperledger Fabric v2.5.0 commands that the local
// network runs: peer, orderer, configtxgen, cryptogen and osnadmin.
package fabric

import (
	_ "github.com/hyperledger/fabric/cmd/configtxgen"
	_ "github.com/hyperledger/fabric/cmd/cryptogen"
	_ "github.com/hyperledger/fabric/cmd/orderer"
	_ "github.com/hyperledger/fabric/cmd/osnadmin"
	_ "github.com/hyperledger/fabric/cmd/peer"
)
