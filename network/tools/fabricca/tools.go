//go:build tools

// Package fabricca pins the Hyperledger Fabric CA v1.5.15 commands that the
// local network runs: fabric-ca-server and fabric-ca-client.
package fabricca

import (
	_ "github.com/hyperledger/fabric-ca/cmd/fabric-ca-client"
	_ "github.com/hyperledger/fabric-ca/cmd/fabric-ca-server"
)
