package client

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"gopkg.in/yaml.v3"

	"github.com/iotledger/iotledger/chaincode/reading"
)

// ProfileFormat is the shape a connection profile file has.
type ProfileFormat string

// The formats a connection profile file may have, each as JSON or YAML.
const (
	// FormatIotledger is this project's own profile (Profile).
	FormatIotledger ProfileFormat = "iotledger"
	// FormatCCP is Fabric's common connection profile, as fabric-samples'
	// test-network writes it (organizations/peerOrganizations/<org>/connection-<org>.json).
	FormatCCP ProfileFormat = "ccp"
)

// MaxProfileBytes bounds a connection profile file: a profile is read
// before anything else is known about its author.
const MaxProfileBytes = 1 << 20

// CCP is a Fabric common connection profile: the fields of the format that
// iotledger reads, and the sections it accepts without using. Sections it
// reads are decoded strictly (an unknown key is refused); the SDK settings
// iotledger's client sets itself (timeouts, logging, local stores, the
// orderers: the gateway peer reaches them) are kept as raw JSON.
type CCP struct {
	Name        string         `json:"name"`
	Version     jsontext.Value `json:"version,omitzero"`
	Description string         `json:"description,omitempty"`
	XType       string         `json:"x-type,omitempty"`
	Client      CCPClient      `json:"client"`
	// Channels: iotledger takes the channel name when there is one.
	Channels               map[string]jsontext.Value  `json:"channels,omitempty"`
	Organizations          map[string]CCPOrganization `json:"organizations"`
	Orderers               map[string]jsontext.Value  `json:"orderers,omitempty"`
	Peers                  map[string]CCPPeer         `json:"peers"`
	CertificateAuthorities map[string]CCPCA           `json:"certificateAuthorities,omitempty"`
}

// CCPClient is the profile's "client" section: whose profile it is.
type CCPClient struct {
	Organization    string         `json:"organization"`
	Connection      jsontext.Value `json:"connection,omitzero"`
	Logging         jsontext.Value `json:"logging,omitzero"`
	CryptoConfig    jsontext.Value `json:"cryptoconfig,omitzero"`
	CredentialStore jsontext.Value `json:"credentialStore,omitzero"`
	TLSCerts        *CCPClientTLS  `json:"tlsCerts,omitempty"`
}

// CCPClientTLS is client.tlsCerts. A client certificate for mutual TLS
// towards the peers is refused: iotledger's client does not present one.
type CCPClientTLS struct {
	SystemCertPool jsontext.Value `json:"systemCertPool,omitzero"`
	Client         jsontext.Value `json:"client,omitzero"`
}

// CCPOrganization is one entry of "organizations".
type CCPOrganization struct {
	MSPID                  string   `json:"mspid"`
	Peers                  []string `json:"peers,omitempty"`
	CertificateAuthorities []string `json:"certificateAuthorities,omitempty"`
	// Identities in the SDKs' own layouts: not read (iotledger's come from
	// the overlay, see LoadProfileWithOverlay).
	CryptoPath      jsontext.Value `json:"cryptoPath,omitzero"`
	Users           jsontext.Value `json:"users,omitzero"`
	AdminPrivateKey jsontext.Value `json:"adminPrivateKey,omitzero"`
	SignedCert      jsontext.Value `json:"signedCert,omitzero"`
}

// CCPPeer is one entry of "peers".
type CCPPeer struct {
	URL         string                    `json:"url"`
	EventURL    jsontext.Value            `json:"eventUrl,omitzero"`
	GRPCOptions map[string]jsontext.Value `json:"grpcOptions,omitempty"`
	TLSCACerts  CCPTLSCACerts             `json:"tlsCACerts"`
}

// CCPCA is one entry of "certificateAuthorities".
type CCPCA struct {
	URL         string         `json:"url"`
	CAName      string         `json:"caName,omitempty"`
	TLSCACerts  CCPTLSCACerts  `json:"tlsCACerts"`
	HTTPOptions jsontext.Value `json:"httpOptions,omitzero"`
	Registrar   jsontext.Value `json:"registrar,omitzero"`
}

