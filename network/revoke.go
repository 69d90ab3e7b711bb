package network

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	cb "github.com/hyperledger/fabric-protos-go-apiv2/common"
	mb "github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// RevocationReasons are the reasons Fabric CA records with a revocation
// (RFC 5280 CRLReason names, as fabric-ca-client spells them).
var RevocationReasons = []string{
	"unspecified", "keycompromise", "cacompromise", "affiliationchanged", "superseded",
	"cessationofoperation", "certificatehold", "privilegewithdrawn", "aacompromise",
}

// ErrUnknownIdentity is returned by RevokeIdentity for a name the org's
// CA has not registered.
var ErrUnknownIdentity = errors.New("identity not registered")

// Revocation is what RevokeIdentity did.
type Revocation struct {
	Org    string `json:"org"`
	MSPID  string `json:"mspId"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Serial is the serial number (hex) of the identity's certificate as
	// the network enrolled it, found in the CRL (empty when the identity
	// was enrolled elsewhere).
	Serial string `json:"serial,omitempty"`
	// CRL is the org CA's certificate revocation list now in the channel
	// MSP of the org; Revoked is how many certificates it lists.
	CRL     string `json:"crl"`
	Revoked int    `json:"revoked"`
	// Update is the channel config update that put the CRL in place; nil
	// when the channel MSP already held a CRL listing the same certificates.
	Update *ChannelUpdateResult `json:"update,omitempty"`
	// Took is the whole revocation, CA to the last node's commit.
	Took        time.Duration `json:"-"`
	TookSeconds float64       `json:"tookSeconds"`
}

// RevokeIdentity withdraws the org's trust in one of its identities (a
// compromised hub, operator or auditor certificate): the org's Fabric CA
// revokes it (as the CA's registrar) and generates its CRL, and a channel
// config update signed by the org's admin — the org's own Admins policy
// governs its MSP value — puts that CRL into the org's channel MSP. When it
// returns every orderer and peer has the new configuration, and the
// identity's proposals and transactions are refused.
//
// Revoking an identity again is harmless: when the channel MSP already
// holds a CRL of the org's CA listing the same certificates, no config
// update is made.
func (n *Network) RevokeIdentity(ctx context.Context, orgName, name, reason string) (Revocation, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return Revocation{}, err
	}
	defer unlock()
	start := time.Now()
	reason = strings.ToLower(strings.TrimSpace(reason))
	if reason == "" {
		reason = "unspecified"
	}
	if !knownReason(reason) {
		return Revocation{}, fmt.Errorf("revocation reason %q: use one of %s", reason, strings.Join(RevocationReasons, ", "))
	}
	if err := validIdentityName(name); err != nil {
		return Revocation{}, err
	}
	org, err := n.state.org(orgName)
	if err != nil {
		return Revocation{}, err
	}
	rev := Revocation{Org: org.Name, MSPID: org.MSPID, Name: name, Reason: reason}
	var serial *big.Int
	if cert, err := n.enrolledCertificate(org, name); err == nil {
		serial = cert.SerialNumber
		rev.Serial = serial.Text(16)
	}
	var crlPEM []byte
	if err := n.step(ctx, fmt.Sprintf("revoke %s at %s's CA (%s)", name, org.Name, reason), func() error {
		return n.revokeAtCA(ctx, org, name, reason)
	}); err != nil {
		return rev, err
	}
	if err := n.step(ctx, "generate the CRL of "+org.Name+"'s CA", func() (err error) {
		crlPEM, rev.Revoked, err = n.generateCRL(ctx, org, serial)
		return err
	}); err != nil {
		return rev, err
	}
	rev.CRL = n.crlPath(org)
	upd, err := n.updateChannel(ctx, ChannelUpdate{
		Description: fmt.Sprintf("CRL of %s revoking %s", org.MSPID, name),
		Change:      SetMSPRevocationList(org.MSPID, crlPEM),
		Signers:     []string{org.Name},
	})
	switch {
	case errors.Is(err, ErrNoConfigChange):
		n.log.InfoContext(ctx, "the channel MSP already holds a CRL of the CA listing the same certificates", "org", org.Name, "identity", name)
	case err != nil:
		return rev, err
	}
	if err == nil {
		rev.Update = &upd
	}
	rev.Took = time.Since(start)
	rev.TookSeconds = rev.Took.Seconds()
	return rev, nil
}

func knownReason(r string) bool {
	for _, k := range RevocationReasons {
		if k == r {
			return true
		}
	}
	return false
}

// enrolledCertificate is the certificate the network enrolled name with.
func (n *Network) enrolledCertificate(org *OrgState, name string) (*x509.Certificate, error) {
	id, err := identityFilesFromMSP(filepath.Join(n.userDir(org, name), "msp"), org.MSPID)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(id.Cert)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: not PEM", id.Cert)
	}
	return x509.ParseCertificate(b.Bytes)
}

// revokeAtCA revokes every certificate of name at the org's CA and marks
// the identity revoked there (it can enroll no more).
func (n *Network) revokeAtCA(ctx context.Context, org *OrgState, name, reason string) error {
	caURL, err := n.caURL(org, "", "")
	if err != nil {
		return err
	}
	err = n.caClient(ctx, org, "revoke", "-u", caURL, "--home", org.CAAdminHome,
		"--mspdir", filepath.Join(org.CAAdminHome, "msp"), "--revoke.name", name, "--revoke.reason", reason)
	if err != nil && strings.Contains(err.Error(), "was not found") {
		return fmt.Errorf("%w: %q in %s: %w", ErrUnknownIdentity, name, org.Name, err)
	}
	return err
}

// crlPath is where the org's CA admin keeps the CA's latest CRL.
func (n *Network) crlPath(org *OrgState) string {
	return filepath.Join(org.CAAdminHome, "msp", "crls", "crl.pem")
}

// generateCRL has the org's CA issue its CRL and checks that it lists
// serial (if known); it returns the CRL (PEM) and how many certificates it
// lists.
func (n *Network) generateCRL(ctx context.Context, org *OrgState, serial *big.Int) ([]byte, int, error) {
	caURL, err := n.caURL(org, "", "")
	if err != nil {
		return nil, 0, err
	}
	if err := n.caClient(ctx, org, "gencrl", "-u", caURL, "--home", org.CAAdminHome,
		"--mspdir", filepath.Join(org.CAAdminHome, "msp")); err != nil {
		return nil, 0, err
	}
	data, err := os.ReadFile(n.crlPath(org))
	if err != nil {
		return nil, 0, fmt.Errorf("the CRL of %s's CA: %w", org.Name, err)
	}
	crl, err := parseCRL(data)
	if err != nil {
		return nil, 0, fmt.Errorf("the CRL of %s's CA: %w", org.Name, err)
	}
	if serial != nil && !crlLists(crl, serial) {
		return nil, 0, fmt.Errorf("the CRL of %s's CA does not list certificate %s", org.Name, serial.Text(16))
	}
	return data, len(crl.RevokedCertificateEntries), nil
}

func parseCRL(data []byte) (*x509.RevocationList, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "X509 CRL" {
		return nil, errors.New("not a PEM-encoded X509 CRL")
	}
	return x509.ParseRevocationList(b.Bytes)
}

// sameSerials tells whether two CRLs list the same certificates.
func sameSerials(a, b *x509.RevocationList) bool {
	if len(a.RevokedCertificateEntries) != len(b.RevokedCertificateEntries) {
		return false
	}
	for _, e := range a.RevokedCertificateEntries {
		if !crlLists(b, e.SerialNumber) {
			return false
		}
	}
	return true
}

func crlLists(crl *x509.RevocationList, serial *big.Int) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

// SetMSPRevocationList is the config change that puts crlPEM into the
// channel MSP of the application org whose MSP ID is mspID: it replaces a
// CRL of the same issuer (a CA's CRL lists all it revoked) and keeps the
// others. The CRL must be signed by one of the MSP's root or intermediate
// CAs: Fabric ignores any other, which would leave the certificate trusted.
func SetMSPRevocationList(mspID string, crlPEM []byte) ConfigChange {
	return EditApplicationMSP(mspID, func(fabricMSP *mb.FabricMSPConfig) error {
		crl, err := parseCRL(crlPEM)
		if err != nil {
			return fmt.Errorf("CRL for %s: %w", mspID, err)
		}
		if err := crlSignedByMSP(crl, fabricMSP); err != nil {
			return fmt.Errorf("CRL for %s: %w", mspID, err)
		}
		kept := make([][]byte, 0, len(fabricMSP.RevocationList)+1)
		for _, old := range fabricMSP.RevocationList {
			prev, err := parseCRL(old)
			if err != nil || !bytes.Equal(prev.RawIssuer, crl.RawIssuer) || !bytes.Equal(prev.AuthorityKeyId, crl.AuthorityKeyId) {
				kept = append(kept, old)
				continue
			}
			if sameSerials(prev, crl) {
				// The CA issues a new CRL (new dates) on every request;
				// one that revokes nothing more is no reason to update.
				return nil
			}
			// Otherwise the new CRL of the same CA supersedes it.
		}
		fabricMSP.RevocationList = append(kept, crlPEM)
		return nil
	})
}

// EditApplicationMSP is the config change that edits the Fabric MSP
// definition (root and admin certificates, CRLs, NodeOUs) of the
// application org whose MSP ID is mspID; the org's own Admins policy
// governs it.
func EditApplicationMSP(mspID string, edit func(*mb.FabricMSPConfig) error) ConfigChange {
	return func(cfg *cb.Config) error {
		value, fabricMSP, err := applicationMSP(cfg, mspID)
		if err != nil {
			return err
		}
		if err := edit(fabricMSP); err != nil {
			return err
		}
		return setApplicationMSP(value, fabricMSP)
	}
}

// applicationMSP finds the MSP value of the application org with mspID.
func applicationMSP(cfg *cb.Config, mspID string) (*cb.ConfigValue, *mb.FabricMSPConfig, error) {
	app := cfg.GetChannelGroup().GetGroups()["Application"]
	if app == nil {
		return nil, nil, errors.New("the channel configuration has no Application group")
	}
	names := make([]string, 0, len(app.Groups))
	for name := range app.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	var seen []string
	for _, name := range names {
		value := app.Groups[name].GetValues()["MSP"]
		if value == nil {
			continue
		}
		m := &mb.MSPConfig{}
		if err := proto.Unmarshal(value.Value, m); err != nil {
			return nil, nil, fmt.Errorf("MSP of application org %s: %w", name, err)
		}
		if m.Type != 0 { // 0 is FABRIC; idemix MSPs carry no CRL
			continue
		}
		f := &mb.FabricMSPConfig{}
		if err := proto.Unmarshal(m.Config, f); err != nil {
			return nil, nil, fmt.Errorf("MSP of application org %s: %w", name, err)
		}
		if f.Name == mspID {
			return value, f, nil
		}
		seen = append(seen, f.Name)
	}
	return nil, nil, fmt.Errorf("no application org with MSP ID %q in the channel (it has %s)", mspID, strings.Join(seen, ", "))
}

func setApplicationMSP(value *cb.ConfigValue, f *mb.FabricMSPConfig) error {
	inner, err := proto.Marshal(f)
	if err != nil {
		return err
	}
	outer, err := proto.Marshal(&mb.MSPConfig{Type: 0, Config: inner})
	if err != nil {
		return err
	}
	value.Value = outer
	return nil
}

// crlSignedByMSP checks that one of the MSP's CA certificates signed crl.
func crlSignedByMSP(crl *x509.RevocationList, f *mb.FabricMSPConfig) error {
	for _, certPEM := range append(append([][]byte{}, f.RootCerts...), f.IntermediateCerts...) {
		b, _ := pem.Decode(certPEM)
		if b == nil {
			continue
		}
		ca, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		if crl.CheckSignatureFrom(ca) == nil {
			return nil
		}
	}
	return fmt.Errorf("it is not signed by a root or intermediate CA of MSP %s", f.Name)
}
