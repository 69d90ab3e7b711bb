package client

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Profile tells a client how to reach one organisation's peer and which
// identities it may act as. `iotledger network up` writes one per org at
// <stateDir>/<org lowercase>/connection.json; an operator of any other Fabric
// network writes the same file by hand.
type Profile struct {
	Network    string                   `json:"network"`
	Channel    string                   `json:"channel"`
	Chaincode  string                   `json:"chaincode"`
	Org        string                   `json:"org"`
	MSPID      string                   `json:"mspId"`
	Peer       PeerEndpoint             `json:"peer"`
	CA         *CAEndpoint              `json:"ca,omitempty"`
	Identities map[string]IdentityFiles `json:"identities"`
	// HubTLS is the certificate the org's IoT hubs serve MQTT over TLS
	// with and the CA its devices pin (optional; `iotledger hub` uses it
	// by default).
	HubTLS *HubTLS `json:"hubTLS,omitempty"`

	format ProfileFormat // the format it was read from; "" for one made in code
}

// Format is the format the profile was read from: FormatIotledger, or
// FormatCCP for a common connection profile (which names no local network
// whose genesis block could serve as the trust anchor).
func (p *Profile) Format() ProfileFormat { return p.format }

// PeerEndpoint is the gateway peer of the profile's organisation.
type PeerEndpoint struct {
	Address    string `json:"address"`    // host:port
	ServerName string `json:"serverName"` // TLS server name to verify
	TLSCACert  string `json:"tlsCACert"`  // absolute path to the PEM of the peer's TLS CA
	// TLSCACertPEM is the peer's TLS CA itself, instead of TLSCACert (a
	// common connection profile carries it inline).
	TLSCACertPEM string `json:"tlsCACertPEM,omitempty"`
}

// CAEndpoint is the organisation's Fabric CA.
type CAEndpoint struct {
	URL          string `json:"url"`                    // https://host:port
	TLSCACert    string `json:"tlsCACert"`              // absolute path to the PEM of the CA's TLS CA
	TLSCACertPEM string `json:"tlsCACertPEM,omitempty"` // or the PEM itself
}

// HubTLS locates an IoT hub's TLS server certificate and key, and the CA
// certificate devices pin to check it (absolute PEM paths).
type HubTLS struct {
	Cert   string `json:"cert"`
	Key    string `json:"key"`
	CACert string `json:"caCert"`
}

// IdentityFiles locates a Fabric identity: its MSP ID, X.509 certificate and
// private key (absolute PEM paths).
type IdentityFiles struct {
	MSPID string `json:"mspId"`
	Cert  string `json:"cert"`
	Key   string `json:"key"`
}

// ProfileError says which field of a connection profile is wrong.
type ProfileError struct {
	Path  string // file the profile came from, if any
	Field string // JSON path of the offending field
	Msg   string
}

func (e *ProfileError) Error() string {
	where := "connection profile"
	if e.Path != "" {
		where += " " + e.Path
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Field, e.Msg)
}

// ErrUnknownIdentity is returned (wrapped) by Profile.Identity for a name the
// profile does not hold.
var ErrUnknownIdentity = errors.New("unknown identity")

// LoadProfile reads and validates a connection profile: iotledger's own or
// a Fabric common connection profile (CCP), JSON or YAML. Relative file paths
// in the profile are resolved against the profile's directory. A CCP lacks
// fields iotledger needs: LoadProfile then fails with an
// *IncompleteProfileError; LoadProfileWithOverlay supplies them.
func LoadProfile(path string) (*Profile, error) {
	return LoadProfileWithOverlay(path, "")
}

// LoadProfileWithOverlay reads the connection profile at path (either
// format, see LoadProfile) and completes it with the overlay file (if
// overlayPath is not empty): an iotledger profile, JSON or YAML, holding
// only the fields to add, typically a CCP's missing channel, chaincode and
// identities. The overlay adds and never overrides: a field that both set
// differently is refused, naming the field. Each file's relative paths are
// resolved against its own directory.
func LoadProfileWithOverlay(path, overlayPath string) (*Profile, error) {
	pp, err := readProfileFile(path)
	if err != nil {
		return nil, err
	}
	var overlay *Profile
	if overlayPath != "" {
		op, err := readProfileFile(overlayPath)
		if err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
		if op.format != FormatIotledger {
			return nil, &ProfileError{Path: overlayPath, Field: "(top level)", Msg: "an overlay is an iotledger profile holding only the fields to add, not a common connection profile"}
		}
		overlay = op.p
	}
	p, err := pp.complete(overlay)
	if err != nil {
		return nil, withPath(err, path)
	}
	return p, nil
}

// ParseProfile decodes and validates a connection profile, JSON or YAML, of
// either format (see LoadProfile); paths stay as written. Unknown fields and
// duplicate keys are refused so that a typo does not silently drop a setting.
func ParseProfile(data []byte) (*Profile, error) {
	pp, err := parseProfileFile(data)
	if err != nil {
		return nil, err
	}
	return pp.complete(nil)
}