// CCPTLSCACerts is a "tlsCACerts" entry: PEM inline (one string or a list,
// as test-network writes for peers and CAs) or a file.
type CCPTLSCACerts struct {
	PEM    jsontext.Value `json:"pem,omitzero"`
	Path   string         `json:"path,omitempty"`
	Client jsontext.Value `json:"client,omitzero"` // mutual TLS towards a CA: not used
}

// serverNameOptions are the grpcOptions keys the SDKs use for the TLS
// server name to verify.
var serverNameOptions = []string{"ssl-target-name-override", "hostnameOverride", "grpc.ssl_target_name_override"}

// The top-level keys of each format. The sets are disjoint, so a file's
// keys say which format it is.
var (
	iotledgerKeys = []string{"network", "channel", "chaincode", "org", "mspId", "peer", "ca", "identities", "hubTLS"}
	ccpKeys       = []string{"name", "version", "description", "x-type", "client", "channels", "organizations", "orderers", "peers", "certificateAuthorities"}
)

// MissingField is a field the profile's format cannot give.
type MissingField struct {
	Field string // field of the iotledger profile (an overlay sets it)
	What  string // what it is, for a person
}

// IncompleteProfileError says which fields a connection profile of another
// format (a Fabric common connection profile) does not carry. They come from
// an overlay: a file in the iotledger format with only those fields (see
// LoadProfileWithOverlay).
type IncompleteProfileError struct {
	Path    string
	Format  ProfileFormat
	Missing []MissingField
}

func (e *IncompleteProfileError) Error() string {
	where := "connection profile"
	if e.Path != "" {
		where += " " + e.Path
	}
	parts := make([]string, 0, len(e.Missing))
	for _, m := range e.Missing {
		parts = append(parts, m.Field+" ("+m.What+")")
	}
	return fmt.Sprintf("%s is a Fabric common connection profile, which does not give %s: supply them in an overlay, an iotledger profile holding only those fields",
		where, strings.Join(parts, ", "))
}

// OverlayExample is an overlay that supplies what a common connection
// profile lacks, for error messages and docs.
const OverlayExample = `{"channel": "mychannel", "chaincode": "iotledger", "identities": {"operator": {"cert": "users/operator/msp/signcerts/cert.pem", "key": "users/operator/msp/keystore/key.pem"}}}`

// parsedProfile is a profile file decoded, before it is completed and
// validated.
type parsedProfile struct {
	format ProfileFormat
	p      *Profile
	// channels are the channels a CCP lists when it lists several: the
	// overlay must pick one of them.
	channels []string
}

// profileJSON returns a profile file as JSON: JSON as it is, YAML converted.
// YAML is decoded by yaml.v3, which refuses duplicate keys; JSON is checked
// by the strict decoder later.
func profileJSON(data []byte) ([]byte, error) {
	if len(data) > MaxProfileBytes {
		return nil, fmt.Errorf("%d bytes is more than the %d a connection profile may have", len(data), MaxProfileBytes)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return data, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty")
	} else if err != nil {
		return nil, fmt.Errorf("decode YAML: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode YAML: more than one document")
	}
	v, err := jsonCompatible(doc, "")
	if err != nil {
		return nil, fmt.Errorf("decode YAML: %w", err)
	}
	out, err := jsonv2.Marshal(v, jsonv2.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("decode YAML: %w", err)
	}
	return out, nil
}

// jsonCompatible checks that a decoded YAML value has a JSON meaning: keys
// are strings and numbers are finite.
func jsonCompatible(v any, at string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c, err := jsonCompatible(e, at+"/"+k)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case map[any]any:
		return nil, fmt.Errorf("a key at %q is not a string", at)
	case []any:
		for i, e := range x {
			c, err := jsonCompatible(e, fmt.Sprintf("%s/%d", at, i))
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case nil, string, bool, int, int64, uint64:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("the number at %q is not finite", at)
		}
		return x, nil
	default:
		// Timestamps and other typed scalars: their string form.
		return fmt.Sprint(x), nil
	}
}

// DetectProfileFormat says which format a connection profile file (JSON or
// YAML) has, from its top-level keys. A file with keys of both formats, or
// with a key of neither, is refused with a *ProfileError naming the key.
func DetectProfileFormat(data []byte) (ProfileFormat, error) {
	js, err := profileJSON(data)
	if err != nil {
		return "", err
	}
	return detectFormat(js)
}

