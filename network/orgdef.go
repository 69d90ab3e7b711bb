package network

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/hyperledger/fabric-config/protolator"
	"github.com/hyperledger/fabric-config/protolator/protoext/peerext"
	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	pb "github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/protobuf/proto"
)

// MaxOrgDefinitionBytes bounds an org definition file: a few certificates
// and policies, far below this.
const MaxOrgDefinitionBytes = 1 << 20

// ErrMalformedOrgDefinition is returned for an org definition file that is
// not a complete application org definition.
var ErrMalformedOrgDefinition = errors.New("malformed org definition")

// OrgDefinition is an application org's channel definition: the config
// group that `configtxgen -printOrg` prints as JSON, holding the org's MSP
// (root and TLS root certificates, NodeOUs), its policies and its anchor
// peers, and no private key. It is the only thing a joining org hands the
// channel's members.
type OrgDefinition struct {
	// Name is the org's name in the channel configuration (the group's
	// key): its MSP ID without the "MSP" suffix.
	Name  string
	MSPID string
	// AnchorPeers are host:port of the org's anchor peers.
	AnchorPeers []string
	group       *cb.ConfigGroup
}

// orgPolicies are the policies an application org definition must have:
// the channel's implicit policies (Admins, Readers, Writers, and the
// chaincode lifecycle's Endorsement) are made of them.
var orgPolicies = []string{"Admins", "Endorsement", "Readers", "Writers"}

// ParseOrgDefinition decodes and checks an org definition (the JSON of
// `configtxgen -printOrg`). It is strict: unknown or repeated fields, sub
// groups, values other than MSP and AnchorPeers, an MSP that is not a
// Fabric MSP with NodeOUs and parseable CA certificates, a missing policy,
// or a policy naming another MSP are refused.
func ParseOrgDefinition(data []byte) (*OrgDefinition, error) {
	def, err := parseOrgDefinition(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedOrgDefinition, err)
	}
	return def, nil
}

func parseOrgDefinition(data []byte) (*OrgDefinition, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	if len(data) > MaxOrgDefinitionBytes {
		return nil, fmt.Errorf("%d bytes, more than the %d an org definition may have", len(data), MaxOrgDefinitionBytes)
	}
	if err := checkJSONObjectKeys(data); err != nil {
		return nil, err
	}
	group := &cb.ConfigGroup{}
	if err := protolator.DeepUnmarshalJSON(bytes.NewReader(data), &peerext.DynamicApplicationOrgGroup{ConfigGroup: group}); err != nil {
		return nil, fmt.Errorf("not the JSON of an application org group (configtxgen -printOrg): %w", err)
	}
	if len(group.Groups) > 0 {
		return nil, errors.New("an application org has no sub-groups")
	}
	if group.ModPolicy != "Admins" {
		return nil, fmt.Errorf("mod_policy %q: an org's definition is governed by its own Admins policy", group.ModPolicy)
	}
	for name := range group.Values {
		if name != "MSP" && name != "AnchorPeers" {
			return nil, fmt.Errorf("value %q: an application org definition holds only MSP and AnchorPeers", name)
		}
	}
	msp, err := definitionMSP(group)
	if err != nil {
		return nil, err
	}
	def := &OrgDefinition{MSPID: msp.Name, group: group}
	def.Name = strings.TrimSuffix(msp.Name, "MSP")
	if def.Name == msp.Name || !validOrgName(def.Name) {
		return nil, fmt.Errorf("MSP ID %q: want <Name>MSP, Name letters and digits starting with a letter (at most 32)", msp.Name)
	}
	if err := checkOrgPolicies(group, msp.Name); err != nil {
		return nil, err
	}
	if def.AnchorPeers, err = definitionAnchorPeers(group); err != nil {
		return nil, err
	}
	return def, nil
}

