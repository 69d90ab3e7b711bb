// Package trust holds the trust core of the offline receipt verifier: given a
// Hyperledger Fabric v2.5 channel configuration, it validates signers against
// the channel's MSPs and decides whether signatures satisfy the channel's
// policies (/Channel/Orderer/BlockValidation for a block's orderer signatures,
// /Channel/Application/Endorsement for a transaction's endorsements) the way
// Fabric's MSP, cauthdsl and implicit-meta policies decide it.
//
// It is pure: no network, no Fabric SDK, no global state; only protobuf
// decoding and the standard library's crypto. Refusals say precisely why.
package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// Channel is what one channel configuration says about who may sign what.
type Channel struct {
	id          string
	sequence    uint64
	msps        map[string]*mspInfo
	ordererMSPs []string
	appMSPs     []string
	appOrgs     map[string]string // MSP ID → its /Channel/Application/<org> group path
	root        *group
}

// FromConfigBlock parses a config block: its data holds exactly one Envelope,
// whose payload is of type CONFIG and holds a ConfigEnvelope. The block's data
// hash must match its header.
func FromConfigBlock(b *common.Block) (*Channel, error) {
	switch {
	case b == nil:
		return nil, errors.New("config block is nil")
	case b.GetHeader() == nil:
		return nil, errors.New("config block has no header")
	case len(b.GetData().GetData()) != 1:
		return nil, fmt.Errorf("config block %d holds %d envelopes, and a config block holds exactly one", b.GetHeader().GetNumber(), len(b.GetData().GetData()))
	}
	n := b.GetHeader().GetNumber()
	if h := sha256.Sum256(b.GetData().GetData()[0]); !bytes.Equal(h[:], b.GetHeader().GetDataHash()) {
		return nil, fmt.Errorf("config block %d: its data does not match the data hash in its header", n)
	}
	env := &common.Envelope{}
	if err := proto.Unmarshal(b.GetData().GetData()[0], env); err != nil {
		return nil, fmt.Errorf("config block %d: envelope does not decode: %w", n, err)
	}
	payload := &common.Payload{}
	if err := proto.Unmarshal(env.GetPayload(), payload); err != nil {
		return nil, fmt.Errorf("config block %d: payload does not decode: %w", n, err)
	}
	chdr := &common.ChannelHeader{}
	if err := proto.Unmarshal(payload.GetHeader().GetChannelHeader(), chdr); err != nil {
		return nil, fmt.Errorf("config block %d: channel header does not decode: %w", n, err)
	}
	if t := common.HeaderType(chdr.GetType()); t != common.HeaderType_CONFIG {
		return nil, fmt.Errorf("config block %d: its envelope is of type %s, not CONFIG", n, t)
	}
	ce := &common.ConfigEnvelope{}
	if err := proto.Unmarshal(payload.GetData(), ce); err != nil {
		return nil, fmt.Errorf("config block %d: config envelope does not decode: %w", n, err)
	}
	c, err := FromConfig(chdr.GetChannelId(), ce.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("config block %d: %w", n, err)
	}
	return c, nil
}

// FromConfig builds a Channel from a channel configuration (the "Channel"
// group tree) and the channel's ID. Like Fabric, it refuses a configuration
// whose MSPs do not set up or whose policies do not compile.
func FromConfig(channelID string, cfg *common.Config) (*Channel, error) {
	if channelID == "" {
		return nil, errors.New("channel config: no channel ID")
	}
	if cfg.GetChannelGroup() == nil {
		return nil, errors.New("channel config: no channel group")
	}
	c := &Channel{id: channelID, sequence: cfg.GetSequence(), msps: map[string]*mspInfo{}, appOrgs: map[string]string{}}
	for _, section := range []string{"Orderer", "Application"} {
		orgs := cfg.GetChannelGroup().GetGroups()[section].GetGroups()
		for _, name := range sortedKeys(orgs) {
			path := "/Channel/" + section + "/" + name
			v := orgs[name].GetValues()["MSP"]
			if v == nil {
				return nil, fmt.Errorf("channel config: org group %s has no MSP value", path)
			}
			conf := &msp.MSPConfig{}
			if err := proto.Unmarshal(v.GetValue(), conf); err != nil {
				return nil, fmt.Errorf("channel config: MSP value of %s does not decode: %w", path, err)
			}
			m, err := newMSP(conf)
			if err != nil {
				return nil, fmt.Errorf("channel config: %s: %w", path, err)
			}
			if prev, ok := c.msps[m.id]; ok && !proto.Equal(prev.conf, conf) {
				return nil, fmt.Errorf("channel config: %s defines MSP %s differently from another org group", path, m.id)
			} else if !ok {
				c.msps[m.id] = m
			}
			if section == "Orderer" {
				c.ordererMSPs = append(c.ordererMSPs, m.id)
			} else {
				c.appMSPs = append(c.appMSPs, m.id)
				c.appOrgs[m.id] = path
			}
		}
	}
	c.ordererMSPs, c.appMSPs = sortedSet(c.ordererMSPs), sortedSet(c.appMSPs)
	var err error
	if c.root, err = newGroup("/Channel", cfg.GetChannelGroup()); err != nil {
		return nil, fmt.Errorf("channel config: %w", err)
	}
	return c, nil
}

// ID is the channel's ID.
func (c *Channel) ID() string { return c.id }

// Sequence is the configuration's sequence number.
func (c *Channel) Sequence() uint64 { return c.sequence }