func detectFormat(js []byte) (ProfileFormat, error) {
	var top map[string]jsontext.Value
	if err := reading.DecodeStrict(js, &top); err != nil {
		return "", fmt.Errorf("decode connection profile: %w", err)
	}
	var own, ccp []string
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case slices.Contains(iotledgerKeys, k):
			own = append(own, k)
		case slices.Contains(ccpKeys, k):
			ccp = append(ccp, k)
		default:
			return "", &ProfileError{Field: k, Msg: "is a field of neither an iotledger connection profile nor a Fabric common connection profile"}
		}
	}
	switch {
	case len(own) > 0 && len(ccp) > 0:
		// The odd one out is named: a CCP with one iotledger field, or the reverse.
		if len(ccp) < len(own) {
			return "", &ProfileError{Field: ccp[0], Msg: fmt.Sprintf("is a field of a Fabric common connection profile, but %q is one of an iotledger profile: a file is one or the other", own[0])}
		}
		return "", &ProfileError{Field: own[0], Msg: fmt.Sprintf("is a field of an iotledger profile, but %q is one of a Fabric common connection profile: a file is one or the other (give iotledger's fields in an overlay)", ccp[0])}
	case len(ccp) > 0:
		return FormatCCP, nil
	case len(own) > 0:
		return FormatIotledger, nil
	}
	return "", &ProfileError{Field: "(top level)", Msg: "is empty: expected an iotledger profile or a Fabric common connection profile"}
}

// parseProfileFile decodes a profile file of either format into a Profile
// that may still lack fields. Nothing is validated yet.
func parseProfileFile(data []byte) (*parsedProfile, error) {
	js, err := profileJSON(data)
	if err != nil {
		return nil, err
	}
	f, err := detectFormat(js)
	if err != nil {
		return nil, err
	}
	if f == FormatIotledger {
		var p Profile
		if err := reading.DecodeStrict(js, &p); err != nil {
			return nil, fmt.Errorf("decode connection profile: %w", err)
		}
		return &parsedProfile{format: f, p: &p}, nil
	}
	var c CCP
	if err := reading.DecodeStrict(js, &c); err != nil {
		return nil, fmt.Errorf("decode common connection profile: %w", err)
	}
	return c.profile()
}

// ParseCCP maps a Fabric common connection profile (JSON or YAML) onto a
// Profile: the network name, the client organisation's MSP ID, its first
// listed peer (address, TLS root, server name override), its first listed
// CA, and the channel when the profile lists exactly one. The result lacks
// what a CCP does not carry (chaincode, identities, maybe the channel):
// Profile.Validate fails until an overlay supplies them. Paths in the CCP
// are left as written.
func ParseCCP(data []byte) (*Profile, error) {
	pp, err := parseProfileFile(data)
	if err != nil {
		return nil, err
	}
	if pp.format != FormatCCP {
		return nil, &ProfileError{Field: "(top level)", Msg: "is an iotledger profile, not a Fabric common connection profile"}
	}
	return pp.p, nil
}

// profile maps the CCP onto a partial Profile.
func (c *CCP) profile() (*parsedProfile, error) {
	org, err := c.clientOrg()
	if err != nil {
		return nil, err
	}
	o := c.Organizations[org]
	orgField := "organizations." + org
	if strings.TrimSpace(o.MSPID) == "" {
		return nil, &ProfileError{Field: orgField + ".mspid", Msg: "is required"}
	}
	if c.Client.TLSCerts != nil && !isNull(c.Client.TLSCerts.Client) {
		return nil, &ProfileError{Field: "client.tlsCerts.client", Msg: "mutual TLS towards the peers is not supported: remove it (iotledger presents no TLS client certificate)"}
	}
	p := &Profile{Network: c.Name, Org: org, MSPID: o.MSPID}
	if len(o.Peers) == 0 {
		return nil, &ProfileError{Field: orgField + ".peers", Msg: "lists no peer: iotledger needs one of the organisation's peers as its gateway"}
	}
	if p.Peer, err = c.peer(o.Peers[0], orgField+".peers"); err != nil {
		return nil, err
	}
	if len(o.CertificateAuthorities) > 0 {
		ca, err := c.ca(o.CertificateAuthorities[0], orgField+".certificateAuthorities")
		if err != nil {
			return nil, err
		}
		p.CA = ca
	}
	pp := &parsedProfile{format: FormatCCP, p: p}
	switch len(c.Channels) {
	case 0:
	case 1:
		for name := range c.Channels {
			p.Channel = name
		}
	default:
		for name := range c.Channels {
			pp.channels = append(pp.channels, name)
		}
		sort.Strings(pp.channels)
	}
	return pp, nil
}

