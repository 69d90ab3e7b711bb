package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	mspproto "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
)

// channelConfig builds a channel configuration whose application groups
// (by group name) carry MSPs with the given IDs.
func channelConfig(t *testing.T, orgs map[string]string) []byte {
	t.Helper()
	app := &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{}}
	for name, mspID := range orgs {
		fc, err := proto.Marshal(&mspproto.FabricMSPConfig{Name: mspID})
		require.NoError(t, err)
		mc, err := proto.Marshal(&mspproto.MSPConfig{Config: fc})
		require.NoError(t, err)
		app.Groups[name] = &common.ConfigGroup{Values: map[string]*common.ConfigValue{"MSP": {Value: mc}}}
	}
	b, err := proto.Marshal(&common.Config{ChannelGroup: &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{
		"Application": app, "Orderer": {},
	}}})
	require.NoError(t, err)
	return b
}

var privateBatch = api.BatchRequest{Readings: []reading.Envelope{{Payload: []byte(`{"device":"m","seq":1}`), Signature: []byte{1, 2}}}}

const receiptJSON = `{"batchId":"tx0","root":"0000000000000000000000000000000000000000000000000000000000000000","size":1}`

func TestSubmitPrivateBatchSendsTheBatchAsTransientDataToTheOwnerOrgOnly(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{code: "MVCC_READ_CONFLICT"}, {code: "VALID", result: receiptJSON}}}
	c := newClientWithTransport(tr, "Org1MSP", WithRetry(2, time.Millisecond))
	receipt, err := c.SubmitPrivateBatch(t.Context(), privateBatch)
	require.NoError(t, err)
	require.Equal(t, 1, receipt.Size)
	require.Equal(t, 2, tr.submits, "a read conflict is resubmitted with the same transient data")
	require.Empty(t, tr.lastArgs, "nothing of the batch travels in the arguments")
	var sent api.BatchRequest
	require.NoError(t, json.Unmarshal(tr.lastOpts.transient[api.TransientBatchKey], &sent))
	require.Equal(t, privateBatch, sent)
	require.Equal(t, []string{"Org1MSP"}, tr.lastOpts.endorsingOrgs, "no other org's peer receives the readings")
}

func TestSubmitPrivateBatchForNamesTheOwnerAsTheOnlyEndorser(t *testing.T) {
	tr := &scriptedTransport{script: []outcome{{code: "VALID", result: receiptJSON}}}
	// Endorsing orgs configured for the client's other transactions do not
	// widen who receives a private batch.
	c := newClientWithTransport(tr, "Org1MSP", WithEndorsingOrganizations("Org1MSP", "Org3MSP"), WithRetry(2, time.Millisecond))
	_, err := c.SubmitPrivateBatchFor(t.Context(), "Org3MSP", privateBatch)
	require.NoError(t, err)
	require.Equal(t, []string{"Org3MSP"}, tr.lastOpts.endorsingOrgs)
	require.Zero(t, tr.systemN)
}

func TestSubmitPrivateBatchRefusals(t *testing.T) {
	t.Run("empty batch", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{code: "VALID"}}}
		_, err := fastClient(tr).SubmitPrivateBatch(t.Context(), api.BatchRequest{})
		require.ErrorContains(t, err, "the batch has no readings")
		require.Zero(t, tr.submits)
	})
	t.Run("no owner", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{code: "VALID"}}}
		_, err := fastClient(tr).SubmitPrivateBatchFor(t.Context(), "", privateBatch)
		require.ErrorContains(t, err, "name the org that owns the batch's private devices")
		require.Zero(t, tr.submits)
	})
	t.Run("chaincode refusal", func(t *testing.T) {
		tr := &scriptedTransport{script: []outcome{{submitErr: endorseError(t)}}}
		_, err := newClientWithTransport(tr, "Org1MSP", WithRetry(2, time.Millisecond)).SubmitPrivateBatch(t.Context(), privateBatch)
		var te *TransactionError
		require.ErrorAs(t, err, &te)
		require.Equal(t, "telemetry:SubmitPrivateBatch", te.Tx)
		require.Equal(t, 1, tr.submits)
	})
}

func TestChannelOrgsAreReadOnceFromTheChannelConfiguration(t *testing.T) {
	tr := &scriptedTransport{systemCalls: map[string][]byte{"cscc:GetChannelConfig": channelConfig(t, map[string]string{"Org2": "Org2MSP", "Org1": "Org1MSP"})}}
	c := fastClient(tr)
	c.channel = "iotledger"
	for range 2 {
		orgs, err := c.ChannelOrgs(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"Org1MSP", "Org2MSP"}, orgs)
	}
	require.Equal(t, []string{"iotledger"}, tr.systemArgs)
	require.Equal(t, 1, tr.systemN)
}

func TestApplicationOrgsRefusesMalformedConfigurations(t *testing.T) {
	noApp, err := proto.Marshal(&common.Config{ChannelGroup: &common.ConfigGroup{}})
	require.NoError(t, err)
	noMSP, err := proto.Marshal(&common.Config{ChannelGroup: &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{
		"Application": {Groups: map[string]*common.ConfigGroup{"Org1": {}}},
	}}})
	require.NoError(t, err)
	badMSP, err := proto.Marshal(&common.Config{ChannelGroup: &common.ConfigGroup{Groups: map[string]*common.ConfigGroup{
		"Application": {Groups: map[string]*common.ConfigGroup{"Org1": {Values: map[string]*common.ConfigValue{"MSP": {Value: []byte{0xff}}}}}},
	}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"not a config", []byte{0xff, 0xff}, "decoding the channel configuration"},
		{"no application group", noApp, "no Application group"},
		{"no orgs", channelConfig(t, nil), "lists no application orgs"},
		{"org without MSP", noMSP, "application org Org1 has no MSP"},
		{"undecodable MSP", badMSP, "decoding the MSP of application org Org1"},
		{"MSP without ID", channelConfig(t, map[string]string{"Org1": ""}), "has an MSP without an ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := applicationOrgs(tc.b)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestBlockByTxIDDecodesTheBlock(t *testing.T) {
	want := &common.Block{Header: &common.BlockHeader{Number: 7}, Data: &common.BlockData{Data: [][]byte{[]byte("tx")}}}
	b, err := proto.Marshal(want)
	require.NoError(t, err)
	tr := &scriptedTransport{systemCalls: map[string][]byte{"qscc:GetBlockByTxID": b}}
	c := fastClient(tr)
	c.channel = "iotledger"
	got, err := c.BlockByTxID(t.Context(), "abc")
	require.NoError(t, err)
	require.True(t, proto.Equal(want, got))
	require.Equal(t, []string{"iotledger", "abc"}, tr.systemArgs)

	tr.systemCalls["qscc:GetBlockByTxID"] = []byte{0xff}
	_, err = c.BlockByTxID(t.Context(), "abc")
	require.ErrorContains(t, err, "decoding the block of transaction abc")
	delete(tr.systemCalls, "qscc:GetBlockByTxID")
	_, err = c.BlockByTxID(t.Context(), "abc")
	var te *TransactionError
	require.ErrorAs(t, err, &te)
	require.Equal(t, "qscc:GetBlockByTxID", te.Tx)
}
