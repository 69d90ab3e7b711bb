package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/iotledger/iotledger/client"
)

// caAdminUser is the CA's bootstrap registrar.
const caAdminUser = "admin"

// caClient runs fabric-ca-client against an org's CA.
func (n *Network) caClient(ctx context.Context, org *OrgState, args ...string) error {
	ca, err := n.state.node(org.CA)
	if err != nil {
		return err
	}
	full := append(args, "--tls.certfiles", n.caCert(org), "--caname", org.CAName)
	cmd := exec.CommandContext(ctx, n.state.Binaries.CAClient, full...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fabric-ca-client %s at %s (%s): %w: %s", args[0], ca.Name, ca.Address(), err, tail(out.String(), 8))
	}
	return nil
}

// caURL is the org's CA endpoint, with credentials if user is set.
func (n *Network) caURL(org *OrgState, user, secret string) (string, error) {
	ca, err := n.state.node(org.CA)
	if err != nil {
		return "", err
	}
	if user == "" {
		return "https://" + ca.Address(), nil
	}
	return "https://" + user + ":" + secret + "@" + ca.Address(), nil
}

// enrollCAAdmin enrolls the CA's bootstrap admin, the registrar of the org's
// people and hubs.
func (n *Network) enrollCAAdmin(ctx context.Context, org *OrgState) error {
	u, err := n.caURL(org, caAdminUser, org.CAAdminSecret)
	if err != nil {
		return err
	}
	return n.caClient(ctx, org, "enroll", "-u", u, "--home", org.CAAdminHome, "--mspdir", filepath.Join(org.CAAdminHome, "msp"))
}

// ErrIdentityExists is returned by EnrollIdentity for a name the org's CA
// has already registered.
var ErrIdentityExists = errors.New("identity already registered")

// EnrollIdentity registers name with the org's Fabric CA (as a client
// identity carrying attrs as ecert attributes, e.g. {"iotledger.role":"hub"}),
// enrolls it, and adds it to the org's connection profile.
func (n *Network) EnrollIdentity(ctx context.Context, orgName, name string, attrs map[string]string) (client.IdentityFiles, error) {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return client.IdentityFiles{}, err
	}
	defer unlock()
	return n.enrollIdentity(ctx, orgName, name, attrs)
}

func (n *Network) enrollIdentity(ctx context.Context, orgName, name string, attrs map[string]string) (client.IdentityFiles, error) {
	if err := validIdentityName(name); err != nil {
		return client.IdentityFiles{}, err
	}
	org, err := n.state.org(orgName)
	if err != nil {
		return client.IdentityFiles{}, err
	}
	return n.enrollIdentityOf(ctx, org, name, attrs)
}

// enrollIdentityOf is enrollIdentity for an org found already (a member,
// or an org about to join).
func (n *Network) enrollIdentityOf(ctx context.Context, org *OrgState, name string, attrs map[string]string) (client.IdentityFiles, error) {
	home := n.userDir(org, name)
	if _, err := os.Stat(home); err == nil {
		return client.IdentityFiles{}, fmt.Errorf("%w: %q in %s", ErrIdentityExists, name, org.Name)
	}
	secret, err := randomSecret()
	if err != nil {
		return client.IdentityFiles{}, err
	}
	caURL, err := n.caURL(org, "", "")
	if err != nil {
		return client.IdentityFiles{}, err
	}
	register := []string{"register", "-u", caURL, "--home", org.CAAdminHome,
		"--mspdir", filepath.Join(org.CAAdminHome, "msp"),
		"--id.name", name, "--id.secret", secret, "--id.type", "client"}
	if len(attrs) > 0 {
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			if strings.ContainsAny(k+attrs[k], ",=:\"") || k == "" {
				return client.IdentityFiles{}, fmt.Errorf("attribute %q=%q: names and values must not be empty or contain , = : or \"", k, attrs[k])
			}
			// ":ecert" puts the attribute into the enrollment certificate,
			// where chaincode reads it with cid.
			parts = append(parts, k+"="+attrs[k]+":ecert")
		}
		register = append(register, "--id.attrs", strings.Join(parts, ","))
	}
	if err := n.caClient(ctx, org, register...); err != nil {
		if strings.Contains(err.Error(), "already registered") {
			return client.IdentityFiles{}, fmt.Errorf("%w: %q in %s", ErrIdentityExists, name, org.Name)
		}
		return client.IdentityFiles{}, err
	}
	u, err := n.caURL(org, name, secret)
	if err != nil {
		return client.IdentityFiles{}, err
	}
	msp := filepath.Join(home, "msp")
	if err := n.caClient(ctx, org, "enroll", "-u", u, "--home", home, "--mspdir", msp); err != nil {
		return client.IdentityFiles{}, err
	}
	id, err := identityFilesFromMSP(msp, org.MSPID)
	if err != nil {
		return client.IdentityFiles{}, err
	}
	if err := n.addProfileIdentity(org, name, id); err != nil {
		return client.IdentityFiles{}, err
	}
	return id, nil
}