// clientOrg is the organisation the profile is for: client.organization, or
// the only organisation listed.
func (c *CCP) clientOrg() (string, error) {
	names := make([]string, 0, len(c.Organizations))
	for n := range c.Organizations {
		names = append(names, n)
	}
	sort.Strings(names)
	org := c.Client.Organization
	if org == "" {
		if len(names) != 1 {
			return "", &ProfileError{Field: "client.organization", Msg: fmt.Sprintf("is required: say which organisation the profile is for (it lists %s)", listOrNone(names))}
		}
		return names[0], nil
	}
	if _, ok := c.Organizations[org]; !ok {
		return "", &ProfileError{Field: "client.organization", Msg: fmt.Sprintf("%q is not in organizations (it lists %s)", org, listOrNone(names))}
	}
	return org, nil
}

func (c *CCP) peer(name, listField string) (PeerEndpoint, error) {
	pe, ok := c.Peers[name]
	if !ok {
		return PeerEndpoint{}, &ProfileError{Field: listField, Msg: fmt.Sprintf("names peer %q, which is not in peers", name)}
	}
	field := "peers." + name
	u, err := url.Parse(pe.URL)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return PeerEndpoint{}, &ProfileError{Field: field + ".url", Msg: fmt.Sprintf("%q is not a URL of the form grpcs://host:port", pe.URL)}
	}
	switch u.Scheme {
	case "grpcs":
	case "grpc":
		return PeerEndpoint{}, &ProfileError{Field: field + ".url", Msg: fmt.Sprintf("%q is plain text: iotledger reaches peers over TLS only (grpcs://)", pe.URL)}
	default:
		return PeerEndpoint{}, &ProfileError{Field: field + ".url", Msg: fmt.Sprintf("scheme %q is not grpcs", u.Scheme)}
	}
	if !validHostPort(u.Host) {
		return PeerEndpoint{}, &ProfileError{Field: field + ".url", Msg: fmt.Sprintf("%q has no port", pe.URL)}
	}
	ep := PeerEndpoint{Address: u.Host, ServerName: u.Hostname()}
	var from string
	for _, opt := range serverNameOptions {
		raw, ok := pe.GRPCOptions[opt]
		if !ok || isNull(raw) {
			continue
		}
		var s string
		if err := jsonv2.Unmarshal(raw, &s); err != nil || strings.TrimSpace(s) == "" {
			return PeerEndpoint{}, &ProfileError{Field: field + ".grpcOptions." + opt, Msg: "must be a host name"}
		}
		if from != "" && s != ep.ServerName {
			return PeerEndpoint{}, &ProfileError{Field: field + ".grpcOptions." + opt,
				Msg: fmt.Sprintf("%q differs from %s %q: which server name to verify is ambiguous", s, from, ep.ServerName)}
		}
		ep.ServerName, from = s, opt
	}
	ep.TLSCACert, ep.TLSCACertPEM, err = pe.TLSCACerts.roots(field + ".tlsCACerts")
	if err != nil {
		return PeerEndpoint{}, err
	}
	if ep.TLSCACert == "" && ep.TLSCACertPEM == "" {
		return PeerEndpoint{}, &ProfileError{Field: field + ".tlsCACerts", Msg: "is required: the PEM (pem) or file (path) of the peer's TLS CA"}
	}
	return ep, nil
}

func (c *CCP) ca(name, listField string) (*CAEndpoint, error) {
	ca, ok := c.CertificateAuthorities[name]
	if !ok {
		return nil, &ProfileError{Field: listField, Msg: fmt.Sprintf("names CA %q, which is not in certificateAuthorities", name)}
	}
	field := "certificateAuthorities." + name
	ep := &CAEndpoint{URL: ca.URL}
	if !strings.HasPrefix(ca.URL, "https://") && !strings.HasPrefix(ca.URL, "http://") {
		return nil, &ProfileError{Field: field + ".url", Msg: fmt.Sprintf("%q is not an http(s) URL", ca.URL)}
	}
	var err error
	if ep.TLSCACert, ep.TLSCACertPEM, err = ca.TLSCACerts.roots(field + ".tlsCACerts"); err != nil {
		return nil, err
	}
	return ep, nil
}

