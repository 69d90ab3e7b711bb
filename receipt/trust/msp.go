package trust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// The NodeOU roles, as Identity.Role names them.
const (
	RoleClient  = "client"
	RolePeer    = "peer"
	RoleAdmin   = "admin"
	RoleOrderer = "orderer"
)

// SignedData is one signature: Identity is a marshalled msp.SerializedIdentity
// (mspid and a PEM certificate), Signature its signature over Data.
type SignedData struct{ Data, Identity, Signature []byte }

// Identity is a signer validated against its MSP.
type Identity struct {
	MSPID string
	Cert  *x509.Certificate
	// Role is the identity's NodeOU role (RoleClient, RolePeer, RoleAdmin,
	// RoleOrderer), or "" when its MSP has NodeOUs off.
	Role string

	listedAdmin bool   // the certificate is in the MSP's admins
	key         string // MSP ID and certificate: what Fabric deduplicates signers by
	mspi        *mspInfo
}

// IsAdmin reports whether the identity satisfies its MSP's ADMIN role: it is
// listed in the MSP's admins, or carries the admin NodeOU.
func (id *Identity) IsAdmin() bool {
	return id.listedAdmin || id.hasRole(RoleAdmin)
}

// String is "<mspid> CN=<common name>", as messages name a signer.
func (id *Identity) String() string { return label(id.MSPID, subject(id.Cert)) }

// hasRole is Fabric's hasOURole: NodeOUs are on, the role's OU is defined,
// and the certificate carries it.
func (id *Identity) hasRole(role string) bool {
	ou, ok := id.mspi.nodeOU[role]
	return id.mspi.nodeOUs && ok && slices.Contains(id.Cert.Subject.OrganizationalUnit, ou.ou)
}

// mspInfo is one MSP of the channel configuration, set up as Fabric's bccsp
// MSP (msp/mspimplsetup.go) sets itself up.
type mspInfo struct {
	id          string
	unsupported string // non-empty: this MSP's identities cannot be validated, and why
	conf        *msp.MSPConfig

	roots, intermediates []*x509.Certificate
	rootPool, interPool  *x509.CertPool
	internal             map[string]bool            // CAs (raw) that issued an intermediate: they may not issue identities
	revoked              map[string]map[string]bool // CA (raw) → serials revoked by a CRL that CA signed
	admins               map[string]bool            // certificate keys
	nodeOUs              bool
	nodeOU               map[string]ouIdentifier // role → its OU
	ous                  []ouIdentifier          // organizational_unit_identifiers: a member must carry one
	sha3                 bool                    // the MSP's signature hash family is SHA3
}

// ouIdentifier is an OU name and, when the configuration pins it, the
// certification chain (issuer to root) an identity carrying it must have.
type ouIdentifier struct {
	ou         string
	certifiers []byte // nil: any chain
	certifier  string // subject of the pinned CA, for messages
}

func newMSP(conf *msp.MSPConfig) (*mspInfo, error) {
	switch conf.GetType() {
	case 0: // FABRIC
	case 1: // IDEMIX
		ic := &msp.IdemixMSPConfig{}
		if err := proto.Unmarshal(conf.GetConfig(), ic); err != nil {
			return nil, fmt.Errorf("idemix MSP config does not decode: %w", err)
		}
		if ic.GetName() == "" {
			return nil, errors.New("idemix MSP config has no name")
		}
		return &mspInfo{id: ic.GetName(), conf: conf, unsupported: "MSP " + ic.GetName() + " is an idemix MSP, and idemix identities are not supported"}, nil
	default:
		return nil, fmt.Errorf("MSP config has unsupported type %d", conf.GetType())
	}
	fc := &msp.FabricMSPConfig{}
	if err := proto.Unmarshal(conf.GetConfig(), fc); err != nil {
		return nil, fmt.Errorf("MSP config does not decode: %w", err)
	}
	if fc.GetName() == "" {
		return nil, errors.New("MSP config has no name")
	}
	m := &mspInfo{
		id: fc.GetName(), conf: conf,
		rootPool: x509.NewCertPool(), interPool: x509.NewCertPool(),
		internal: map[string]bool{}, revoked: map[string]map[string]bool{},
		admins: map[string]bool{}, nodeOU: map[string]ouIdentifier{},
	}
	if err := m.setup(fc); err != nil {
		return nil, fmt.Errorf("MSP %s: %w", m.id, err)
	}
	return m, nil
}