// identityFilesFromMSP finds the certificate and key of an enrolled MSP dir.
func identityFilesFromMSP(msp, mspID string) (client.IdentityFiles, error) {
	certs, _ := filepath.Glob(filepath.Join(msp, "signcerts", "*.pem"))
	keys, _ := filepath.Glob(filepath.Join(msp, "keystore", "*_sk"))
	if len(certs) != 1 || len(keys) != 1 {
		return client.IdentityFiles{}, fmt.Errorf("%s: want one certificate and one key, found %d and %d", msp, len(certs), len(keys))
	}
	return client.IdentityFiles{MSPID: mspID, Cert: certs[0], Key: keys[0]}, nil
}

func validIdentityName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("identity name %q: must be 1-64 characters", name)
	}
	for _, r := range name {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("identity name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	if name == "admin" || name == hubTLSIdentity || name == "." || name == ".." {
		return fmt.Errorf("identity name %q is reserved", name)
	}
	return nil
}

// hubTLSIdentity is the name under which the org's CA registers the TLS
// server certificate of the org's IoT hubs.
const hubTLSIdentity = "hub-tls"

// hubTLSHosts are the names the hubs' TLS certificate is valid for: the hubs
// of a local network listen on loopback.
var hubTLSHosts = []string{"localhost", "127.0.0.1"}

// issueHubTLS has the org's Fabric CA issue its IoT hubs a TLS server
// certificate — registered as a client identity without attributes (its
// key carries no iotledger.role, so the chaincode accepts nothing it signs)
// and enrolled with the CA's "tls" signing profile (server auth) for
// hubTLSHosts — and records it in the org's connection profile with the
// org's CA certificate, the root that signed it and that devices pin.
func (n *Network) issueHubTLS(ctx context.Context, org *OrgState) (client.HubTLS, error) {
	secret, err := randomSecret()
	if err != nil {
		return client.HubTLS{}, err
	}
	caURL, err := n.caURL(org, "", "")
	if err != nil {
		return client.HubTLS{}, err
	}
	if err := n.caClient(ctx, org, "register", "-u", caURL, "--home", org.CAAdminHome,
		"--mspdir", filepath.Join(org.CAAdminHome, "msp"),
		"--id.name", hubTLSIdentity, "--id.secret", secret, "--id.type", "client"); err != nil {
		return client.HubTLS{}, fmt.Errorf("hub TLS certificate of %s: %w", org.Name, err)
	}
	u, err := n.caURL(org, hubTLSIdentity, secret)
	if err != nil {
		return client.HubTLS{}, err
	}
	home := n.hubTLSDir(org)
	msp := filepath.Join(home, "msp")
	if err := n.caClient(ctx, org, "enroll", "-u", u, "--home", home, "--mspdir", msp,
		"--enrollment.profile", "tls", "--csr.hosts", strings.Join(n.hubTLSHosts(org), ",")); err != nil {
		return client.HubTLS{}, fmt.Errorf("hub TLS certificate of %s: %w", org.Name, err)
	}
	id, err := identityFilesFromMSP(msp, org.MSPID)
	if err != nil {
		return client.HubTLS{}, fmt.Errorf("hub TLS certificate of %s: %w", org.Name, err)
	}
	files := client.HubTLS{Cert: id.Cert, Key: id.Key, CACert: n.caCert(org)}
	if err := n.setProfileHubTLS(org, files); err != nil {
		return client.HubTLS{}, err
	}
	return files, nil
}

// hubTLSHosts adds, in hosts mode, the org's namespace address: its hubs
// run there and devices reach them through the bridge.
func (n *Network) hubTLSHosts(org *OrgState) []string {
	if h := n.state.Hosts.host(strings.ToLower(org.Name)); h != nil {
		return append(append([]string{}, hubTLSHosts...), h.IP)
	}
	return hubTLSHosts
}