// roots returns the file or the PEM of the TLS CA certificates.
func (t CCPTLSCACerts) roots(field string) (path, pemText string, err error) {
	if !isNull(t.PEM) && t.Path != "" {
		return "", "", &ProfileError{Field: field, Msg: "gives both pem and path: keep one"}
	}
	if t.Path != "" {
		return t.Path, "", nil
	}
	if isNull(t.PEM) {
		return "", "", nil
	}
	var one string
	var list []string
	switch {
	case jsonv2.Unmarshal(t.PEM, &one) == nil:
		list = []string{one}
	case jsonv2.Unmarshal(t.PEM, &list) == nil:
	default:
		return "", "", &ProfileError{Field: field + ".pem", Msg: "must be a PEM string or a list of them"}
	}
	var b strings.Builder
	for i, s := range list {
		if err := checkCertificatesPEM(s); err != nil {
			f := field + ".pem"
			if len(list) > 1 {
				f = fmt.Sprintf("%s[%d]", f, i)
			}
			return "", "", &ProfileError{Field: f, Msg: err.Error()}
		}
		b.WriteString(strings.TrimSpace(s))
		b.WriteString("\n")
	}
	return "", b.String(), nil
}

// checkCertificatesPEM checks that s holds one or more X.509 certificates
// in PEM and nothing else.
func checkCertificatesPEM(s string) error {
	rest := []byte(strings.TrimSpace(s))
	n := 0
	for len(rest) > 0 {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return errors.New("holds text that is not PEM")
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %q PEM block, not a CERTIFICATE", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("holds a certificate that does not parse: %w", err)
		}
		rest = bytes.TrimSpace(rest)
		n++
	}
	if n == 0 {
		return errors.New("holds no certificate")
	}
	return nil
}