// Validate checks that every required field is present and well-formed.
// It does not touch the files the profile points at.
func (p *Profile) Validate() error {
	req := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return &ProfileError{Field: field, Msg: "is required"}
		}
		return nil
	}
	for _, c := range []struct{ field, v string }{
		{"channel", p.Channel}, {"chaincode", p.Chaincode}, {"mspId", p.MSPID},
		{"peer.address", p.Peer.Address},
	} {
		if err := req(c.field, c.v); err != nil {
			return err
		}
	}
	switch {
	case strings.TrimSpace(p.Peer.TLSCACert) == "" && strings.TrimSpace(p.Peer.TLSCACertPEM) == "":
		return &ProfileError{Field: "peer.tlsCACert", Msg: "is required (or peer.tlsCACertPEM)"}
	case p.Peer.TLSCACert != "" && p.Peer.TLSCACertPEM != "":
		return &ProfileError{Field: "peer.tlsCACertPEM", Msg: "is given with peer.tlsCACert: keep one"}
	case p.Peer.TLSCACertPEM != "":
		if err := checkCertificatesPEM(p.Peer.TLSCACertPEM); err != nil {
			return &ProfileError{Field: "peer.tlsCACertPEM", Msg: err.Error()}
		}
	}
	if !validHostPort(p.Peer.Address) {
		return &ProfileError{Field: "peer.address", Msg: fmt.Sprintf("%q is not host:port", p.Peer.Address)}
	}
	if p.CA != nil {
		if !strings.HasPrefix(p.CA.URL, "https://") && !strings.HasPrefix(p.CA.URL, "http://") {
			return &ProfileError{Field: "ca.url", Msg: fmt.Sprintf("%q is not an http(s) URL", p.CA.URL)}
		}
		if p.CA.TLSCACert != "" && p.CA.TLSCACertPEM != "" {
			return &ProfileError{Field: "ca.tlsCACertPEM", Msg: "is given with ca.tlsCACert: keep one"}
		}
		if p.CA.TLSCACertPEM != "" {
			if err := checkCertificatesPEM(p.CA.TLSCACertPEM); err != nil {
				return &ProfileError{Field: "ca.tlsCACertPEM", Msg: err.Error()}
			}
		}
	}
	if p.HubTLS != nil {
		for _, c := range []struct{ field, v string }{
			{"hubTLS.cert", p.HubTLS.Cert}, {"hubTLS.key", p.HubTLS.Key}, {"hubTLS.caCert", p.HubTLS.CACert},
		} {
			if err := req(c.field, c.v); err != nil {
				return err
			}
		}
	}
	if len(p.Identities) == 0 {
		return &ProfileError{Field: "identities", Msg: "at least one identity is required"}
	}
	for _, name := range p.IdentityNames() {
		id := p.Identities[name]
		field := "identities." + name
		if strings.TrimSpace(name) == "" {
			return &ProfileError{Field: "identities", Msg: "identity name must not be empty"}
		}
		if err := req(field+".cert", id.Cert); err != nil {
			return err
		}
		if err := req(field+".key", id.Key); err != nil {
			return err
		}
		if id.MSPID != "" && id.MSPID != p.MSPID {
			return &ProfileError{Field: field + ".mspId", Msg: fmt.Sprintf("%q differs from the profile's %q", id.MSPID, p.MSPID)}
		}
	}
	return nil
}

// IdentityNames lists the profile's identities in sorted order.
func (p *Profile) IdentityNames() []string {
	names := make([]string, 0, len(p.Identities))
	for n := range p.Identities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Identity returns the files of a named identity ("admin", "operator", "hub",
// "auditor", ...). An identity without its own MSP ID gets the profile's.
func (p *Profile) Identity(name string) (IdentityFiles, error) {
	id, ok := p.Identities[name]
	if !ok {
		return IdentityFiles{}, fmt.Errorf("%w %q in the profile of %s (have: %s)",
			ErrUnknownIdentity, name, p.MSPID, strings.Join(p.IdentityNames(), ", "))
	}
	if id.MSPID == "" {
		id.MSPID = p.MSPID
	}
	return id, nil
}

// Save writes the profile as indented JSON, atomically (write then rename).
func (p *Profile) Save(path string) error {
	if err := p.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode connection profile: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write connection profile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write connection profile: %w", err)
	}
	return nil
}

func (p *Profile) resolve(dir string) {
	abs := func(s string) string {
		if s == "" || filepath.IsAbs(s) {
			return s
		}
		return filepath.Join(dir, s)
	}
	p.Peer.TLSCACert = abs(p.Peer.TLSCACert)
	if p.CA != nil {
		p.CA.TLSCACert = abs(p.CA.TLSCACert)
	}
	if p.HubTLS != nil {
		p.HubTLS.Cert, p.HubTLS.Key, p.HubTLS.CACert = abs(p.HubTLS.Cert), abs(p.HubTLS.Key), abs(p.HubTLS.CACert)
	}
	for n, id := range p.Identities {
		id.Cert = abs(id.Cert)
		id.Key = abs(id.Key)
		p.Identities[n] = id
	}
}

// TLSRoots returns the peer's TLS CA certificates as a pool, from
// TLSCACertPEM or the file TLSCACert.
func (e PeerEndpoint) TLSRoots() (*x509.CertPool, error) {
	pemBytes, from := []byte(e.TLSCACertPEM), "peer.tlsCACertPEM"
	if e.TLSCACertPEM == "" {
		b, err := os.ReadFile(e.TLSCACert)
		if err != nil {
			return nil, fmt.Errorf("reading the peer's TLS CA certificate: %w", err)
		}
		pemBytes, from = b, e.TLSCACert
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no PEM certificate in %s", from)
	}
	return pool, nil
}

// readAtMost reads r to its end, refusing more than limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than the %d bytes a connection profile may have", limit)
	}
	return data, nil
}

func validHostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return false
	}
	for _, r := range s[i+1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
