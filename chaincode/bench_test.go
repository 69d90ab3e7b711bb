package chaincode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// BenchmarkSubmitBatch measures one 100-reading telemetry transaction through
// the whole contract path (as the peer calls the chaincode) on the fake world.
func BenchmarkSubmitBatch(b *testing.B) {
	t := &testing.T{}
	w := newWorld(t)
	devs := make([]*testDevice, 10)
	for i := range devs {
		devs[i] = w.enroll(org1Operator, fmt.Sprintf("d%d", i), "fridge")
	}
	_, err := w.putRule(org1Operator, hotRule("warm", api.RuleAction{Type: api.ActionTypeAlert, Severity: api.SeverityInfo}))
	require.NoError(b, err)
	router, err := contractapi.NewChaincode(w.c.Device, w.c.Policy, w.c.Rule, w.c.Telemetry, w.c.Command)
	require.NoError(b, err)
	cc := newDispatcher(router, w.c.Device, w.c.Policy, w.c.Rule, w.c.Telemetry, w.c.Command)
	creator := serializedIdentity(b, "Org1MSP", "hub1", api.RoleHub)
	batches := make([]string, b.N)
	for n := range batches {
		envs := make([]reading.Envelope, 100)
		for i := range envs {
			envs[i] = devs[i%len(devs)].reading(t, 4)
		}
		batches[n] = jsonArg(t, api.BatchRequest{Readings: envs})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		rec := &txRecord{id: fmt.Sprintf("b%d", n), writes: map[string][]byte{}, sbe: map[string][]byte{}}
		stub := w.stub(rec, "Org1MSP")
		stub.GetFunctionAndParametersReturns("telemetry:SubmitBatch", []string{batches[n]})
		stub.GetCreatorReturns(creator, nil)
		if resp := cc.Invoke(stub); resp.GetStatus() != 200 {
			b.Fatal(resp.GetMessage())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100), "µs/reading")
}

// serializedIdentity is a creator as Fabric passes it to chaincode: an MSP ID
// and a certificate carrying Fabric CA attributes.
func serializedIdentity(t testing.TB, mspID, cn, role string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	require.NoError(t, attrmgr.New().AddAttributesToCert(&attrmgr.Attributes{Attrs: map[string]string{api.RoleAttribute: role}}, tmpl))
	tmpl.ExtraExtensions = tmpl.Extensions
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	b, err := proto.Marshal(&msp.SerializedIdentity{Mspid: mspID, IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})})
	require.NoError(t, err)
	return b
}

// BenchmarkStateBytesPerReading measures what a 100-reading batch of 10
// devices writes per reading (keys and values), on a world that commits each
// batch, so that each batch sees the state the earlier ones left: to world
// state for a public batch, to the owner's implicit collection for a private
// one (the channel gets only hashes of those). A public batch's readings are
// in the transaction's arguments as well; those are not counted.
func BenchmarkStateBytesPerReading(b *testing.B) {
	for _, private := range []bool{false, true} {
		name := "public"
		if private {
			name = "private"
		}
		b.Run(name, func(b *testing.B) {
			t := &testing.T{}
			w := newWorld(t)
			devs := make([]*testDevice, 10)
			for i := range devs {
				id := fmt.Sprintf("device-%02d", i)
				if private {
					devs[i] = w.enrollPrivate(org1Operator, id, "fridge")
				} else {
					devs[i] = w.enroll(org1Operator, id, "fridge")
				}
			}
			var bytes, keys int
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				envs := make([]reading.Envelope, 100)
				for i := range envs {
					envs[i] = devs[i%len(devs)].reading(t, 4)
				}
				submit := w.submitBatch
				if private {
					submit = w.submitPrivate
				}
				if _, err := submit(org1Hub, envs...); err != nil {
					b.Fatal(err)
				}
				written := w.lastTx.writes
				if private {
					written = w.lastTx.pvt[implicitCollection("Org1MSP")]
				}
				for k, v := range written {
					bytes += len(k) + len(v)
					keys++
				}
			}
			b.ReportMetric(float64(bytes)/float64(b.N*100), "B/reading")
			b.ReportMetric(float64(keys)/float64(b.N), "keys/batch")
		})
	}
}

// BenchmarkCheckAccess measures one policy:CheckAccess evaluation through
// the whole contract path (dispatch, the creator's certificate,
// the device record, the org's policies) on the fake world.
func BenchmarkCheckAccess(b *testing.B) {
	t := &testing.T{}
	w := newWorld(t)
	w.enroll(org1Operator, "d0", "fridge")
	router, err := contractapi.NewChaincode(w.c.Device, w.c.Policy, w.c.Rule, w.c.Telemetry, w.c.Command)
	require.NoError(b, err)
	cc := newDispatcher(router, w.c.Device, w.c.Policy, w.c.Rule, w.c.Telemetry, w.c.Command)
	creator := serializedIdentity(b, "Org1MSP", "operator1", api.RoleOperator)
	req := jsonArg(t, api.AccessRequest{Action: api.ActionTelemetryRead, Resource: "d0"})
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		rec := &txRecord{id: fmt.Sprintf("q%d", n), writes: map[string][]byte{}, sbe: map[string][]byte{}}
		stub := w.stub(rec, "Org1MSP")
		stub.GetFunctionAndParametersReturns("policy:CheckAccess", []string{req})
		stub.GetCreatorReturns(creator, nil)
		if resp := cc.Invoke(stub); resp.GetStatus() != 200 {
			b.Fatal(resp.GetMessage())
		}
	}
}
