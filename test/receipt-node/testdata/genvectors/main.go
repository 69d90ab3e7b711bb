// Command genvectors prints protobuf and block-header vectors made with
// fabric-protos-go-apiv2 and encoding/asn1, which unit.test.js decodes to check
// fabric.proto's field numbers and verify.js's header DER. From the repository root:
//
//	go run test/receipt-node/testdata/genvectors/main.go > test/receipt-node/testdata/fabric-vectors.json
package main

import (
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func m(x proto.Message) string {
	b, err := proto.Marshal(x)
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

type asn1Header struct {
	Number       *big.Int
	PreviousHash []byte
	DataHash     []byte
}

func main() {
	out := map[string]string{}
	out["Block"] = m(&cb.Block{Header: &cb.BlockHeader{Number: 300, PreviousHash: []byte("prev"), DataHash: []byte("data")},
		Data: &cb.BlockData{Data: [][]byte{[]byte("e0"), []byte("e1")}}, Metadata: &cb.BlockMetadata{Metadata: [][]byte{[]byte("sig"), {}, []byte("flt")}}})
	// Canonical blocks (receipts.md §4.3): the deterministic encoding of five
	// metadata entries, empty elements included, and of a genesis header.
	det := func(x proto.Message) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(x)
		if err != nil {
			panic(err)
		}
		return hex.EncodeToString(b)
	}
	five := func(first []byte) *cb.BlockMetadata {
		return &cb.BlockMetadata{Metadata: [][]byte{first, {}, {}, {}, {}}}
	}
	out["Block-canonical"] = det(&cb.Block{Header: &cb.BlockHeader{Number: 300, PreviousHash: []byte("prev"), DataHash: []byte("data")},
		Data: &cb.BlockData{Data: [][]byte{[]byte("e0"), {}, []byte("e2")}}, Metadata: five([]byte("sig"))})
	out["Block-genesis"] = det(&cb.Block{Header: &cb.BlockHeader{DataHash: []byte("data")},
		Data: &cb.BlockData{Data: [][]byte{[]byte("e0")}}, Metadata: five(nil)})
	out["Block-empty"] = det(&cb.Block{Header: &cb.BlockHeader{}, Data: &cb.BlockData{}, Metadata: five(nil)})
	out["Metadata"] = m(&cb.Metadata{Value: []byte("v"), Signatures: []*cb.MetadataSignature{{SignatureHeader: []byte("sh"), Signature: []byte("s"), IdentifierHeader: []byte("ih")}}})
	out["OrdererBlockMetadata"] = m(&cb.OrdererBlockMetadata{LastConfig: &cb.LastConfig{Index: 7}, ConsenterMetadata: []byte("cm")})
	out["Envelope"] = m(&cb.Envelope{Payload: []byte("p"), Signature: []byte("s")})
	out["Payload"] = m(&cb.Payload{Header: &cb.Header{ChannelHeader: []byte("ch"), SignatureHeader: []byte("sh")}, Data: []byte("d")})
	out["ChannelHeader"] = m(&cb.ChannelHeader{Type: 3, Version: 1, Timestamp: &timestamppb.Timestamp{Seconds: 1767225600, Nanos: 5}, ChannelId: "iot", TxId: "tx", Epoch: 9, Extension: []byte("x"), TlsCertHash: []byte("t")})
	out["SignatureHeader"] = m(&cb.SignatureHeader{Creator: []byte("c"), Nonce: []byte("n")})
	out["ConfigEnvelope"] = m(&cb.ConfigEnvelope{Config: &cb.Config{Sequence: 4, ChannelGroup: &cb.ConfigGroup{Version: 1,
		Groups:    map[string]*cb.ConfigGroup{"Orderer": {ModPolicy: "Admins"}},
		Values:    map[string]*cb.ConfigValue{"MSP": {Version: 2, Value: []byte("mv"), ModPolicy: "A"}},
		Policies:  map[string]*cb.ConfigPolicy{"Writers": {Version: 3, Policy: &cb.Policy{Type: 3, Value: []byte("pv")}, ModPolicy: "B"}},
		ModPolicy: "M"}}, LastUpdate: &cb.Envelope{Payload: []byte("lu")}})
	out["ImplicitMetaPolicy"] = m(&cb.ImplicitMetaPolicy{SubPolicy: "Writers", Rule: cb.ImplicitMetaPolicy_MAJORITY})
	out["SignaturePolicyEnvelope"] = m(&cb.SignaturePolicyEnvelope{Version: 0,
		Rule: &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{NOutOf: &cb.SignaturePolicy_NOutOf{N: 2, Rules: []*cb.SignaturePolicy{
			{Type: &cb.SignaturePolicy_SignedBy{SignedBy: 0}}, {Type: &cb.SignaturePolicy_SignedBy{SignedBy: 1}}}}}},
		Identities: []*mb.MSPPrincipal{{PrincipalClassification: mb.MSPPrincipal_ROLE, Principal: []byte("r")}, {PrincipalClassification: mb.MSPPrincipal_IDENTITY, Principal: []byte("i")}}})
	out["MSPRole"] = m(&mb.MSPRole{MspIdentifier: "Org1MSP", Role: mb.MSPRole_PEER})
	out["MSPConfig"] = m(&mb.MSPConfig{Type: 0, Config: []byte("fc")})
	out["FabricMSPConfig"] = m(&mb.FabricMSPConfig{Name: "Org1MSP", RootCerts: [][]byte{[]byte("root")}, IntermediateCerts: [][]byte{[]byte("int")},
		Admins: [][]byte{[]byte("adm")}, RevocationList: [][]byte{[]byte("crl")}, TlsRootCerts: [][]byte{[]byte("tls")},
		FabricNodeOus: &mb.FabricNodeOUs{Enable: true, ClientOuIdentifier: &mb.FabricOUIdentifier{Certificate: []byte("cc"), OrganizationalUnitIdentifier: "client"},
			PeerOuIdentifier: &mb.FabricOUIdentifier{OrganizationalUnitIdentifier: "peer"}, AdminOuIdentifier: &mb.FabricOUIdentifier{OrganizationalUnitIdentifier: "admin"},
			OrdererOuIdentifier: &mb.FabricOUIdentifier{OrganizationalUnitIdentifier: "orderer"}}})
	out["SerializedIdentity"] = m(&mb.SerializedIdentity{Mspid: "Org1MSP", IdBytes: []byte("pem")})
	out["Transaction"] = m(&pb.Transaction{Actions: []*pb.TransactionAction{{Header: []byte("h"), Payload: []byte("p")}}})
	out["ChaincodeActionPayload"] = m(&pb.ChaincodeActionPayload{ChaincodeProposalPayload: []byte("cpp"), Action: &pb.ChaincodeEndorsedAction{
		ProposalResponsePayload: []byte("prp"), Endorsements: []*pb.Endorsement{{Endorser: []byte("e"), Signature: []byte("s")}}}})
	out["ProposalResponsePayload"] = m(&pb.ProposalResponsePayload{ProposalHash: []byte("ph"), Extension: []byte("ext")})
	out["ChaincodeAction"] = m(&pb.ChaincodeAction{Results: []byte("res"), Events: []byte("ev"), Response: &pb.Response{Status: 200, Message: "ok", Payload: []byte("pl")},
		ChaincodeId: &pb.ChaincodeID{Path: "p", Name: "iotledger", Version: "1"}})
	out["ChaincodeProposalPayload"] = m(&pb.ChaincodeProposalPayload{Input: []byte("in"), TransientMap: map[string][]byte{"k": []byte("v")}})
	out["ChaincodeInvocationSpec"] = m(&pb.ChaincodeInvocationSpec{ChaincodeSpec: &pb.ChaincodeSpec{Type: pb.ChaincodeSpec_GOLANG,
		ChaincodeId: &pb.ChaincodeID{Name: "iotledger"}, Input: &pb.ChaincodeInput{Args: [][]byte{[]byte("telemetry:SubmitBatch"), []byte("arg")}, IsInit: true}, Timeout: 5}})
	out["TxReadWriteSet"] = m(&rwset.TxReadWriteSet{DataModel: rwset.TxReadWriteSet_KV, NsRwset: []*rwset.NsReadWriteSet{{Namespace: "iotledger", Rwset: []byte("kv")}}})
	out["KVRWSet"] = m(&kvrwset.KVRWSet{Reads: []*kvrwset.KVRead{{Key: "\x00dev\x00d\x00", Version: &kvrwset.Version{BlockNum: 12, TxNum: 3}}, {Key: "new"}},
		RangeQueriesInfo: []*kvrwset.RangeQueryInfo{{StartKey: "a"}},
		Writes:           []*kvrwset.KVWrite{{Key: "w", IsDelete: true, Value: []byte("val")}},
		MetadataWrites:   []*kvrwset.KVMetadataWrite{{Key: "m", Entries: []*kvrwset.KVMetadataEntry{{Name: "VALIDATION_PARAMETER", Value: []byte("vp")}}}}})
	for _, n := range []uint64{0, 1, 127, 128, 255, 256, 300, 65535, 1 << 31, 1<<63 + 5} {
		b, err := asn1.Marshal(asn1Header{Number: new(big.Int).SetUint64(n), PreviousHash: []byte("prev"), DataHash: make([]byte, 32)})
		if err != nil {
			panic(err)
		}
		out[fmt.Sprintf("header-%d", n)] = hex.EncodeToString(b)
	}
	b, _ := asn1.Marshal(asn1Header{Number: new(big.Int), PreviousHash: nil, DataHash: []byte{1, 2}})
	out["header-0-nilprev"] = hex.EncodeToString(b)
	j, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(j))
}
