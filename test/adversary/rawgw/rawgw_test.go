package rawgw

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func testClient(t *testing.T) (*Client, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	sign, err := identity.NewPrivateKeySign(key)
	require.NoError(t, err)
	return &Client{channel: "iotledger", chaincode: "iotledger", mspID: "Org2MSP", creator: []byte("creator-bytes"), sign: sign}, key
}

func TestSignedProposalCarriesTheChosenFieldsAndFabricsTransactionID(t *testing.T) {
	c, key := testClient(t)
	when := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)
	s, err := c.Sign(Proposal{Function: "command:Expire", Args: []string{"cmd-1"}, Transient: map[string][]byte{"k": []byte("v")}, Timestamp: when})
	require.NoError(t, err)

	digest := sha256.Sum256(s.proposal.GetProposalBytes())
	require.True(t, ecdsa.VerifyASN1(&key.PublicKey, digest[:], s.proposal.GetSignature()), "signed by the identity's key")

	var prop peer.Proposal
	require.NoError(t, proto.Unmarshal(s.proposal.GetProposalBytes(), &prop))
	var hdr common.Header
	require.NoError(t, proto.Unmarshal(prop.GetHeader(), &hdr))
	var ch common.ChannelHeader
	require.NoError(t, proto.Unmarshal(hdr.GetChannelHeader(), &ch))
	var sh common.SignatureHeader
	require.NoError(t, proto.Unmarshal(hdr.GetSignatureHeader(), &sh))
	require.Equal(t, when, ch.GetTimestamp().AsTime())
	require.Equal(t, "iotledger", ch.GetChannelId())
	require.Equal(t, int32(common.HeaderType_ENDORSER_TRANSACTION), ch.GetType())
	require.Equal(t, []byte("creator-bytes"), sh.GetCreator())
	sum := sha256.Sum256(append(append([]byte(nil), sh.GetNonce()...), sh.GetCreator()...))
	require.Equal(t, hex.EncodeToString(sum[:]), ch.GetTxId())
	require.Equal(t, s.TxID, ch.GetTxId())

	var payload peer.ChaincodeProposalPayload
	require.NoError(t, proto.Unmarshal(prop.GetPayload(), &payload))
	require.Equal(t, map[string][]byte{"k": []byte("v")}, payload.GetTransientMap())
	var spec peer.ChaincodeInvocationSpec
	require.NoError(t, proto.Unmarshal(payload.GetInput(), &spec))
	require.Equal(t, "iotledger", spec.GetChaincodeSpec().GetChaincodeId().GetName())
	require.Equal(t, [][]byte{[]byte("command:Expire"), []byte("cmd-1")}, spec.GetChaincodeSpec().GetInput().GetArgs())

	again, err := c.Sign(Proposal{Function: "command:Expire", Timestamp: when})
	require.NoError(t, err)
	require.NotEqual(t, s.TxID, again.TxID, "a fresh nonce per proposal")
}

func TestSignWithoutATimestampUsesNow(t *testing.T) {
	c, _ := testClient(t)
	s, err := c.Sign(Proposal{Function: "device:Get", Args: []string{"d"}})
	require.NoError(t, err)
	var prop peer.Proposal
	require.NoError(t, proto.Unmarshal(s.proposal.GetProposalBytes(), &prop))
	var hdr common.Header
	require.NoError(t, proto.Unmarshal(prop.GetHeader(), &hdr))
	var ch common.ChannelHeader
	require.NoError(t, proto.Unmarshal(hdr.GetChannelHeader(), &ch))
	require.WithinDuration(t, time.Now(), ch.GetTimestamp().AsTime(), time.Minute)

	_, err = c.Sign(Proposal{})
	require.ErrorContains(t, err, "needs a function")
}

func TestErrorTextHoldsEveryEndorsersMessage(t *testing.T) {
	st, err := status.New(codes.Aborted, "failed to endorse transaction, see attached details for more info").WithDetails(
		&gateway.ErrorDetail{Address: "peer0.org1:7051", MspId: "Org1MSP", Message: "chaincode response 500, CLOCK_SKEW: the proposal timestamp ..."},
		&gateway.ErrorDetail{Address: "peer0.org2:7051", MspId: "Org2MSP", Message: "chaincode response 500, hostile: refused"},
	)
	require.NoError(t, err)
	e := newError(StageEndorse, "tx1", st.Err())
	require.Equal(t, codes.Aborted, e.GRPC)
	require.Len(t, e.Details, 2)
	require.Equal(t, "Org1MSP", e.Details[0].MSPID)
	require.Equal(t, "endorse (tx tx1): failed to endorse transaction, see attached details for more info; "+
		"peer0.org1:7051 (Org1MSP): chaincode response 500, CLOCK_SKEW: the proposal timestamp ...; "+
		"peer0.org2:7051 (Org2MSP): chaincode response 500, hostile: refused", e.Error())
}