func (m *mspInfo) setup(fc *msp.FabricMSPConfig) error {
	switch f := fc.GetCryptoConfig().GetSignatureHashFamily(); f {
	case "", "SHA2":
	case "SHA3":
		m.sha3 = true
	default:
		return fmt.Errorf("signature hash family %q is neither SHA2 nor SHA3", f)
	}
	if len(fc.GetRootCerts()) == 0 {
		return errors.New("no root certificates")
	}
	for i, b := range fc.GetRootCerts() {
		c, err := parseConfigCert(b)
		if err != nil {
			return fmt.Errorf("root certificate %d: %w", i, err)
		}
		if err := checkCA(c); err != nil {
			return fmt.Errorf("root certificate %d (%s): %w", i, subject(c), err)
		}
		m.roots = append(m.roots, c)
		m.rootPool.AddCert(c)
	}
	for i, b := range fc.GetIntermediateCerts() {
		c, err := parseConfigCert(b)
		if err != nil {
			return fmt.Errorf("intermediate certificate %d: %w", i, err)
		}
		if err := checkCA(c); err != nil {
			return fmt.Errorf("intermediate certificate %d (%s): %w", i, subject(c), err)
		}
		m.intermediates = append(m.intermediates, c)
		m.interPool.AddCert(c)
	}
	// Every intermediate must chain to a root, uniquely; the CAs above an
	// intermediate are internal nodes of the certification tree. Like Fabric,
	// CAs are checked as of their own NotBefore: expiry is judged per identity.
	for _, c := range m.intermediates {
		chain, err := m.chain(c, c.NotBefore.Add(time.Second))
		if err != nil {
			return fmt.Errorf("intermediate certificate %s: %w", subject(c), err)
		}
		for _, p := range chain[1:] {
			m.internal[string(p.Raw)] = true
		}
	}
	for i, b := range fc.GetRevocationList() {
		if err := m.addCRL(b); err != nil {
			return fmt.Errorf("revocation list %d: %w", i, err)
		}
	}
	var err error
	if m.ous, err = m.ouIdentifiers(fc.GetOrganizationalUnitIdentifiers()); err != nil {
		return err
	}
	if n := fc.GetFabricNodeOus(); n != nil {
		roles := []struct {
			role string
			id   *msp.FabricOUIdentifier
		}{{RoleClient, n.GetClientOuIdentifier()}, {RolePeer, n.GetPeerOuIdentifier()}, {RoleAdmin, n.GetAdminOuIdentifier()}, {RoleOrderer, n.GetOrdererOuIdentifier()}}
		for _, r := range roles {
			if r.id == nil {
				continue
			}
			ou, err := m.ouIdentifier(r.id)
			if err != nil {
				return fmt.Errorf("%s NodeOU: %w", r.role, err)
			}
			m.nodeOU[r.role] = ou
		}
		m.nodeOUs = n.GetEnable() && len(m.nodeOU) > 0
	}
	for i, b := range fc.GetAdmins() {
		c, err := parseConfigCert(b)
		if err != nil {
			return fmt.Errorf("admin certificate %d: %w", i, err)
		}
		m.admins[certKey(c)] = true
	}
	if _, ok := m.nodeOU[RoleAdmin]; len(m.admins) == 0 && (!m.nodeOUs || !ok) {
		return errors.New("no admins, and no admin NodeOU")
	}
	return nil
}

func checkCA(c *x509.Certificate) error {
	if !c.IsCA {
		return errors.New("not a CA certificate")
	}
	if len(c.SubjectKeyId) == 0 {
		return errors.New("no subject key identifier")
	}
	return nil
}

// addCRL records the serials a CRL revokes under each CA of the MSP whose key
// signed it. Like Fabric, a CRL no CA of the MSP signed revokes nothing, and
// revocation takes effect whatever its revocation date.
func (m *mspInfo) addCRL(b []byte) error {
	if p, _ := pem.Decode(b); p != nil {
		b = p.Bytes
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return err
	}
	for _, ca := range slices.Concat(m.roots, m.intermediates) {
		if ca.CheckSignature(crl.SignatureAlgorithm, crl.RawTBSRevocationList, crl.Signature) != nil {
			continue
		}
		set := m.revoked[string(ca.Raw)]
		if set == nil {
			set = map[string]bool{}
			m.revoked[string(ca.Raw)] = set
		}
		for _, e := range crl.RevokedCertificateEntries {
			set[e.SerialNumber.String()] = true
		}
	}
	return nil
}

func (m *mspInfo) ouIdentifiers(ids []*msp.FabricOUIdentifier) ([]ouIdentifier, error) {
	var out []ouIdentifier
	for i, id := range ids {
		if len(id.GetCertificate()) == 0 {
			return nil, fmt.Errorf("organizational unit identifier %d has no certificate", i)
		}
		ou, err := m.ouIdentifier(id)
		if err != nil {
			return nil, fmt.Errorf("organizational unit identifier %d: %w", i, err)
		}
		out = append(out, ou)
	}
	return out, nil
}