// OrdererMSPs are the MSP IDs of the /Channel/Orderer/<org> groups, sorted.
func (c *Channel) OrdererMSPs() []string { return slices.Clone(c.ordererMSPs) }

// ApplicationOrgPath is the config path of the application org group whose
// MSP is mspID (as /Channel/Application/Org1), or false.
func (c *Channel) ApplicationOrgPath(mspID string) (string, bool) {
	p, ok := c.appOrgs[mspID]
	return p, ok
}

// ApplicationMSPs are the MSP IDs of the /Channel/Application/<org> groups, sorted.
func (c *Channel) ApplicationMSPs() []string { return slices.Clone(c.appMSPs) }

// MSPCertificates returns an MSP's root and intermediate CA certificates.
func (c *Channel) MSPCertificates(mspID string) (roots, intermediates []*x509.Certificate, err error) {
	m, ok := c.msps[mspID]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("MSP %s is not in the channel configuration", mspID)
	case m.unsupported != "":
		return nil, nil, errors.New(m.unsupported)
	}
	return slices.Clone(m.roots), slices.Clone(m.intermediates), nil
}

// Identity validates a serialized identity against its MSP as of time at: the
// MSP is in the configuration; the identity is exactly one PEM certificate with
// an ECDSA P-256 or P-384 key, not a CA; it chains uniquely to a root of the
// MSP through its intermediates, every certificate valid at at; its issuer
// issued no intermediate of the MSP; no certificate of the chain is revoked by
// a CRL its issuer signed; it carries one of the MSP's OUs if the MSP lists
// any; and, with NodeOUs on, exactly one NodeOU role, from the pinned CA if
// the role pins one. Refusals are *IdentityError.
func (c *Channel) Identity(serialized []byte, at time.Time) (*Identity, error) {
	mspID, cert, certErr, err := parseSerialized(serialized)
	if err != nil {
		return nil, &IdentityError{Reason: err.Error()}
	}
	fail := func(reason string) error {
		return &IdentityError{MSPID: mspID, Subject: subject(cert), Reason: reason}
	}
	m, ok := c.msps[mspID]
	switch {
	case !ok:
		return nil, fail("MSP " + mspID + " is not in the channel configuration")
	case m.unsupported != "":
		return nil, fail(m.unsupported)
	case certErr != nil:
		return nil, fail(certErr.Error())
	}
	role, err := m.validate(cert, at)
	if err != nil {
		return nil, fail(err.Error())
	}
	return &Identity{MSPID: mspID, Cert: cert, Role: role, listedAdmin: m.admins[certKey(cert)], key: mspID + "\x00" + certKey(cert), mspi: m}, nil
}

// Verify validates the signer as Identity does and checks the signature:
// ASN.1 DER ECDSA over SHA-256 of Data (SHA3-256 for an MSP configured with
// the SHA3 hash family), with low S (s <= N/2) as Fabric requires. A bad
// signature is a *SignatureError.
func (c *Channel) Verify(sd SignedData, at time.Time) (*Identity, error) {
	id, err := c.Identity(sd.Identity, at)
	if err != nil {
		return nil, err
	}
	if err := checkSignature(id, sd.Data, sd.Signature); err != nil {
		return nil, &SignatureError{MSPID: id.MSPID, Subject: subject(id.Cert), Reason: err.Error()}
	}
	return id, nil
}

// Satisfied reports, for display, whose signatures are valid: MSP ID → the
// roles seen (the NodeOU roles, "admin" for a listed admin, "member" for an
// identity of an MSP with NodeOUs off), sorted.
func (c *Channel) Satisfied(signed []SignedData, at time.Time) map[string][]string {
	out := map[string][]string{}
	for _, o := range c.signers(signed, at) {
		if o.id == nil {
			continue
		}
		r := o.id.Role
		if r == "" {
			r = "member"
		}
		roles := append(out[o.id.MSPID], r)
		if o.id.IsAdmin() {
			roles = append(roles, RoleAdmin)
		}
		out[o.id.MSPID] = sortedSet(roles)
	}
	return out
}

// offer is one offered signature: its valid identity, or why it counts for nothing.
type offer struct {
	label  string
	id     *Identity
	reason string
}

// signers verifies a signature set as Fabric's SignatureSetToValidIdentities
// does: a signature whose identity already signed validly is a duplicate and
// is not verified again; an invalid one is dropped (and its reason kept).
func (c *Channel) signers(signed []SignedData, at time.Time) []offer {
	offers := make([]offer, len(signed))
	seen := map[string]int{}
	for i, sd := range signed {
		o := &offers[i]
		mspID, cert, _, err := parseSerialized(sd.Identity)
		if err != nil {
			o.reason = err.Error()
			continue
		}
		o.label = label(mspID, subject(cert))
		if cert != nil {
			if j, dup := seen[mspID+"\x00"+certKey(cert)]; dup {
				o.reason = fmt.Sprintf("a duplicate of signature %d, and a signer counts once", j)
				continue
			}
		}
		id, err := c.Verify(sd, at)
		var ie *IdentityError
		var se *SignatureError
		switch {
		case errors.As(err, &ie):
			o.reason = ie.Reason
		case errors.As(err, &se):
			o.reason = se.Reason
		case err != nil:
			o.reason = err.Error()
		default:
			o.id = id
			seen[id.key] = i
		}
	}
	return offers
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedSet(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
