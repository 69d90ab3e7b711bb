package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/deploy/ccaas"
)

func newChaincodeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaincode",
		Short: "Package the iotledger chaincode for any Fabric 2.5 peer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("name a chaincode verb: `iotledger chaincode package --ccaas --address HOST:PORT --out FILE`")
		},
	}
	cmd.AddCommand(newChaincodePackageCmd(g))
	return cmd
}

type chaincodePackageOptions struct {
	ccaas                 bool
	label, address, out   string
	dialTimeout           time.Duration
	rootCert              string // --tls-root-cert: CA of the server's TLS certificate
	clientCert, clientKey string // --tls-client-cert/--tls-client-key: the peer's, for mutual TLS
}

// chaincodePackageResult is what `chaincode package -o json` prints.
type chaincodePackageResult struct {
	PackageID  string `json:"packageId"`
	Label      string `json:"label"`
	File       string `json:"file"`
	Address    string `json:"address"`
	TLS        bool   `json:"tls"`
	ClientAuth bool   `json:"clientAuth"`
}

func newChaincodePackageCmd(g *globalOptions) *cobra.Command {
	o := chaincodePackageOptions{}
	cmd := &cobra.Command{
		Use:   "package --ccaas --address HOST:PORT [--tls-root-cert CA.pem [--tls-client-cert C.pem --tls-client-key K.pem]] --out FILE",
		Short: "Write a chaincode-as-a-service package for the chaincode server at --address and print its package ID",
		Long: `Writes the package a Fabric 2.5 peer installs to reach iotledger-chaincode running as a service
(a process, a VM, a Kubernetes Deployment): metadata.json of type "ccaas", which the peer's ccaas
external builder claims, and code.tar.gz holding connection.json with --address and the TLS settings.
Each org whose peers dial their own server writes its own package.

The package ID printed (label:sha256 of the file, as the peer computes it) is what
` + "`peer lifecycle chaincode approveformyorg --package-id`" + ` takes and what the server must run with
(CORE_CHAINCODE_ID_NAME). The same flags always give the same file and the same ID.

TLS: --tls-root-cert is the CA that issued the server's certificate (CHAINCODE_TLS_CERT_FILE); with
--tls-client-cert/--tls-client-key the peer also presents a client certificate, which the server
checks against CHAINCODE_TLS_CLIENT_CA_CERT_FILE. The PEM goes into the package itself.`,
		Example: `  iotledger chaincode package --ccaas --address iotledger-cc.org1.svc:9999 \
      --tls-root-cert chaincode-ca.pem --out iotledger-org1.tar.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pkg, res, err := o.build()
			if err != nil {
				return err
			}
			if err := os.WriteFile(o.out, pkg.Bytes, 0o644); err != nil { //nolint:gosec // G306: a package holds no secret unless --tls-client-key, see below
				return fmt.Errorf("write the package: %w", err)
			}
			if o.clientKey != "" {
				// The peer's client key is inside: keep the file to its owner.
				if err := os.Chmod(o.out, 0o600); err != nil {
					return fmt.Errorf("write the package: %w", err)
				}
			}
			w := cmd.OutOrStdout()
			if g.json() {
				return writeIndentedJSON(w, res)
			}
			tls := "plaintext"
			switch {
			case res.ClientAuth:
				tls = "mutual TLS"
			case res.TLS:
				tls = "TLS"
			}
			_, err = fmt.Fprintf(w, "wrote %s: label %s, server %s (%s)\npackage ID: %s\n", res.File, res.Label, res.Address, tls, res.PackageID)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.ccaas, "ccaas", false, "a chaincode-as-a-service package (required: the only kind iotledger ships)")
	f.StringVar(&o.address, "address", "", "host:port where the peers reach the chaincode server (required)")
	f.StringVar(&o.label, "label", "iotledger_1", "package label: letters, digits and '.+-_'")
	f.DurationVar(&o.dialTimeout, "dial-timeout", ccaas.DefaultDialTimeout, "how long the peer waits to connect to the server")
	f.StringVar(&o.rootCert, "tls-root-cert", "", "PEM of the CA that issued the server's TLS certificate: the peer requires TLS")
	f.StringVar(&o.clientCert, "tls-client-cert", "", "PEM certificate the peer presents to the server (mutual TLS; with --tls-client-key)")
	f.StringVar(&o.clientKey, "tls-client-key", "", "PEM private key of --tls-client-cert")
	f.StringVar(&o.out, "out", "", "file to write the package to, e.g. iotledger-org1.tar.gz (required)")
	return cmd
}

func (o *chaincodePackageOptions) build() (*ccaas.Package, chaincodePackageResult, error) {
	var res chaincodePackageResult
	switch {
	case !o.ccaas:
		return nil, res, usageErrorf("--ccaas is required: iotledger's chaincode runs as a service that the peer dials")
	case o.address == "":
		return nil, res, usageErrorf("--address is required: host:port where the peers reach the chaincode server (e.g. iotledger-cc.org1.svc:9999)")
	case o.out == "":
		return nil, res, usageErrorf("--out is required: the file to write the package to")
	case o.dialTimeout <= 0:
		return nil, res, usageErrorf("invalid --dial-timeout %s: must be positive", o.dialTimeout)
	case (o.clientCert == "") != (o.clientKey == ""):
		return nil, res, usageErrorf("--tls-client-cert and --tls-client-key go together")
	case o.clientCert != "" && o.rootCert == "":
		return nil, res, usageErrorf("--tls-client-cert needs --tls-root-cert: mutual TLS is TLS first")
	}
	conn := ccaas.Connection{Address: o.address, DialTimeout: o.dialTimeout.String()}
	var err error
	if o.rootCert != "" {
		conn.TLSRequired = true
		if conn.RootCert, err = readPEMFlag("--tls-root-cert", o.rootCert); err != nil {
			return nil, res, err
		}
	}
	if o.clientCert != "" {
		conn.ClientAuthRequired = true
		if conn.ClientCert, err = readPEMFlag("--tls-client-cert", o.clientCert); err != nil {
			return nil, res, err
		}
		if conn.ClientKey, err = readPEMFlag("--tls-client-key", o.clientKey); err != nil {
			return nil, res, err
		}
	}
	pkg, err := ccaas.Build(o.label, conn)
	if err != nil {
		return nil, res, err
	}
	return pkg, chaincodePackageResult{
		PackageID: pkg.ID, Label: pkg.Label, File: o.out, Address: conn.Address,
		TLS: conn.TLSRequired, ClientAuth: conn.ClientAuthRequired,
	}, nil
}

// maxPEMFile bounds what a PEM flag reads: a certificate chain is a few KiB.
const maxPEMFile = 64 << 10

func readPEMFlag(flag, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if st.Size() > maxPEMFile {
		return "", fmt.Errorf("%s %s: %d bytes, more than a PEM file of %d", flag, path, st.Size(), maxPEMFile)
	}
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return string(b), nil
}