// ouIdentifier resolves an OU's pinned certificate, which must be one of the
// MSP's CAs, to its certification chain, as Fabric's getCertifiersIdentifier.
func (m *mspInfo) ouIdentifier(id *msp.FabricOUIdentifier) (ouIdentifier, error) {
	ou := ouIdentifier{ou: id.GetOrganizationalUnitIdentifier()}
	if len(id.GetCertificate()) == 0 {
		return ou, nil
	}
	c, err := parseConfigCert(id.GetCertificate())
	if err != nil {
		return ou, err
	}
	k := certKey(c)
	for _, r := range m.roots {
		if certKey(r) == k {
			ou.certifiers, ou.certifier = certifiers([]*x509.Certificate{r}), subject(r)
			return ou, nil
		}
	}
	for _, r := range m.intermediates {
		if certKey(r) == k {
			chain, err := m.chain(r, r.NotBefore.Add(time.Second))
			if err != nil {
				return ou, err
			}
			ou.certifiers, ou.certifier = certifiers(chain), subject(r)
			return ou, nil
		}
	}
	return ou, fmt.Errorf("certificate %s is not a root or intermediate certificate of the MSP", subject(c))
}

// chain is the unique validation chain of c, c first, root last.
func (m *mspInfo) chain(c *x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	chains, err := c.Verify(x509.VerifyOptions{
		Roots: m.rootPool, Intermediates: m.interPool, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, verifyReason(m.id, c, at, err)
	}
	if len(chains) != 1 {
		return nil, fmt.Errorf("certificate %s has %d validation chains in MSP %s, and Fabric requires exactly one", subject(c), len(chains), m.id)
	}
	return chains[0], nil
}

func verifyReason(mspID string, c *x509.Certificate, at time.Time, err error) error {
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		bad := inv.Cert
		if bad == nil {
			bad = c
		}
		return fmt.Errorf("certificate %s is not valid at %s: it is valid from %s to %s",
			subject(bad), at.UTC().Format(time.RFC3339), bad.NotBefore.UTC().Format(time.RFC3339), bad.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(err, &unk):
		return fmt.Errorf("certificate is not issued by a CA of %s (its issuer is %s)", mspID, issuer(c))
	default:
		return fmt.Errorf("certificate does not verify against the CAs of %s: %w", mspID, err)
	}
}

// parseSerialized decodes a serialized identity: its MSP ID and its one PEM
// certificate. The certificate error, if any, is returned separately so that
// an unknown MSP can be reported first.
func parseSerialized(serialized []byte) (mspID string, cert *x509.Certificate, certErr, err error) {
	sid := &msp.SerializedIdentity{}
	if err := proto.Unmarshal(serialized, sid); err != nil {
		return "", nil, nil, fmt.Errorf("not a serialized identity: %w", err)
	}
	p, rest := pem.Decode(sid.GetIdBytes())
	switch {
	case p == nil:
		certErr = errors.New("id_bytes is not a PEM certificate")
	case p.Type != "CERTIFICATE":
		certErr = fmt.Errorf("id_bytes is a PEM %q block, not a CERTIFICATE", p.Type)
	case len(bytes.TrimSpace(rest)) != 0:
		certErr = errors.New("id_bytes holds more than one PEM block, and an identity is exactly one certificate")
	default:
		if cert, err = x509.ParseCertificate(p.Bytes); err != nil {
			certErr = fmt.Errorf("certificate does not parse: %w", err)
		}
	}
	return sid.GetMspid(), cert, certErr, nil
}

// validate checks a certificate as an identity of the MSP at time at, as
// Fabric's validateIdentity does, and returns its NodeOU role.
func (m *mspInfo) validate(c *x509.Certificate, at time.Time) (role string, err error) {
	if m.unsupported != "" {
		return "", errors.New(m.unsupported)
	}
	if err := checkKey(c); err != nil {
		return "", err
	}
	if c.IsCA {
		return "", errors.New("a CA certificate cannot be used as an identity")
	}
	chain, err := m.chain(c, at)
	if err != nil {
		return "", err
	}
	if len(chain) < 2 {
		return "", errors.New("certificate is itself a root of the MSP")
	}
	if m.internal[string(chain[1].Raw)] {
		return "", fmt.Errorf("certificate is issued by %s, which issued an intermediate CA of %s and so may not issue identities", subject(chain[1]), m.id)
	}
	for i := 0; i+1 < len(chain); i++ {
		if m.revoked[string(chain[i+1].Raw)][chain[i].SerialNumber.String()] {
			return "", fmt.Errorf("certificate %s (serial %s) is revoked by a CRL of %s", subject(chain[i]), chain[i].SerialNumber, subject(chain[i+1]))
		}
	}
	cid := certifiers(chain[1:])
	ous := c.Subject.OrganizationalUnit
	if len(m.ous) > 0 && !slices.ContainsFunc(m.ous, func(o ouIdentifier) bool {
		return slices.Contains(ous, o.ou) && bytes.Equal(o.certifiers, cid)
	}) {
		if len(ous) == 0 {
			return "", fmt.Errorf("certificate has no OU, and %s accepts only identities with one of its OUs", m.id)
		}
		return "", fmt.Errorf("none of the certificate's OUs [%s] is an OU of %s", strings.Join(ous, " "), m.id)
	}
	if !m.nodeOUs {
		return "", nil
	}
	// Exactly one NodeOU, certified by the pinned CA when one is pinned
	// (Fabric's validateIdentityOUsV142; a later role wins an OU name clash).
	var roles []string
	for _, ou := range ous {
		role := ""
		for _, r := range []string{RoleClient, RolePeer, RoleAdmin, RoleOrderer} {
			if n, ok := m.nodeOU[r]; ok && n.ou == ou {
				role = r
			}
		}
		if role == "" {
			continue
		}
		if n := m.nodeOU[role]; n.certifiers != nil && !bytes.Equal(n.certifiers, cid) {
			return "", fmt.Errorf("certificate carries the %s OU %q, which %s accepts only from certificates issued by %s, and it is issued by %s", role, ou, m.id, n.certifier, subject(chain[1]))
		}
		if roles = append(roles, role); len(roles) > 1 {
			return "", fmt.Errorf("certificate carries more than one NodeOU role (%s), and Fabric requires exactly one", strings.Join(roles, ", "))
		}
	}
	switch {
	case len(roles) == 0 && len(ous) == 0:
		return "", fmt.Errorf("certificate carries no NodeOU role: it has no OU, and %s requires its client, peer, admin or orderer OU", m.id)
	case len(roles) == 0:
		return "", fmt.Errorf("certificate carries no NodeOU role: none of its OUs [%s] is the client, peer, admin or orderer OU of %s", strings.Join(ous, " "), m.id)
	}
	return roles[0], nil
}

func checkKey(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("certificate key is ECDSA on %s, and only P-256 and P-384 are supported", k.Curve.Params().Name)
	default:
		return fmt.Errorf("certificate key is %s, and only ECDSA P-256 and P-384 keys are supported", c.PublicKeyAlgorithm)
	}
}

