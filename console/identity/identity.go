// Package identity turns the TLS client certificate a person signs in to the
// console with into the org identity they act as: the certificate must be
// issued by the org's CA (the TLS handshake checks that), be the certificate
// of an identity of the org's connection profile (so the console can submit
// transactions as that identity, with its key), and carry an iotledger.role
// attribute (Fabric CA's attribute extension) that may use the console.
package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/attrmgr"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
)

// Caller is a signed-in person: an identity of the org's profile.
type Caller struct {
	Name    string `json:"name"`    // the identity's name in the connection profile
	MSPID   string `json:"mspId"`   // the org's MSP
	Role    string `json:"role"`    // iotledger.role of the certificate
	Subject string `json:"subject"` // the certificate's subject
}

// Errors of Lookup; each says what the person can do about it.
var (
	ErrNoCertificate      = errors.New("no client certificate: sign in with your Fabric CA identity's certificate")
	ErrUnknownCertificate = errors.New("this certificate is not an identity of the org's connection profile")
	ErrNoRole             = errors.New("this certificate carries no " + api.RoleAttribute + " attribute")
	ErrRoleRefused        = errors.New("this role may not use the console")
)

// ConsoleRoles are the roles that may sign in: operators (read and write)
// and auditors (read only). Hubs and identities without a role may not.
var ConsoleRoles = []string{api.RoleOperator, api.RoleAuditor}

// Directory knows the identities of one org's profile by certificate.
type Directory struct {
	mspID  string
	byCert map[[32]byte]Caller
}

// NewDirectory reads the certificate of every identity of p. An identity
// whose certificate cannot be read is an error: the profile is wrong.
func NewDirectory(p *client.Profile) (*Directory, error) {
	d := &Directory{mspID: p.MSPID, byCert: map[[32]byte]Caller{}}
	for _, name := range p.IdentityNames() {
		files, err := p.Identity(name)
		if err != nil {
			return nil, err
		}
		cert, err := readCert(files.Cert)
		if err != nil {
			return nil, fmt.Errorf("identity %q: %w", name, err)
		}
		role, _ := RoleOf(cert)
		sum := sha256.Sum256(cert.Raw)
		if other, dup := d.byCert[sum]; dup {
			return nil, fmt.Errorf("identities %q and %q hold the same certificate: the console could not tell who signed in", other.Name, name)
		}
		d.byCert[sum] = Caller{Name: name, MSPID: files.MSPID, Role: role, Subject: cert.Subject.String()}
	}
	return d, nil
}

// MSPID is the org of the directory's identities.
func (d *Directory) MSPID() string { return d.mspID }

// Lookup finds the caller a verified client certificate belongs to, and
// refuses certificates of no profile identity, without a role, or whose
// role may not use the console.
func (d *Directory) Lookup(cert *x509.Certificate) (Caller, error) {
	if cert == nil {
		return Caller{}, ErrNoCertificate
	}
	c, ok := d.byCert[sha256.Sum256(cert.Raw)]
	if !ok {
		return Caller{}, fmt.Errorf("%w of %s (subject %q): the console acts as the identity you sign in as, so it must hold that identity in its profile",
			ErrUnknownCertificate, d.mspID, cert.Subject.String())
	}
	if c.Role == "" {
		return Caller{}, fmt.Errorf("%w: identity %q has no role; the console admits %v", ErrNoRole, c.Name, ConsoleRoles)
	}
	if !slices.Contains(ConsoleRoles, c.Role) {
		return Caller{}, fmt.Errorf("%w: identity %q has role %q; the console admits %v", ErrRoleRefused, c.Name, c.Role, ConsoleRoles)
	}
	return c, nil
}

// RoleOf reads the iotledger.role attribute of a Fabric CA certificate
// ("" with no error when the certificate has no attributes at all).
func RoleOf(cert *x509.Certificate) (string, error) {
	attrs, err := attrmgr.New().GetAttributesFromCert(cert)
	if err != nil {
		return "", fmt.Errorf("reading the certificate's attributes: %w", err)
	}
	if attrs == nil {
		return "", nil
	}
	role, _, err := attrs.Value(api.RoleAttribute)
	if err != nil {
		return "", err
	}
	return role, nil
}

// CertPool reads PEM CA certificates (the org's CA) into a pool.
func CertPool(files ...string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, errors.New("no CA certificate to verify client certificates with")
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		data, err := os.ReadFile(f) //nolint:gosec // the operator names the file
		if err != nil {
			return nil, fmt.Errorf("reading CA certificate: %w", err)
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("no PEM certificate in %s", f)
		}
	}
	return pool, nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path) //nolint:gosec // a path of the connection profile
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate %s: %w", path, err)
	}
	return cert, nil
}