func isNull(v jsontext.Value) bool {
	return len(v) == 0 || bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// overlay sets the fields of o on p. A field both set differently is
// refused: the overlay adds what the profile lacks, it does not override.
func (p *Profile) overlay(o *Profile) error {
	conflict := func(field, have, want string) error {
		return &ProfileError{Field: field, Msg: fmt.Sprintf("the overlay says %q, the connection profile %q: drop it from the overlay", want, have)}
	}
	set := func(field string, dst *string, v string) error {
		switch {
		case v == "" || *dst == v:
		case *dst != "":
			return conflict(field, *dst, v)
		default:
			*dst = v
		}
		return nil
	}
	for _, f := range []struct {
		field string
		dst   *string
		v     string
	}{
		{"network", &p.Network, o.Network}, {"channel", &p.Channel, o.Channel}, {"chaincode", &p.Chaincode, o.Chaincode},
		{"org", &p.Org, o.Org}, {"mspId", &p.MSPID, o.MSPID},
		{"peer.address", &p.Peer.Address, o.Peer.Address}, {"peer.serverName", &p.Peer.ServerName, o.Peer.ServerName},
		{"peer.tlsCACert", &p.Peer.TLSCACert, o.Peer.TLSCACert}, {"peer.tlsCACertPEM", &p.Peer.TLSCACertPEM, o.Peer.TLSCACertPEM},
	} {
		if err := set(f.field, f.dst, f.v); err != nil {
			return err
		}
	}
	if o.CA != nil {
		if p.CA == nil {
			p.CA = &CAEndpoint{}
		}
		for _, f := range []struct {
			field string
			dst   *string
			v     string
		}{{"ca.url", &p.CA.URL, o.CA.URL}, {"ca.tlsCACert", &p.CA.TLSCACert, o.CA.TLSCACert}, {"ca.tlsCACertPEM", &p.CA.TLSCACertPEM, o.CA.TLSCACertPEM}} {
			if err := set(f.field, f.dst, f.v); err != nil {
				return err
			}
		}
	}
	if o.HubTLS != nil {
		if p.HubTLS == nil {
			p.HubTLS = &HubTLS{}
		}
		for _, f := range []struct {
			field string
			dst   *string
			v     string
		}{{"hubTLS.cert", &p.HubTLS.Cert, o.HubTLS.Cert}, {"hubTLS.key", &p.HubTLS.Key, o.HubTLS.Key}, {"hubTLS.caCert", &p.HubTLS.CACert, o.HubTLS.CACert}} {
			if err := set(f.field, f.dst, f.v); err != nil {
				return err
			}
		}
	}
	for _, name := range o.IdentityNames() {
		id := o.Identities[name]
		if have, ok := p.Identities[name]; ok && have != id {
			return &ProfileError{Field: "identities." + name, Msg: "is in both the connection profile and the overlay: keep one"}
		}
		if p.Identities == nil {
			p.Identities = map[string]IdentityFiles{}
		}
		p.Identities[name] = id
	}
	return nil
}

// missing lists what a profile mapped from a CCP still lacks.
func (pp *parsedProfile) missing() []MissingField {
	var m []MissingField
	if strings.TrimSpace(pp.p.Channel) == "" {
		what := "the channel the iotledger chaincode runs on"
		if len(pp.channels) > 0 {
			what += ": one of " + strings.Join(pp.channels, ", ")
		}
		m = append(m, MissingField{Field: "channel", What: what})
	}
	if strings.TrimSpace(pp.p.Chaincode) == "" {
		m = append(m, MissingField{Field: "chaincode", What: `the chaincode's name, "iotledger" unless it was deployed under another`})
	}
	if len(pp.p.Identities) == 0 {
		m = append(m, MissingField{Field: "identities", What: "the certificate and private key files of each identity to act as: operator, hub, auditor, ..."})
	}
	return m
}

// complete applies the overlay (if any) and validates the result. A CCP
// that still lacks fields gets an *IncompleteProfileError listing them all.
func (pp *parsedProfile) complete(overlay *Profile) (*Profile, error) {
	if overlay != nil {
		if err := pp.p.overlay(overlay); err != nil {
			return nil, err
		}
	}
	if pp.format == FormatCCP {
		if m := pp.missing(); len(m) > 0 {
			return nil, &IncompleteProfileError{Format: FormatCCP, Missing: m}
		}
		if len(pp.channels) > 0 && !slices.Contains(pp.channels, pp.p.Channel) {
			return nil, &ProfileError{Field: "channel", Msg: fmt.Sprintf("%q is not one of the channels the common connection profile lists (%s)", pp.p.Channel, strings.Join(pp.channels, ", "))}
		}
	}
	if err := pp.p.Validate(); err != nil {
		return nil, err
	}
	pp.p.format = pp.format
	return pp.p, nil
}

// readProfileFile reads and decodes one profile file, its relative paths
// resolved against its directory.
func readProfileFile(path string) (*parsedProfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read connection profile: %w", err)
	}
	defer func() { _ = f.Close() }()
	data, err := readAtMost(f, MaxProfileBytes)
	if err != nil {
		return nil, fmt.Errorf("read connection profile %s: %w", path, err)
	}
	pp, err := parseProfileFile(data)
	if err != nil {
		return nil, withPath(err, path)
	}
	pp.p.resolve(filepath.Dir(path))
	return pp, nil
}

// withPath names the file a profile error is about.
func withPath(err error, path string) error {
	var pe *ProfileError
	if errors.As(err, &pe) {
		pe.Path = path
		return pe
	}
	var ie *IncompleteProfileError
	if errors.As(err, &ie) {
		ie.Path = path
		return ie
	}
	return fmt.Errorf("connection profile %s: %w", path, err)
}

