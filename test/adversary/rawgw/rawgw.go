// Package rawgw is a raw Fabric Gateway client for attack tests: it builds
// and signs proposals itself, so a test can set every field an attacker
// controls (the channel header's timestamp above all, which Fabric never
// checks), name the endorsing orgs, and see each endorser's message.
//
// It speaks the gateway's four calls as fabric-gateway's pkg/client does
// (proposalbuilder.go, transaction.go), without its conveniences: Evaluate,
// Endorse, Submit and CommitStatus.
package rawgw

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iotledger/iotledger/client"
)

// Client talks to one org's gateway peer as one identity.
type Client struct {
	conn      *grpc.ClientConn
	gw        gateway.GatewayClient
	channel   string
	chaincode string
	mspID     string
	creator   []byte // serialized identity: MSP ID and certificate PEM
	sign      identity.Sign
}

// Connect opens a gRPC connection to the profile's peer and acts as the
// profile's identity of that name ("admin", "operator", "hub", "auditor").
func Connect(p *client.Profile, identityName string) (*Client, error) {
	files, err := p.Identity(identityName)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(files.Cert)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", identityName, err)
	}
	keyPEM, err := os.ReadFile(files.Key)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", identityName, err)
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", identityName, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", identityName, err)
	}
	creator, err := proto.Marshal(&msp.SerializedIdentity{Mspid: files.MSPID, IdBytes: certPEM})
	if err != nil {
		return nil, err
	}
	conn, err := client.NewConnection(p)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn: conn, gw: gateway.NewGatewayClient(conn),
		channel: p.Channel, chaincode: p.Chaincode, mspID: files.MSPID, creator: creator, sign: sign,
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// MSPID is the identity's org.
func (c *Client) MSPID() string { return c.mspID }

// Proposal is what a test chooses of a transaction proposal.
type Proposal struct {
	Function  string            // "contract:Tx", e.g. "command:Expire"
	Args      []string          // string arguments after the function
	Transient map[string][]byte // transient data (never written to a block)
	Timestamp time.Time         // the channel header's timestamp; zero means now
	Chaincode string            // default: the profile's chaincode
}

// Signed is a proposal built and signed for one transaction ID.
type Signed struct {
	TxID     string
	proposal *peer.SignedProposal
}

// Sign builds the proposal: a fresh nonce, the transaction ID Fabric
// derives from it (hex SHA-256 of nonce || creator), the chosen timestamp,
// and the creator's signature over the proposal bytes.
func (c *Client) Sign(p Proposal) (*Signed, error) {
	if p.Function == "" {
		return nil, errors.New("rawgw: a proposal needs a function")
	}
	cc := p.Chaincode
	if cc == "" {
		cc = c.chaincode
	}
	ts := p.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append(append([]byte(nil), nonce...), c.creator...))
	txID := hex.EncodeToString(sum[:])

	ext, err := proto.Marshal(&peer.ChaincodeHeaderExtension{ChaincodeId: &peer.ChaincodeID{Name: cc}})
	if err != nil {
		return nil, err
	}
	chHeader, err := proto.Marshal(&common.ChannelHeader{
		Type: int32(common.HeaderType_ENDORSER_TRANSACTION), Timestamp: timestamppb.New(ts),
		ChannelId: c.channel, TxId: txID, Extension: ext,
	})
	if err != nil {
		return nil, err
	}
	sigHeader, err := proto.Marshal(&common.SignatureHeader{Creator: c.creator, Nonce: nonce})
	if err != nil {
		return nil, err
	}
	header, err := proto.Marshal(&common.Header{ChannelHeader: chHeader, SignatureHeader: sigHeader})
	if err != nil {
		return nil, err
	}
	args := make([][]byte, 0, len(p.Args)+1)
	args = append(args, []byte(p.Function))
	for _, a := range p.Args {
		args = append(args, []byte(a))
	}
	spec, err := proto.Marshal(&peer.ChaincodeInvocationSpec{ChaincodeSpec: &peer.ChaincodeSpec{
		ChaincodeId: &peer.ChaincodeID{Name: cc}, Input: &peer.ChaincodeInput{Args: args},
	}})
	if err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(&peer.ChaincodeProposalPayload{Input: spec, TransientMap: p.Transient})
	if err != nil {
		return nil, err
	}
	propBytes, err := proto.Marshal(&peer.Proposal{Header: header, Payload: payload})
	if err != nil {
		return nil, err
	}
	sig, err := c.signBytes(propBytes)
	if err != nil {
		return nil, err
	}
	return &Signed{TxID: txID, proposal: &peer.SignedProposal{ProposalBytes: propBytes, Signature: sig}}, nil
}

func (c *Client) signBytes(b []byte) ([]byte, error) {
	digest := sha256.Sum256(b)
	return c.sign(digest[:])
}

// Evaluate runs a proposal as a query and returns its result. With target
// orgs the gateway asks a peer of one of them; otherwise it picks (its own
// org's peer first).
func (c *Client) Evaluate(ctx context.Context, p Proposal, targetOrgs ...string) ([]byte, error) {
	s, err := c.Sign(p)
	if err != nil {
		return nil, err
	}
	resp, err := c.gw.Evaluate(ctx, &gateway.EvaluateRequest{
		TransactionId: s.TxID, ChannelId: c.channel, ProposedTransaction: s.proposal, TargetOrganizations: targetOrgs,
	})
	if err != nil {
		return nil, newError(StageEvaluate, s.TxID, err)
	}
	return resp.GetResult().GetPayload(), nil
}

// Endorsed is a transaction the endorsers signed, ready to submit.
type Endorsed struct {
	TxID     string
	Result   []byte // the chaincode's result
	envelope *common.Envelope
}