// definitionMSP checks the MSP value: a Fabric MSP with its name, at least
// one root CA and TLS root CA certificate, all parseable CA certificates,
// and NodeOUs (the policies name the admin, peer and client roles).
func definitionMSP(group *cb.ConfigGroup) (*mb.FabricMSPConfig, error) {
	v := group.Values["MSP"]
	if v == nil {
		return nil, errors.New("no MSP value")
	}
	if v.ModPolicy != "Admins" {
		return nil, fmt.Errorf("MSP value: mod_policy %q, want Admins", v.ModPolicy)
	}
	m := &mb.MSPConfig{}
	if err := proto.Unmarshal(v.Value, m); err != nil {
		return nil, fmt.Errorf("MSP value: %w", err)
	}
	if m.Type != 0 {
		return nil, fmt.Errorf("MSP type %d: only Fabric (X.509) MSPs are supported", m.Type)
	}
	f := &mb.FabricMSPConfig{}
	if err := proto.Unmarshal(m.Config, f); err != nil {
		return nil, fmt.Errorf("MSP config: %w", err)
	}
	if f.Name == "" {
		return nil, errors.New("MSP has no name (MSP ID)")
	}
	if len(f.RootCerts) == 0 {
		return nil, fmt.Errorf("MSP %s has no root CA certificate", f.Name)
	}
	if len(f.TlsRootCerts) == 0 {
		return nil, fmt.Errorf("MSP %s has no TLS root CA certificate", f.Name)
	}
	for what, certs := range map[string][][]byte{"root": f.RootCerts, "intermediate": f.IntermediateCerts, "TLS root": f.TlsRootCerts, "TLS intermediate": f.TlsIntermediateCerts} {
		for i, c := range certs {
			if err := checkCACert(c); err != nil {
				return nil, fmt.Errorf("MSP %s %s certificate %d: %w", f.Name, what, i+1, err)
			}
		}
	}
	if f.FabricNodeOus == nil || !f.FabricNodeOus.Enable {
		return nil, fmt.Errorf("MSP %s: NodeOUs must be enabled (the org's policies name its admin, peer and client roles)", f.Name)
	}
	return f, nil
}

func checkCACert(pemBytes []byte) error {
	b, rest := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("not one PEM-encoded certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	if !c.IsCA {
		return errors.New("not a CA certificate")
	}
	return nil
}

// checkOrgPolicies requires the org policies, each a signature policy all
// of whose principals are roles of mspID: a definition cannot hand
// another org's members the newcomer's rights, nor its own to anyone else.
func checkOrgPolicies(group *cb.ConfigGroup, mspID string) error {
	for _, name := range orgPolicies {
		if group.Policies[name] == nil {
			return fmt.Errorf("no %s policy (want %s)", name, strings.Join(orgPolicies, ", "))
		}
	}
	names := make([]string, 0, len(group.Policies))
	for name := range group.Policies {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		cp := group.Policies[name]
		if cp.GetPolicy() == nil || cp.Policy.Type != int32(cb.Policy_SIGNATURE) {
			return fmt.Errorf("policy %s: want a signature policy", name)
		}
		env := &cb.SignaturePolicyEnvelope{}
		if err := proto.Unmarshal(cp.Policy.Value, env); err != nil {
			return fmt.Errorf("policy %s: %w", name, err)
		}
		if env.Rule == nil || len(env.Identities) == 0 {
			return fmt.Errorf("policy %s: no rule or no principal", name)
		}
		for _, id := range env.Identities {
			if id.PrincipalClassification != mb.MSPPrincipal_ROLE {
				return fmt.Errorf("policy %s: only role principals (e.g. %s.admin) are accepted", name, mspID)
			}
			role := &mb.MSPRole{}
			if err := proto.Unmarshal(id.Principal, role); err != nil {
				return fmt.Errorf("policy %s: %w", name, err)
			}
			if role.MspIdentifier != mspID {
				return fmt.Errorf("policy %s names MSP %q: an org's policies may name only its own MSP %s", name, role.MspIdentifier, mspID)
			}
		}
	}
	return nil
}

func definitionAnchorPeers(group *cb.ConfigGroup) ([]string, error) {
	v := group.Values["AnchorPeers"]
	if v == nil {
		return nil, nil
	}
	aps := &pb.AnchorPeers{}
	if err := proto.Unmarshal(v.Value, aps); err != nil {
		return nil, fmt.Errorf("AnchorPeers: %w", err)
	}
	out := make([]string, 0, len(aps.AnchorPeers))
	for _, ap := range aps.AnchorPeers {
		if ap.Host == "" || strings.ContainsAny(ap.Host, " /:@") || ap.Port <= 0 || ap.Port > 65535 {
			return nil, fmt.Errorf("anchor peer %q port %d: want a host name or address and a port 1-65535", ap.Host, ap.Port)
		}
		out = append(out, net.JoinHostPort(ap.Host, strconv.Itoa(int(ap.Port))))
	}
	return out, nil
}

