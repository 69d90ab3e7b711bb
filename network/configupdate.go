package network

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// ConfigChange edits the channel configuration in place. It is handed a
// copy of the current configuration; what it changes is what the update
// writes.
type ConfigChange func(cfg *cb.Config) error

// ChannelUpdate is one change of the channel configuration: what it does
// (for logs and the recorded envelope's name), the change, and the orgs
// whose admins sign it. Fabric checks the signatures against the
// modification policy of every element the update writes: an org's own
// values (its MSP, anchor peers) need that org's Admins; adding or removing
// an application org, or changing /Channel/Application's own values or
// policies, needs the Admins of a MAJORITY of application orgs.
type ChannelUpdate struct {
	Description string
	Change      ConfigChange
	// Signers are org names (Org1, ...) whose cryptogen admins sign; the
	// first one also submits the update to the orderer. An org created to
	// join (CreateOrg) may sign its own values once the members added it.
	Signers []string
}

// ChannelUpdateResult says what an applied update became.
type ChannelUpdateResult struct {
	// Sequence is the configuration's sequence after the update.
	Sequence uint64 `json:"sequence"`
	// Block is the number of the config block that carries it; every
	// orderer and peer has committed it when UpdateChannel returns.
	Block uint64 `json:"block"`
	// Signers are the MSP IDs that signed.
	Signers []string `json:"signers"`
	// Envelope is the submitted CONFIG_UPDATE envelope, kept in the state dir.
	Envelope string `json:"envelope"`
	// Took is the time from fetching the configuration to the last node
	// committing the new config block.
	Took        time.Duration `json:"-"`
	TookSeconds float64       `json:"tookSeconds"`
}

// ErrNoConfigChange is returned when a ChannelUpdate's change leaves the
// configuration as it was: there is nothing to submit.
var ErrNoConfigChange = errors.New("the change leaves the channel configuration as it is")

// ConfigUpdateRefusedError is the orderer's refusal of a config update,
// typically a modification policy the signatures do not satisfy.
type ConfigUpdateRefusedError struct {
	Description string
	Signers     []string
	Reason      string // the orderer's answer, as the peer CLI reports it
}

func (e *ConfigUpdateRefusedError) Error() string {
	return fmt.Sprintf("the orderer refused the channel config update %q signed by %s: %s",
		e.Description, strings.Join(e.Signers, ", "), e.Reason)
}

// UpdateChannel applies one channel configuration update: it fetches the
// current configuration from the orderers, applies u.Change to a copy,
// computes the config update (read set and write set of what changed),
// has the admins of u.Signers sign it, submits it and waits until every
// running orderer and peer has committed the new config block.
func (n *Network) UpdateChannel(ctx context.Context, u ChannelUpdate) (ChannelUpdateResult, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return ChannelUpdateResult{}, err
	}
	defer unlock()
	return n.updateChannel(ctx, u)
}

func (n *Network) updateChannel(ctx context.Context, u ChannelUpdate) (ChannelUpdateResult, error) {
	start := time.Now()
	if u.Change == nil || len(u.Signers) == 0 {
		return ChannelUpdateResult{}, fmt.Errorf("channel update %q: a change and at least one signing org are required", u.Description)
	}
	signers := make([]*OrgState, 0, len(u.Signers))
	for _, name := range u.Signers {
		org, err := n.state.org(name)
		if _, created := n.state.pendingOrg(name); err != nil && created != nil {
			org, err = created, nil // an org that joins signs its own values (anchor peers)
		}
		if err != nil {
			return ChannelUpdateResult{}, err
		}
		signers = append(signers, org)
	}
	var (
		current  *cb.Config
		update   []byte
		envelope string
		res      ChannelUpdateResult
	)
	if err := n.step(ctx, "fetch the channel configuration", func() (err error) {
		current, _, err = n.fetchChannelConfig(ctx, signers[0])
		return err
	}); err != nil {
		return res, err
	}
	unchanged := false
	if err := n.step(ctx, "compute the config update: "+u.Description, func() (err error) {
		update, err = computeChannelUpdate(n.state.Channel, current, u.Change)
		if errors.Is(err, ErrNoConfigChange) {
			unchanged = true // an answer, not a failure of the step
			return nil
		}
		return err
	}); err != nil {
		return res, err
	}
	if unchanged {
		return res, fmt.Errorf("channel update %q: %w", u.Description, ErrNoConfigChange)
	}
	if err := n.step(ctx, "sign by the admins of "+strings.Join(u.Signers, ", "), func() (err error) {
		envelope, res.Signers, err = n.signConfigUpdate(u.Description, current.Sequence+1, update, signers)
		return err
	}); err != nil {
		return res, err
	}
	if err := n.step(ctx, "submit the config update", func() error {
		return n.submitConfigUpdate(ctx, signers[0], envelope, u)
	}); err != nil {
		return res, err
	}
	if err := n.step(ctx, "every orderer and peer has the new config block", func() (err error) {
		res.Block, err = n.waitConfigApplied(ctx, signers[0], current.Sequence+1)
		return err
	}); err != nil {
		return res, err
	}
	res.Sequence = current.Sequence + 1
	res.Envelope = envelope
	res.Took = time.Since(start)
	res.TookSeconds = res.Took.Seconds()
	n.log.InfoContext(ctx, "channel config updated", "update", u.Description, "sequence", res.Sequence, "block", res.Block,
		"signers", res.Signers, "took", res.Took)
	return res, nil
}