// Endorse has the proposal endorsed: by a peer of each of endorsingOrgs if
// any are given (and no other), otherwise by the peers the gateway plans.
func (c *Client) Endorse(ctx context.Context, p Proposal, endorsingOrgs ...string) (*Endorsed, error) {
	s, err := c.Sign(p)
	if err != nil {
		return nil, err
	}
	resp, err := c.gw.Endorse(ctx, &gateway.EndorseRequest{
		TransactionId: s.TxID, ChannelId: c.channel, ProposedTransaction: s.proposal, EndorsingOrganizations: endorsingOrgs,
	})
	if err != nil {
		return nil, newError(StageEndorse, s.TxID, err)
	}
	env := resp.GetPreparedTransaction()
	result, err := resultOf(env)
	if err != nil {
		return nil, &Error{Stage: StageEndorse, TxID: s.TxID, Message: err.Error()}
	}
	return &Endorsed{TxID: s.TxID, Result: result, envelope: env}, nil
}

// Submit signs the prepared transaction envelope and sends it to the orderer.
func (c *Client) Submit(ctx context.Context, e *Endorsed) error {
	sig, err := c.signBytes(e.envelope.GetPayload())
	if err != nil {
		return err
	}
	env := &common.Envelope{Payload: e.envelope.GetPayload(), Signature: sig}
	if _, err := c.gw.Submit(ctx, &gateway.SubmitRequest{TransactionId: e.TxID, ChannelId: c.channel, PreparedTransaction: env}); err != nil {
		return newError(StageSubmit, e.TxID, err)
	}
	return nil
}

// CommitStatus waits until the gateway's peer has committed the transaction
// and returns its validation code.
func (c *Client) CommitStatus(ctx context.Context, txID string) (peer.TxValidationCode, error) {
	req, err := proto.Marshal(&gateway.CommitStatusRequest{ChannelId: c.channel, TransactionId: txID, Identity: c.creator})
	if err != nil {
		return 0, err
	}
	sig, err := c.signBytes(req)
	if err != nil {
		return 0, err
	}
	resp, err := c.gw.CommitStatus(ctx, &gateway.SignedCommitStatusRequest{Request: req, Signature: sig})
	if err != nil {
		return 0, newError(StageCommitStatus, txID, err)
	}
	return resp.GetResult(), nil
}

// Invoke endorses, submits and awaits the commit of a proposal, and returns
// the transaction's ID, its validation code and the chaincode's result. An
// error means it never reached the ledger (or its status is unknown); a
// transaction that committed as invalid is no error: check the code.
func (c *Client) Invoke(ctx context.Context, p Proposal, endorsingOrgs ...string) (txID string, code peer.TxValidationCode, result []byte, err error) {
	e, err := c.Endorse(ctx, p, endorsingOrgs...)
	if err != nil {
		return "", 0, nil, err
	}
	if err := c.Submit(ctx, e); err != nil {
		return e.TxID, 0, nil, err
	}
	code, err = c.CommitStatus(ctx, e.TxID)
	return e.TxID, code, e.Result, err
}

// resultOf reads the chaincode's result from a prepared transaction.
func resultOf(env *common.Envelope) ([]byte, error) {
	var payload common.Payload
	if err := proto.Unmarshal(env.GetPayload(), &payload); err != nil {
		return nil, fmt.Errorf("prepared transaction payload: %w", err)
	}
	var tx peer.Transaction
	if err := proto.Unmarshal(payload.GetData(), &tx); err != nil {
		return nil, fmt.Errorf("prepared transaction: %w", err)
	}
	if len(tx.GetActions()) == 0 {
		return nil, errors.New("prepared transaction has no action")
	}
	var cap peer.ChaincodeActionPayload
	if err := proto.Unmarshal(tx.GetActions()[0].GetPayload(), &cap); err != nil {
		return nil, fmt.Errorf("chaincode action payload: %w", err)
	}
	var prp peer.ProposalResponsePayload
	if err := proto.Unmarshal(cap.GetAction().GetProposalResponsePayload(), &prp); err != nil {
		return nil, fmt.Errorf("proposal response payload: %w", err)
	}
	var action peer.ChaincodeAction
	if err := proto.Unmarshal(prp.GetExtension(), &action); err != nil {
		return nil, fmt.Errorf("chaincode action: %w", err)
	}
	return action.GetResponse().GetPayload(), nil
}

// Stage says which gateway call failed.
type Stage string

// The gateway calls.
const (
	StageEvaluate     Stage = "evaluate"
	StageEndorse      Stage = "endorse"
	StageSubmit       Stage = "submit"
	StageCommitStatus Stage = "commit-status"
)

// Detail is what one peer said about a failed proposal.
type Detail struct {
	Address string
	MSPID   string
	Message string
}

// Error is a failed gateway call with every endorser's message. Its text
// holds them all, so a chaincode's "<CODE>: <message>" is found in it.
type Error struct {
	Stage   Stage
	TxID    string
	GRPC    codes.Code
	Message string   // the gateway's message
	Details []Detail // per-peer messages
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (tx %s): %s", e.Stage, e.TxID, e.Message)
	for _, d := range e.Details {
		fmt.Fprintf(&b, "; %s (%s): %s", d.Address, d.MSPID, d.Message)
	}
	return b.String()
}

func newError(stage Stage, txID string, err error) *Error {
	e := &Error{Stage: stage, TxID: txID, Message: err.Error()}
	if st, ok := status.FromError(err); ok {
		e.GRPC, e.Message = st.Code(), st.Message()
		for _, d := range st.Details() {
			if ed, ok := d.(*gateway.ErrorDetail); ok {
				e.Details = append(e.Details, Detail{Address: ed.GetAddress(), MSPID: ed.GetMspId(), Message: ed.GetMessage()})
			}
		}
	}
	return e
}