// checkJSONObjectKeys refuses a document with a repeated key in any object
// (encoding/json would keep the last silently) or anything after it.
func checkJSONObjectKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkJSON(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// maxJSONDepth bounds nesting; a definition is a few levels deep.
const maxJSONDepth = 32

func walkJSON(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested more than %d levels", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		if depth == 0 {
			return errors.New("not a JSON object")
		}
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return fmt.Errorf("not JSON: %w", err)
			}
			key, _ := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q appears twice in one object", key)
			}
			seen[key] = true
			if err := walkJSON(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		if depth == 0 {
			return errors.New("not a JSON object")
		}
		for dec.More() {
			if err := walkJSON(dec, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}

// addApplicationOrg is the config change that adds def's org to the
// channel's Application group, refusing an org whose MSP ID or name the
// channel already has.
func addApplicationOrg(def *OrgDefinition) ConfigChange {
	return func(cfg *cb.Config) error {
		app := cfg.GetChannelGroup().GetGroups()["Application"]
		if app == nil {
			return errors.New("the channel configuration has no Application group")
		}
		names := make([]string, 0, len(app.Groups))
		for name := range app.Groups {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if strings.EqualFold(name, def.Name) {
				return fmt.Errorf("%w: the channel has an org named %s", ErrOrgExists, name)
			}
			if id, err := groupMSPID(app.Groups[name]); err == nil && id == def.MSPID {
				return fmt.Errorf("%w: org %s of the channel has MSP ID %s", ErrOrgExists, name, id)
			}
		}
		if app.Groups == nil {
			app.Groups = map[string]*cb.ConfigGroup{}
		}
		app.Groups[def.Name] = proto.Clone(def.group).(*cb.ConfigGroup)
		return nil
	}
}

// setAnchorPeers is the config change that makes peers the anchor peers
// of the application org whose MSP ID is mspID; the org's own Admins
// policy governs the value. configtxgen -printOrg leaves anchor peers out
// of a definition: the org sets them itself once it is a member.
func setAnchorPeers(mspID string, peers []*pb.AnchorPeer) ConfigChange {
	return func(cfg *cb.Config) error {
		app := cfg.GetChannelGroup().GetGroups()["Application"]
		if app == nil {
			return errors.New("the channel configuration has no Application group")
		}
		for _, g := range app.Groups {
			if id, err := groupMSPID(g); err != nil || id != mspID {
				continue
			}
			v, err := proto.Marshal(&pb.AnchorPeers{AnchorPeers: peers})
			if err != nil {
				return err
			}
			if g.Values == nil {
				g.Values = map[string]*cb.ConfigValue{}
			}
			if old := g.Values["AnchorPeers"]; old != nil && bytes.Equal(old.Value, v) {
				return nil
			}
			g.Values["AnchorPeers"] = &cb.ConfigValue{ModPolicy: "Admins", Value: v}
			return nil
		}
		return fmt.Errorf("%w: no application org with MSP ID %s", ErrNotAdded, mspID)
	}
}

// groupMSPID is the MSP ID of an application org's config group.
func groupMSPID(g *cb.ConfigGroup) (string, error) {
	v := g.GetValues()["MSP"]
	if v == nil {
		return "", errors.New("no MSP value")
	}
	m := &mb.MSPConfig{}
	if err := proto.Unmarshal(v.Value, m); err != nil {
		return "", err
	}
	if m.Type != 0 {
		return "", fmt.Errorf("MSP type %d", m.Type)
	}
	f := &mb.FabricMSPConfig{}
	if err := proto.Unmarshal(m.Config, f); err != nil {
		return "", err
	}
	return f.Name, nil
}

// ErrOrgExists is returned when an org to add is already in the channel.
var ErrOrgExists = errors.New("organisation already in the channel")