// computeChannelUpdate applies change to a copy of current and returns the
// marshaled ConfigUpdate that turns current into the changed configuration
// on channel. current itself is left as it was.
func computeChannelUpdate(channel string, current *cb.Config, change ConfigChange) ([]byte, error) {
	if current == nil || current.ChannelGroup == nil {
		return nil, errors.New("compute config update: the current configuration has no channel group")
	}
	tx := configtx.New(current)
	if err := change(tx.UpdatedConfig()); err != nil {
		return nil, err
	}
	if proto.Equal(tx.OriginalConfig(), tx.UpdatedConfig()) {
		return nil, ErrNoConfigChange
	}
	update, err := tx.ComputeMarshaledUpdate(channel)
	if err != nil {
		return nil, fmt.Errorf("compute config update: %w", err)
	}
	return update, nil
}

// configUpdatesDir keeps every submitted config update envelope.
func (n *Network) configUpdatesDir() string {
	return filepath.Join(n.state.StateDir, "config", "updates")
}

// signConfigUpdate has each signer org's admin sign update and writes the
// CONFIG_UPDATE envelope carrying the signatures; it returns its path.
func (n *Network) signConfigUpdate(description string, sequence uint64, update []byte, signers []*OrgState) (string, []string, error) {
	sigs := make([]*cb.ConfigSignature, 0, len(signers))
	ids := make([]string, 0, len(signers))
	for _, org := range signers {
		id, err := n.adminSigningIdentity(org)
		if err != nil {
			return "", nil, err
		}
		s, err := id.CreateConfigSignature(update)
		if err != nil {
			return "", nil, fmt.Errorf("sign the config update as %s admin: %w", org.Name, err)
		}
		sigs = append(sigs, s)
		ids = append(ids, org.MSPID)
	}
	env, err := configtx.NewEnvelope(update, sigs...)
	if err != nil {
		return "", nil, err
	}
	data, err := proto.Marshal(env)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(n.configUpdatesDir(), 0o755); err != nil {
		return "", nil, err
	}
	path := filepath.Join(n.configUpdatesDir(), fmt.Sprintf("%03d-%s.pb", sequence, fileSafe(description)))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", nil, err
	}
	return path, ids, nil
}

// fileSafe turns a description into a file name part.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 60 {
			break
		}
	}
	return b.String()
}

// adminSigningIdentity is the cryptogen admin of org as a config signer.
func (n *Network) adminSigningIdentity(org *OrgState) (*configtx.SigningIdentity, error) {
	certPEM, keyPEM, err := n.adminCredentials(org)
	if err != nil {
		return nil, fmt.Errorf("%s admin credentials: %w", org.Name, err)
	}
	certBlock, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if certBlock == nil || kb == nil {
		return nil, fmt.Errorf("%s admin credentials: not PEM", org.Name)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s admin certificate: %w", org.Name, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s admin key: %w", org.Name, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s admin key: %T cannot sign", org.Name, key)
	}
	return &configtx.SigningIdentity{Certificate: cert, PrivateKey: signer, MSPID: org.MSPID}, nil
}

