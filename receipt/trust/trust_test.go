package trust

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

var data = []byte("proposal response payload ‖ endorser")

func highS(t *testing.T, s *testSigner, sd SignedData) SignedData {
	var rs struct{ R, S *big.Int }
	_, err := asn1.Unmarshal(sd.Signature, &rs)
	require.NoError(t, err)
	rs.S.Sub(s.key.(*ecdsa.PrivateKey).Curve.Params().N, rs.S)
	sd.Signature, err = asn1.Marshal(rs)
	require.NoError(t, err)
	return sd
}

func TestEvaluate(t *testing.T) {
	f := newFixture(t)
	ouPrincipal, err := proto.Marshal(&msp.OrganizationUnit{MspIdentifier: "Org1MSP", OrganizationalUnitIdentifier: "peer"})
	require.NoError(t, err)
	f.app["Unsupported"] = sigPol(t, outOf(1, signedBy(0)), &msp.MSPPrincipal{PrincipalClassification: msp.MSPPrincipal_ORGANIZATION_UNIT, Principal: ouPrincipal})
	f.app["AllEndorse"] = metaPol(t, common.ImplicitMetaPolicy_ALL, "Endorsement")
	f.app["AnyMissing"] = metaPol(t, common.ImplicitMetaPolicy_ANY, "NoSuchPolicy")
	peer, member := role(t, "Org1MSP", msp.MSPRole_PEER), role(t, "Org1MSP", msp.MSPRole_MEMBER)
	f.org1["TwoPeers"] = sigPol(t, outOf(2, signedBy(0), signedBy(0)), peer)
	f.org1["MemberThenPeer"] = sigPol(t, outOf(2, signedBy(0), signedBy(1)), member, peer)
	f.org1["FailedBranchKeepsSigners"] = sigPol(t, outOf(1, outOf(2, signedBy(0), signedBy(1)), signedBy(2)), peer, role(t, "Org2MSP", msp.MSPRole_PEER), member)
	f.app["OddRule"] = metaPol(t, common.ImplicitMetaPolicy_Rule(7), "Endorsement")
	f.org1["BadRole"] = sigPol(t, outOf(1, signedBy(0)), role(t, "Org1MSP", msp.MSPRole_MSPRoleType(9)))
	f.org1["Orderer"] = sigPol(t, outOf(1, signedBy(0)), role(t, "Org1MSP", msp.MSPRole_ORDERER))
	exact, err := proto.Marshal(&msp.SerializedIdentity{Mspid: "Org1MSP", IdBytes: pemCert(f.s["peer1.org1"].cert)})
	require.NoError(t, err)
	f.org1["Exact"] = sigPol(t, outOf(1, signedBy(0)), &msp.MSPPrincipal{PrincipalClassification: msp.MSPPrincipal_IDENTITY, Principal: exact})
	c := f.channel(t)

	sd := func(names ...string) []SignedData {
		out := make([]SignedData, len(names))
		for i, n := range names {
			out[i] = f.sd(t, n, data)
		}
		return out
	}
	tampered := f.sd(t, "peer0.org2", data)
	tampered.Data = []byte("another payload")
	rsaSigner := f.s["rsa.org1"]

	const (
		endorsement = "/Channel/Application/Endorsement"
		blockVal    = "/Channel/Orderer/BlockValidation"
		org1        = "/Channel/Application/Org1MSP/"
	)
	tests := []struct {
		name   string
		path   string
		signed []SignedData
		at     time.Time
		want   []string // substrings of the error; none: satisfied
		kind   string   // "undecided", "notfound"
	}{
		{name: "majority of two orgs by both peers", path: endorsement, signed: sd("peer0.org1", "peer0.org2")},
		{name: "extra invalid signatures do not matter", path: endorsement, signed: append(sd("peer0.org3", "peer0.org1"), sd("peer0.org2")...)},
		{name: "one org's peer is not a majority", path: endorsement, signed: sd("peer0.org1"), want: []string{
			"policy /Channel/Application/Endorsement (MAJORITY of Endorsement) is not satisfied: 1 of 2 orgs satisfied (Org1MSP), 2 needed; Org2MSP: no signature by a peer of Org2MSP",
		}},
		{name: "a client of Org2 is not its peer", path: endorsement, signed: sd("peer0.org1", "client.org2"), want: []string{
			"Org2MSP: no signature by a peer of Org2MSP",
			"signature 1 (Org2MSP CN=User1@org2.example.com): valid, but a client of Org2MSP, which no principal of the policy accepts",
		}},
		{name: "a tampered signature counts for nothing", path: endorsement, signed: []SignedData{f.sd(t, "peer0.org1", data), tampered}, want: []string{
			"signature 1 (Org2MSP CN=peer0.org2.example.com): signature does not verify with the certificate's key",
		}},
		{name: "a high-S signature is refused", path: endorsement, signed: []SignedData{f.sd(t, "peer0.org1", data), highS(t, f.s["peer0.org2"], f.sd(t, "peer0.org2", data))}, want: []string{
			"signature 1 (Org2MSP CN=peer0.org2.example.com): signature is high-S (s > N/2), and Fabric accepts only low-S signatures",
		}},
		{name: "a certificate from a CA not in the MSP", path: endorsement, signed: sd("fake.org1", "peer0.org2"), want: []string{
			"signature 0 (Org1MSP CN=peer0.org1.example.com): certificate is not issued by a CA of Org1MSP (its issuer is CN=ca.org3.example.com)",
		}},
		{name: "a certificate claiming Org1MSP issued by Org2's CA", path: endorsement, signed: sd("cross.org1", "peer0.org2"), want: []string{
			"signature 0 (Org1MSP CN=peer0.org2.example.com): certificate is not issued by a CA of Org1MSP (its issuer is CN=ica.org2.example.com)",
		}},
		{name: "an MSP not in the channel", path: endorsement, signed: sd("peer0.org1", "peer0.org3"), want: []string{
			"signature 1 (Org3MSP CN=peer0.org3.example.com): MSP Org3MSP is not in the channel configuration",
		}},
		{name: "a revoked certificate", path: endorsement, signed: sd("revoked.org1", "peer0.org2"), want: []string{
			"signature 0 (Org1MSP CN=revoked.org1.example.com): certificate CN=revoked.org1.example.com (serial ",
			"is revoked by a CRL of CN=ca.org1.example.com",
		}},
		{name: "an expired certificate", path: endorsement, signed: sd("expired.org1", "peer0.org2"), want: []string{
			"signature 0 (Org1MSP CN=expired.org1.example.com): certificate CN=expired.org1.example.com is not valid at 2026-03-01T12:00:00Z: it is valid from 2026-01-30T12:00:00Z to 2026-02-28T12:00:00Z",
		}},
		{name: "the expired certificate while it was valid", path: endorsement, signed: sd("expired.org1", "peer0.org2"), at: base.AddDate(0, 0, -2)},
		{name: "an identity without a NodeOU", path: endorsement, signed: sd("noou.org1", "peer0.org2"), want: []string{
			"signature 0 (Org1MSP CN=noou.org1.example.com): certificate carries no NodeOU role",
		}},
		{name: "an identity with two NodeOUs", path: endorsement, signed: sd("twoou.org1", "peer0.org2"), want: []string{
			"certificate carries more than one NodeOU role (peer, client), and Fabric requires exactly one",
		}},
		{name: "an RSA certificate", path: endorsement, signed: []SignedData{{Data: data, Identity: rsaSigner.serialized(t), Signature: []byte{0x30, 0}}, f.sd(t, "peer0.org2", data)}, want: []string{
			"signature 0 (Org1MSP CN=rsa.org1.example.com): certificate key is RSA, and only ECDSA P-256 and P-384 keys are supported",
		}},
		{name: "a NodeOU from a CA the MSP does not pin for it", path: endorsement, signed: sd("ca2.org1", "peer0.org2"), want: []string{
			`certificate carries the peer OU "peer", which Org1MSP accepts only from certificates issued by CN=ca.org1.example.com, and it is issued by CN=ca2.org1.example.com`,
		}},
		{name: "a certificate issued by a root that has an intermediate", path: endorsement, signed: sd("peer0.org1", "rootissued.org2"), want: []string{
			"certificate is issued by CN=rca.org2.example.com, which issued an intermediate CA of Org2MSP and so may not issue identities",
		}},
		{name: "a duplicate signature counts once", path: org1 + "TwoPeers", signed: sd("peer0.org1", "peer0.org1"), want: []string{
			"policy /Channel/Application/Org1MSP/TwoPeers (AND('Org1MSP.peer', 'Org1MSP.peer')) is not satisfied: 1 of AND('Org1MSP.peer', 'Org1MSP.peer') satisfied, 2 needed: no signature by a peer of Org1MSP that another part of the policy did not already count",
			"signature 1 (Org1MSP CN=peer0.org1.example.com): a duplicate of signature 0, and a signer counts once",
		}},
		{name: "two peers of one org", path: org1 + "TwoPeers", signed: sd("peer0.org1", "peer1.org1")},
		{name: "a P-384 peer signs over SHA-256 too", path: org1 + "TwoPeers", signed: sd("peer0.org1", "p384.org1")},
		{name: "a duplicate after an invalid copy still counts", path: org1 + "TwoPeers", signed: []SignedData{highS(t, f.s["peer0.org1"], f.sd(t, "peer0.org1", data)), f.sd(t, "peer0.org1", data), f.sd(t, "peer1.org1", data)}},
		{name: "one signer satisfies one leaf, greedily in order", path: org1 + "MemberThenPeer", signed: sd("peer0.org1", "client.org1"), want: []string{
			"no signature by a peer of Org1MSP that another part of the policy did not already count",
		}},
		{name: "greedy order that works", path: org1 + "MemberThenPeer", signed: sd("client.org1", "peer0.org1")},
		{name: "a failing branch does not consume signers", path: org1 + "FailedBranchKeepsSigners", signed: sd("peer0.org1")},
		{name: "an exact identity", path: org1 + "Exact", signed: sd("peer0.org1", "peer1.org1")},
		{name: "not the exact identity", path: org1 + "Exact", signed: sd("peer0.org1"), want: []string{
			"no signature by identity Org1MSP CN=peer1.org1.example.com",
		}},
		{name: "an admin by NodeOU", path: org1 + "Admins", signed: sd("admin.org1")},
		{name: "an admin by the admins list", path: org1 + "Admins", signed: sd("listed.org1")},
		{name: "a client is no admin", path: org1 + "Admins", signed: sd("client.org1"), want: []string{"no signature by an admin of Org1MSP"}},
		{name: "an orderer role in an application org", path: org1 + "Orderer", signed: sd("orderer-as-org1")},
		{name: "ALL of the orgs", path: "/Channel/Application/AllEndorse", signed: sd("peer0.org2", "peer0.org1")},
		{name: "ALL of the orgs, one missing", path: "/Channel/Application/AllEndorse", signed: sd("peer0.org2"), want: []string{
			"(ALL of Endorsement) is not satisfied: 1 of 2 orgs satisfied (Org2MSP), 2 needed; Org1MSP: no signature by a peer of Org1MSP",
		}},
		{name: "sub-groups without the sub-policy", path: "/Channel/Application/AnyMissing", signed: sd("peer0.org1"), want: []string{
			`0 of 2 orgs satisfied, 1 needed; Org1MSP: /Channel/Application/Org1MSP has no policy "NoSuchPolicy"`,
		}},
		{name: "block validation by one orderer", path: blockVal, signed: sd("orderer0")},
		{name: "block validation by a peer", path: blockVal, signed: sd("peer0.org1"), want: []string{
			"policy /Channel/Orderer/BlockValidation (ANY of Writers) is not satisfied: 0 of 1 orgs satisfied, 1 needed; OrdererOrg: no signature by a member of OrdererMSP; signature 0 (Org1MSP CN=peer0.org1.example.com): valid, but a peer of Org1MSP, which no principal of the policy accepts",
		}},
		{name: "block validation with no signature", path: blockVal, want: []string{"OrdererOrg: no signature by a member of OrdererMSP"}},
		{name: "channel writers nest implicit meta policies", path: "/Channel/Writers", signed: sd("client.org2")},
		{name: "channel admins nest implicit meta policies", path: "/Channel/Admins", signed: sd("admin.org1"), want: []string{
			"0 of 2 groups satisfied, 2 needed; Application: [1 of 2 orgs satisfied (Org1MSP), 2 needed; Org2MSP: no signature by an admin of Org2MSP]; Orderer: [0 of 1 orgs satisfied, 1 needed; OrdererOrg: no signature by an admin of OrdererMSP]",
		}},
		{name: "an unsupported principal classification", path: "/Channel/Application/Unsupported", signed: sd("peer0.org1"), kind: "undecided", want: []string{
			"policy /Channel/Application/Unsupported (OR(<principal 0>)) cannot be evaluated: principal 0, of classification ORGANIZATION_UNIT, which this verifier does not support (only ROLE and IDENTITY)",
		}},
		{name: "an implicit meta rule Fabric does not name", path: "/Channel/Application/OddRule", signed: sd("peer0.org1"), kind: "undecided", want: []string{
			"policy /Channel/Application/OddRule (rule 7 of Endorsement) cannot be evaluated: its rule 7 is not ANY, ALL or MAJORITY",
		}},
		{name: "a role Fabric does not know never matches", path: org1 + "BadRole", signed: sd("peer0.org1"), want: []string{
			"(OR(<principal 0>)) is not satisfied: principal 0, a ROLE principal with role 9, which is not MEMBER, ADMIN, CLIENT, PEER or ORDERER, can never be satisfied",
		}},
		{name: "an unknown policy", path: "/Channel/Application/Nope", kind: "notfound", want: []string{
			`policy /Channel/Application/Nope is not in the channel configuration: /Channel/Application has no policy "Nope"`,
		}},
		{name: "an unknown group", path: "/Channel/Consortiums/Admins", kind: "notfound", want: []string{`/Channel has no group "Consortiums"`}},
		{name: "a path outside the channel", path: "/Other/Admins", kind: "notfound", want: []string{"it is not under /Channel"}},
		{name: "a relative path", path: "Application/Endorsement", kind: "notfound", want: []string{"a policy path is absolute"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = base
			}
			err := c.Evaluate(tc.path, tc.signed, at)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			var pe *PolicyError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.path, pe.Path)
			require.Equal(t, tc.kind == "undecided", pe.Undecided)
			require.Equal(t, tc.kind == "notfound", pe.NotFound)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	f := newFixture(t)
	c := f.channel(t)
	tests := []struct {
		name     string
		signer   string
		at       time.Time
		wantMSP  string
		wantRole string
		admin    bool
		want     string
	}{
		{name: "a peer", signer: "peer0.org1", wantMSP: "Org1MSP", wantRole: RolePeer},
		{name: "a peer under an intermediate", signer: "peer0.org2", wantMSP: "Org2MSP", wantRole: RolePeer},
		{name: "an orderer", signer: "orderer0", wantMSP: "OrdererMSP", wantRole: RoleOrderer},
		{name: "an admin by OU", signer: "admin.org1", wantMSP: "Org1MSP", wantRole: RoleAdmin, admin: true},
		{name: "a listed admin", signer: "listed.org1", wantMSP: "Org1MSP", wantRole: RoleClient, admin: true},
		{name: "expired", signer: "expired.org1", want: "is not valid at 2026-03-01T12:00:00Z"},
		{name: "not yet valid", signer: "peer0.org1", at: base.AddDate(0, 0, -10), want: "certificate CN=peer0.org1.example.com is not valid at"},
		{name: "revoked", signer: "revoked.org1", want: "is revoked by a CRL of CN=ca.org1.example.com"},
		{name: "RSA", signer: "rsa.org1", want: "certificate key is RSA"},
		{name: "P-384", signer: "p384.org1", wantMSP: "Org1MSP", wantRole: RolePeer},
		{name: "P-521", signer: "p521.org1", want: "certificate key is ECDSA on P-521, and only P-256 and P-384 are supported"},
		{name: "unknown MSP", signer: "peer0.org3", want: "identity Org3MSP CN=peer0.org3.example.com: MSP Org3MSP is not in the channel configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = base
			}
			id, err := c.Identity(f.s[tc.signer].serialized(t), at)
			if tc.want != "" {
				var ie *IdentityError
				require.ErrorAs(t, err, &ie)
				require.Contains(t, err.Error(), tc.want)
				require.Contains(t, tc.want+err.Error(), ie.Reason)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantMSP, id.MSPID)
			require.Equal(t, tc.wantRole, id.Role)
			require.Equal(t, tc.admin, id.IsAdmin())
			require.True(t, id.Cert.Equal(f.s[tc.signer].cert))
		})
	}

	malformed := []struct {
		name       string
		serialized []byte
		want       string
	}{
		{name: "not a protobuf", serialized: []byte{0xff, 0xff}, want: "identity: not a serialized identity"},
		{name: "not PEM", serialized: mustMarshal(t, &msp.SerializedIdentity{Mspid: "Org1MSP", IdBytes: []byte("hello")}), want: "id_bytes is not a PEM certificate"},
		{name: "two certificates", serialized: mustMarshal(t, &msp.SerializedIdentity{Mspid: "Org1MSP", IdBytes: append(pemCert(f.s["peer0.org1"].cert), pemCert(f.s["peer1.org1"].cert)...)}), want: "id_bytes holds more than one PEM block"},
		{name: "a CA certificate", serialized: mustMarshal(t, &msp.SerializedIdentity{Mspid: "Org1MSP", IdBytes: f.org1CA.pem()}), want: "a CA certificate cannot be used as an identity"},
	}
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Identity(tc.serialized, base)
			var ie *IdentityError
			require.ErrorAs(t, err, &ie)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	c := f.channel(t)
	s := f.s["peer0.org1"]
	good := s.sd(t, data)
	h := sha256.Sum256(data)
	tests := []struct {
		name string
		sd   SignedData
		want string
	}{
		{name: "good", sd: good},
		{name: "high-S", sd: highS(t, s, good), want: "signature by Org1MSP CN=peer0.org1.example.com: signature is high-S (s > N/2)"},
		{name: "not DER", sd: SignedData{Data: data, Identity: good.Identity, Signature: h[:]}, want: "signature is not a DER-encoded ECDSA signature"},
		{name: "trailing bytes", sd: SignedData{Data: data, Identity: good.Identity, Signature: append(append([]byte{}, good.Signature...), 0)}, want: "signature has bytes after its DER encoding"},
		{name: "another signer's signature", sd: SignedData{Data: data, Identity: good.Identity, Signature: f.s["peer1.org1"].sign(t, data)}, want: "signature does not verify with the certificate's key"},
		{name: "zero s", sd: SignedData{Data: data, Identity: good.Identity, Signature: mustASN1(t, big.NewInt(1), big.NewInt(0))}, want: "zero or negative r or s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := c.Verify(tc.sd, base)
			if tc.want == "" {
				require.NoError(t, err)
				require.Equal(t, "Org1MSP CN=peer0.org1.example.com", id.String())
				return
			}
			var se *SignatureError
			require.ErrorAs(t, err, &se)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func mustASN1(t *testing.T, r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	require.NoError(t, err)
	return b
}

func TestChannel(t *testing.T) {
	f := newFixture(t)
	c := f.channel(t)
	require.Equal(t, "iotledger", c.ID())
	require.Equal(t, uint64(7), c.Sequence())
	require.Equal(t, []string{"OrdererMSP"}, c.OrdererMSPs())
	require.Equal(t, []string{"Org1MSP", "Org2MSP"}, c.ApplicationMSPs())
	roots, inters, err := c.MSPCertificates("Org2MSP")
	require.NoError(t, err)
	require.Len(t, roots, 1)
	require.True(t, roots[0].Equal(f.org2Root.cert))
	require.Len(t, inters, 1)
	require.True(t, inters[0].Equal(f.org2Inter.cert))
	_, _, err = c.MSPCertificates("Org3MSP")
	require.EqualError(t, err, "MSP Org3MSP is not in the channel configuration")

	got := c.Satisfied([]SignedData{f.sd(t, "peer0.org1", data), f.sd(t, "listed.org1", data), f.sd(t, "peer0.org3", data), f.sd(t, "orderer0", data)}, base)
	require.Equal(t, map[string][]string{"Org1MSP": {"admin", "client", "peer"}, "OrdererMSP": {"orderer"}}, got)
}

func TestRevokedIntermediate(t *testing.T) {
	f := newFixture(t)
	f.org2CRL = [][]byte{f.org2Root.crl(t, f.org2Inter.cert)}
	c := f.channel(t)
	_, err := c.Identity(f.s["peer0.org2"].serialized(t), base)
	require.ErrorContains(t, err, "certificate CN=ica.org2.example.com (serial ")
	require.ErrorContains(t, err, "is revoked by a CRL of CN=rca.org2.example.com")

	// A CRL that no CA of the MSP signed revokes nothing.
	f = newFixture(t)
	f.org2CRL = [][]byte{f.org3CA.crl(t, f.s["peer0.org2"].cert)}
	c = f.channel(t)
	_, err = c.Identity(f.s["peer0.org2"].serialized(t), base)
	require.NoError(t, err)
}

func TestNodeOUsOff(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	org1 := cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"]
	org1.Values = mspValue(t, &msp.FabricMSPConfig{Name: "Org1MSP", RootCerts: [][]byte{f.org1CA.pem()}, Admins: [][]byte{pemCert(f.s["listed.org1"].cert)}})
	org1.Policies["Member"] = sigPol(t, outOf(1, signedBy(0)), role(t, "Org1MSP", msp.MSPRole_MEMBER))
	c, err := FromConfig("iotledger", cfg)
	require.NoError(t, err)

	id, err := c.Identity(f.s["noou.org1"].serialized(t), base)
	require.NoError(t, err)
	require.Empty(t, id.Role)
	tests := []struct {
		name, policy, signer, want string
	}{
		{name: "member without OU", policy: "Member", signer: "noou.org1"},
		{name: "a listed admin", policy: "Admins", signer: "listed.org1"},
		{name: "an admin OU means nothing", policy: "Admins", signer: "admin.org1", want: "no signature by an admin of Org1MSP"},
		{name: "no peers without NodeOUs", policy: "Endorsement", signer: "peer0.org1", want: "no signature by a peer of Org1MSP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Evaluate("/Channel/Application/Org1MSP/"+tc.policy, []SignedData{f.sd(t, tc.signer, data)}, base)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "a member of Org1MSP, which no principal of the policy accepts")
		})
	}
}

func TestIdemixMSP(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	ic := mustMarshal(t, &msp.IdemixMSPConfig{Name: "IdemixMSP"})
	cfg.ChannelGroup.Groups["Application"].Groups["IdemixOrg"] = &common.ConfigGroup{Values: map[string]*common.ConfigValue{
		"MSP": {Value: mustMarshal(t, &msp.MSPConfig{Type: 1, Config: ic})},
	}}
	c, err := FromConfig("iotledger", cfg)
	require.NoError(t, err)
	require.Equal(t, []string{"IdemixMSP", "Org1MSP", "Org2MSP"}, c.ApplicationMSPs())
	_, err = c.Identity(mustMarshal(t, &msp.SerializedIdentity{Mspid: "IdemixMSP", IdBytes: []byte("idemix")}), base)
	require.EqualError(t, err, "identity IdemixMSP: MSP IdemixMSP is an idemix MSP, and idemix identities are not supported")
	// Three orgs now: a majority is two, and Org1 and Org2 still make it.
	require.NoError(t, c.Evaluate("/Channel/Application/Endorsement", []SignedData{f.sd(t, "peer0.org1", data), f.sd(t, "peer0.org2", data)}, base))
	err = c.Evaluate("/Channel/Application/Endorsement", []SignedData{f.sd(t, "peer0.org1", data)}, base)
	require.ErrorContains(t, err, `1 of 3 orgs satisfied (Org1MSP), 2 needed; IdemixOrg: /Channel/Application/IdemixOrg has no policy "Endorsement"; Org2MSP: no signature by a peer of Org2MSP`)
}

func TestSHA3HashFamily(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = mspValue(t, &msp.FabricMSPConfig{
		Name: "Org1MSP", RootCerts: [][]byte{f.org1CA.pem()}, FabricNodeOus: nodeOUs(f.org1CA),
		CryptoConfig: &msp.FabricCryptoConfig{SignatureHashFamily: "SHA3", IdentityIdentifierHashFunction: "SHA256"},
	})
	c, err := FromConfig("iotledger", cfg)
	require.NoError(t, err)
	s := f.s["peer0.org1"]
	h := sha3.Sum256(data)
	_, err = c.Verify(SignedData{Data: data, Identity: s.serialized(t), Signature: s.signDigest(t, h[:])}, base)
	require.NoError(t, err)
	_, err = c.Verify(s.sd(t, data), base)
	require.ErrorContains(t, err, "signature does not verify with the certificate's key")
}

func TestImplicitMetaWithoutSubGroups(t *testing.T) {
	cfg := &common.Config{ChannelGroup: &common.ConfigGroup{Policies: map[string]*common.ConfigPolicy{
		"Any": metaPol(t, common.ImplicitMetaPolicy_ANY, "Writers"),
		"All": metaPol(t, common.ImplicitMetaPolicy_ALL, "Writers"),
		"Maj": metaPol(t, common.ImplicitMetaPolicy_MAJORITY, "Writers"),
	}}}
	c, err := FromConfig("empty", cfg)
	require.NoError(t, err)
	for _, p := range []string{"Any", "All", "Maj"} {
		require.NoError(t, c.Evaluate("/Channel/"+p, nil, base), "Fabric: a group with no sub-groups satisfies every rule")
	}
}

func TestFromConfigRefuses(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mutate func(cfg *common.Config)
		want   string
	}{
		{name: "no channel group", mutate: func(cfg *common.Config) { cfg.ChannelGroup = nil }, want: "channel config: no channel group"},
		{name: "an org without MSP", mutate: func(cfg *common.Config) { cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = nil }, want: "org group /Channel/Application/Org1MSP has no MSP value"},
		{name: "an MSP without roots", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = mspValue(t, &msp.FabricMSPConfig{Name: "Org1MSP"})
		}, want: "MSP Org1MSP: no root certificates"},
		{name: "a leaf as root", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = mspValue(t, &msp.FabricMSPConfig{Name: "Org1MSP", RootCerts: [][]byte{pemCert(f.s["peer0.org1"].cert)}})
		}, want: "root certificate 0 (CN=peer0.org1.example.com): not a CA certificate"},
		{name: "an intermediate of another root", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = mspValue(t, &msp.FabricMSPConfig{Name: "Org1MSP", RootCerts: [][]byte{f.org1CA.pem()}, IntermediateCerts: [][]byte{f.org2Inter.pem()}, FabricNodeOus: nodeOUs(nil)})
		}, want: "intermediate certificate CN=ica.org2.example.com: certificate is not issued by a CA of Org1MSP"},
		{name: "a NodeOU pinned to a foreign CA", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = mspValue(t, &msp.FabricMSPConfig{Name: "Org1MSP", RootCerts: [][]byte{f.org1CA.pem()}, FabricNodeOus: nodeOUs(f.org3CA)})
		}, want: "client NodeOU: certificate CN=ca.org3.example.com is not a root or intermediate certificate of the MSP"},
		{name: "no admins and no admin OU", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Groups["Application"].Groups["Org1MSP"].Values = mspValue(t, &msp.FabricMSPConfig{Name: "Org1MSP", RootCerts: [][]byte{f.org1CA.pem()}})
		}, want: "MSP Org1MSP: no admins, and no admin NodeOU"},
		{name: "one MSP defined twice differently", mutate: func(cfg *common.Config) {
			org := cfg.ChannelGroup.Groups["Application"].Groups["Org2MSP"]
			cfg.ChannelGroup.Groups["Application"].Groups["Org2Again"] = &common.ConfigGroup{Values: mspValue(t, &msp.FabricMSPConfig{Name: "Org2MSP", RootCerts: [][]byte{f.org2Root.pem()}, FabricNodeOus: nodeOUs(f.org2Root)}), Policies: org.Policies}
		}, want: "defines MSP Org2MSP differently from another org group"},
		{name: "an unknown policy type", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Policies["Odd"] = &common.ConfigPolicy{Policy: &common.Policy{Type: int32(common.Policy_MSP)}}
		}, want: "policy /Channel/Odd: type 2 is neither SIGNATURE nor IMPLICIT_META"},
		{name: "a signed_by out of range", mutate: func(cfg *common.Config) {
			cfg.ChannelGroup.Policies["Odd"] = sigPol(t, signedBy(1), role(t, "Org1MSP", msp.MSPRole_PEER))
		}, want: "policy /Channel/Odd: signed_by 1 is out of range: the policy has 1 principals"},
		{name: "a signature policy of version 1", mutate: func(cfg *common.Config) {
			b := mustMarshal(t, &common.SignaturePolicyEnvelope{Version: 1, Rule: signedBy(0), Identities: []*msp.MSPPrincipal{role(t, "Org1MSP", msp.MSPRole_PEER)}})
			cfg.ChannelGroup.Policies["Odd"] = &common.ConfigPolicy{Policy: &common.Policy{Type: int32(common.Policy_SIGNATURE), Value: b}}
		}, want: "signature policy has version 1"},
		{name: "a nil policy", mutate: func(cfg *common.Config) { cfg.ChannelGroup.Policies["Odd"] = &common.ConfigPolicy{} }, want: "policy /Channel/Odd: it is nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config(t)
			tc.mutate(cfg)
			_, err := FromConfig("iotledger", cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := FromConfig("", f.config(t))
	require.EqualError(t, err, "channel config: no channel ID")
}

func TestFromConfigBlock(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		block func() *common.Block
		want  string
	}{
		{name: "a config block", block: func() *common.Block { return configBlock(t, "iotledger", f.config(t), common.HeaderType_CONFIG) }},
		{name: "nil", block: func() *common.Block { return nil }, want: "config block is nil"},
		{name: "no header", block: func() *common.Block {
			b := configBlock(t, "iotledger", f.config(t), common.HeaderType_CONFIG)
			b.Header = nil
			return b
		}, want: "config block has no header"},
		{name: "an endorser transaction", block: func() *common.Block {
			return configBlock(t, "iotledger", f.config(t), common.HeaderType_ENDORSER_TRANSACTION)
		}, want: "config block 3: its envelope is of type ENDORSER_TRANSACTION, not CONFIG"},
		{name: "two envelopes", block: func() *common.Block {
			b := configBlock(t, "iotledger", f.config(t), common.HeaderType_CONFIG)
			b.Data.Data = append(b.Data.Data, b.Data.Data[0])
			return b
		}, want: "config block 3 holds 2 envelopes, and a config block holds exactly one"},
		{name: "a data hash that does not match", block: func() *common.Block {
			b := configBlock(t, "iotledger", f.config(t), common.HeaderType_CONFIG)
			b.Header.DataHash[0] ^= 1
			return b
		}, want: "config block 3: its data does not match the data hash in its header"},
		{name: "no channel ID", block: func() *common.Block { return configBlock(t, "", f.config(t), common.HeaderType_CONFIG) }, want: "config block 3: channel config: no channel ID"},
		{name: "no config", block: func() *common.Block { return configBlock(t, "iotledger", nil, common.HeaderType_CONFIG) }, want: "config block 3: channel config: no channel group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromConfigBlock(tc.block())
			if tc.want != "" {
				require.EqualError(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "iotledger", c.ID())
			require.Equal(t, uint64(7), c.Sequence())
			require.NoError(t, c.Evaluate("/Channel/Orderer/BlockValidation", []SignedData{f.sd(t, "orderer0", data)}, base))
		})
	}
}

func TestTypedErrors(t *testing.T) {
	f := newFixture(t)
	c := f.channel(t)
	_, err := c.Verify(f.sd(t, "peer0.org3", data), base)
	var ie *IdentityError
	require.True(t, errors.As(err, &ie))
	require.Equal(t, "Org3MSP", ie.MSPID)
	require.Equal(t, "CN=peer0.org3.example.com", ie.Subject)
	require.Equal(t, "MSP Org3MSP is not in the channel configuration", ie.Reason)
}