// checkSignature verifies sig over data with the identity's key as Fabric's
// bccsp does: ASN.1 DER (r, s), both positive, s at most half the curve order,
// ECDSA over SHA-256 (SHA3-256 for an MSP whose hash family is SHA3).
func checkSignature(id *Identity, data, sig []byte) error {
	pub := id.Cert.PublicKey.(*ecdsa.PublicKey) // checkKey made sure
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	switch {
	case err != nil:
		return fmt.Errorf("signature is not a DER-encoded ECDSA signature: %w", err)
	case len(rest) != 0:
		return errors.New("signature has bytes after its DER encoding")
	case rs.R.Sign() <= 0 || rs.S.Sign() <= 0:
		return errors.New("signature has a zero or negative r or s")
	}
	if half := new(big.Int).Rsh(pub.Curve.Params().N, 1); rs.S.Cmp(half) > 0 {
		return errors.New("signature is high-S (s > N/2), and Fabric accepts only low-S signatures")
	}
	var digest []byte
	if id.mspi.sha3 {
		d := sha3.Sum256(data)
		digest = d[:]
	} else {
		d := sha256.Sum256(data)
		digest = d[:]
	}
	if !ecdsa.Verify(pub, digest, rs.R, rs.S) {
		return errors.New("signature does not verify with the certificate's key")
	}
	return nil
}

// parseConfigCert reads a PEM certificate of the MSP configuration (like
// Fabric's getCertFromPem: the first PEM block, whatever its type).
func parseConfigCert(b []byte) (*x509.Certificate, error) {
	p, _ := pem.Decode(b)
	if p == nil {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(p.Bytes)
}

// certKey identifies a certificate by its signed content. Fabric compares
// certificates after re-encoding their CA signature to low-S, so two encodings
// of one certificate are one identity; the TBS part is the same in both.
func certKey(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawTBSCertificate)
	return string(h[:])
}

// certifiers identifies a certification chain (issuer first, root last), as
// Fabric's certifiers identifier does.
func certifiers(chain []*x509.Certificate) []byte {
	h := sha256.New()
	for _, c := range chain {
		h.Write(c.Raw)
	}
	return h.Sum(nil)
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	return c.Subject.String()
}

func issuer(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return "CN=" + c.Issuer.CommonName
	}
	return c.Issuer.String()
}