// fetchChannelConfig reads the channel's latest config block from the
// orderers (as org's admin) and returns its configuration and number.
func (n *Network) fetchChannelConfig(ctx context.Context, org *OrgState) (*cb.Config, uint64, error) {
	oargs, err := n.ordererArgs()
	if err != nil {
		return nil, 0, err
	}
	dir, err := os.MkdirTemp(n.state.StateDir, "config-fetch-")
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	out := filepath.Join(dir, "config.block")
	args := append([]string{"channel", "fetch", "config", out, "-c", n.state.Channel}, oargs...)
	if err := retry(ctx, 30*time.Second, func() error {
		_, err := n.peerCLI(ctx, org, args...)
		return err
	}); err != nil {
		return nil, 0, fmt.Errorf("fetch the config block of %s: %w", n.state.Channel, err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, 0, err
	}
	return configFromBlock(data)
}

// configFromBlock decodes a config block: its one envelope's payload is a
// ConfigEnvelope holding the configuration.
func configFromBlock(data []byte) (*cb.Config, uint64, error) {
	block := &cb.Block{}
	if err := proto.Unmarshal(data, block); err != nil {
		return nil, 0, fmt.Errorf("decode config block: %w", err)
	}
	if block.Header == nil || block.Data == nil || len(block.Data.Data) != 1 {
		return nil, 0, errors.New("decode config block: want a block with one envelope")
	}
	env := &cb.Envelope{}
	if err := proto.Unmarshal(block.Data.Data[0], env); err != nil {
		return nil, 0, fmt.Errorf("decode config block envelope: %w", err)
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		return nil, 0, fmt.Errorf("decode config block payload: %w", err)
	}
	ch := &cb.ChannelHeader{}
	if payload.Header == nil {
		return nil, 0, errors.New("decode config block: payload without header")
	}
	if err := proto.Unmarshal(payload.Header.ChannelHeader, ch); err != nil {
		return nil, 0, fmt.Errorf("decode config block channel header: %w", err)
	}
	if ch.Type != int32(cb.HeaderType_CONFIG) {
		return nil, 0, fmt.Errorf("decode config block: block %d holds a %s transaction, not CONFIG", block.Header.Number, cb.HeaderType(ch.Type))
	}
	ce := &cb.ConfigEnvelope{}
	if err := proto.Unmarshal(payload.Data, ce); err != nil {
		return nil, 0, fmt.Errorf("decode config envelope: %w", err)
	}
	if ce.Config == nil || ce.Config.ChannelGroup == nil {
		return nil, 0, errors.New("decode config block: no configuration")
	}
	return ce.Config, block.Header.Number, nil
}

// submitConfigUpdate sends the signed envelope to the orderers with the
// peer CLI as the submitting org's admin (which adds that admin's
// signature, the same identity as the first one: Fabric counts it once).
func (n *Network) submitConfigUpdate(ctx context.Context, org *OrgState, envelope string, u ChannelUpdate) error {
	oargs, err := n.ordererArgs()
	if err != nil {
		return err
	}
	args := append([]string{"channel", "update", "-f", envelope, "-c", n.state.Channel}, oargs...)
	var refused *ConfigUpdateRefusedError
	err = retry(ctx, 30*time.Second, func() error {
		_, err := n.peerCLI(ctx, org, args...)
		if err == nil {
			return nil
		}
		msg := err.Error()
		// The orderer's verdict (BAD_REQUEST, FORBIDDEN) is final for this
		// envelope; no Raft leader for a moment (SERVICE_UNAVAILABLE) is not.
		if i := strings.Index(msg, "got unexpected status:"); i >= 0 && !strings.Contains(msg, "SERVICE_UNAVAILABLE") {
			refused = &ConfigUpdateRefusedError{Description: u.Description, Signers: u.Signers, Reason: strings.TrimSpace(msg[i:])}
			return nil
		}
		return err
	})
	if refused != nil {
		return refused
	}
	return err
}

// waitConfigApplied waits until the orderers serve a configuration of at
// least sequence and every running orderer and peer has committed the block
// that carries it; it returns that block's number.
func (n *Network) waitConfigApplied(ctx context.Context, org *OrgState, sequence uint64) (uint64, error) {
	var block uint64
	if err := retry(ctx, 60*time.Second, func() error {
		cfg, num, err := n.fetchChannelConfig(ctx, org)
		if err != nil {
			return err
		}
		if cfg.Sequence < sequence {
			return fmt.Errorf("the orderers still serve config sequence %d, want %d", cfg.Sequence, sequence)
		}
		block = num
		return nil
	}); err != nil {
		return 0, err
	}
	hc, err := n.ordererAdminClient()
	if err != nil {
		return 0, err
	}
	err = retry(ctx, 60*time.Second, func() error {
		var behind []string
		for _, nd := range n.state.Nodes {
			if !nd.Running() || n.state.isPending(nd.Org) {
				continue // a created org's peer joins the channel later
			}
			var (
				h   uint64
				err error
			)
			switch nd.Kind {
			case KindPeer:
				h, err = peerHeight(ctx, nd, n.state.Channel)
			case KindOrderer:
				var info *ordererChannel
				info, err = ordererChannelInfo(ctx, hc, nd.addrOf(PortAdmin), n.state.Channel)
				if info != nil {
					h = info.Height
				}
			default:
				continue
			}
			if err != nil {
				behind = append(behind, fmt.Sprintf("%s: %v", nd.Name, err))
			} else if h <= block {
				behind = append(behind, fmt.Sprintf("%s at height %d", nd.Name, h))
			}
		}
		if len(behind) > 0 {
			return fmt.Errorf("config block %d not yet committed by %s", block, strings.Join(behind, "; "))
		}
		return nil
	})
	return block, err
}
