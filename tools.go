//go:build tools

// Package tools pins modules that the project's packages are being built on.
package tools

import (
	_ "github.com/eclipse/paho.golang/autopaho"
	_ "github.com/eclipse/paho.golang/paho"
	_ "github.com/google/cel-go/cel"
	_ "github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	_ "github.com/hyperledger/fabric-chaincode-go/v2/pkg/statebased"
	_ "github.com/hyperledger/fabric-chaincode-go/v2/shim"
	_ "github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	_ "github.com/hyperledger/fabric-gateway/pkg/client"
	_ "github.com/hyperledger/fabric-gateway/pkg/identity"
	_ "github.com/hyperledger/fabric-gateway/pkg/hash"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	_ "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	_ "github.com/maxbrunsfeld/counterfeiter/v6"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/mochi-mqtt/server/v2/hooks/auth"
	_ "github.com/mochi-mqtt/server/v2/listeners"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/stretchr/testify/require"
	_ "go.etcd.io/bbolt"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/credentials"
)