// CCP describes the profile's organisation as a Fabric common connection
// profile, in the shape fabric-samples' test-network writes, so that the
// SDKs and tools of other Fabric users can reach the same peer: its peer
// and CA with their TLS CA certificates inline, and the channel. Identities
// are not part of it: each user brings their own.
func (p *Profile) CCP() (*CCP, error) {
	if strings.TrimSpace(p.Org) == "" {
		return nil, &ProfileError{Field: "org", Msg: "is required to name the organisation in a common connection profile"}
	}
	peerPEM, err := pemOf(p.Peer.TLSCACertPEM, p.Peer.TLSCACert)
	if err != nil {
		return nil, fmt.Errorf("peer TLS CA: %w", err)
	}
	peerName := p.Peer.ServerName
	if peerName == "" {
		host, _, err := net.SplitHostPort(p.Peer.Address)
		if err != nil {
			return nil, &ProfileError{Field: "peer.address", Msg: err.Error()}
		}
		peerName = host
	}
	pemValue, err := jsonv2.Marshal(peerPEM)
	if err != nil {
		return nil, err
	}
	grpcOpts := map[string]jsontext.Value{}
	if p.Peer.ServerName != "" {
		name, err := jsonv2.Marshal(p.Peer.ServerName)
		if err != nil {
			return nil, err
		}
		grpcOpts["ssl-target-name-override"], grpcOpts["hostnameOverride"] = name, name
	}
	org := CCPOrganization{MSPID: p.MSPID, Peers: []string{peerName}}
	c := &CCP{
		Name:          p.Network,
		Version:       jsontext.Value(`"1.0.0"`),
		Client:        CCPClient{Organization: p.Org},
		Organizations: map[string]CCPOrganization{},
		Peers: map[string]CCPPeer{peerName: {
			URL: "grpcs://" + p.Peer.Address, TLSCACerts: CCPTLSCACerts{PEM: pemValue}, GRPCOptions: grpcOpts,
		}},
	}
	if p.Channel != "" {
		// The peer's roles on the channel, as test-network lists them.
		roles := map[string]bool{"endorsingPeer": true, "chaincodeQuery": true, "ledgerQuery": true, "eventSource": true, "discover": true}
		ch, err := jsonv2.Marshal(map[string]any{"peers": map[string]any{peerName: roles}}, jsonv2.Deterministic(true))
		if err != nil {
			return nil, err
		}
		c.Channels = map[string]jsontext.Value{p.Channel: ch}
	}
	if p.CA != nil {
		caPEM, err := pemOf(p.CA.TLSCACertPEM, p.CA.TLSCACert)
		if err != nil {
			return nil, fmt.Errorf("CA TLS CA: %w", err)
		}
		// Named as test-network names it: ca.<the peer's domain>.
		caName := "ca." + strings.ToLower(p.Org)
		if _, domain, ok := strings.Cut(peerName, "."); ok && net.ParseIP(peerName) == nil {
			caName = "ca." + domain
		}
		list, err := jsonv2.Marshal([]string{caPEM})
		if err != nil {
			return nil, err
		}
		org.CertificateAuthorities = []string{caName}
		c.CertificateAuthorities = map[string]CCPCA{caName: {URL: p.CA.URL, TLSCACerts: CCPTLSCACerts{PEM: list}}}
	}
	c.Organizations[p.Org] = org
	return c, nil
}

// pemOf is the PEM given inline, or read from the file.
func pemOf(inline, path string) (string, error) {
	if inline != "" {
		return inline, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := checkCertificatesPEM(string(b)); err != nil {
		return "", fmt.Errorf("%s %w", path, err)
	}
	return strings.TrimSpace(string(b)) + "\n", nil
}

// EncodeJSON writes the CCP as indented JSON.
func (c *CCP) EncodeJSON() ([]byte, error) {
	b, err := jsonv2.Marshal(c, jsonv2.Deterministic(true), jsontext.WithIndent("    "))
	if err != nil {
		return nil, fmt.Errorf("encode common connection profile: %w", err)
	}
	return append(b, '\n'), nil
}

// EncodeYAML writes the CCP as YAML, PEM as literal blocks.
func (c *CCP) EncodeYAML() ([]byte, error) {
	js, err := jsonv2.Marshal(c, jsonv2.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("encode common connection profile: %w", err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(js, &n); err != nil {
		return nil, fmt.Errorf("encode common connection profile: %w", err)
	}
	blockStyle(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode common connection profile: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode common connection profile: %w", err)
	}
	return append([]byte("---\n"), b.Bytes()...), nil
}

// blockStyle turns JSON's flow style into YAML's block style, with
// multi-line strings (PEM) as literal blocks.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle
		if strings.Contains(n.Value, "\n") {
			n.Style = yaml.LiteralStyle
		}
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}
