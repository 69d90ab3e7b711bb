package network

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"github.com/hyperledger/fabric-protos-go-apiv2/discovery"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
)

// discoverEndorserOrgs asks an org's peer, through Fabric's discovery
// service, which organisations' peers can endorse for a chaincode: the same
// answer the gateway plans endorsements from.
func (n *Network) discoverEndorserOrgs(ctx context.Context, org *OrgState, chaincode string) ([]string, error) {
	p, err := n.state.node(org.Peer)
	if err != nil {
		return nil, err
	}
	adminDir := filepath.Dir(n.adminMSPDir(org))
	tlsCert, err := tls.LoadX509KeyPair(filepath.Join(adminDir, "tls", "client.crt"), filepath.Join(adminDir, "tls", "client.key"))
	if err != nil {
		return nil, fmt.Errorf("load %s admin TLS client certificate: %w", org.Name, err)
	}
	caPEM, err := os.ReadFile(n.peerTLSCA(org))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	creds := credentials.NewTLS(&tls.Config{
		RootCAs: pool, ServerName: p.Host, Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12,
	})
	conn, err := grpc.NewClient(p.Address(), grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()

	certPEM, keyPEM, err := n.adminCredentials(org)
	if err != nil {
		return nil, err
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s admin key: %w", org.Name, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, err
	}
	creator, err := proto.Marshal(&msp.SerializedIdentity{Mspid: org.MSPID, IdBytes: certPEM})
	if err != nil {
		return nil, err
	}
	tlsHash := sha256.Sum256(tlsCert.Certificate[0])
	req := &discovery.Request{
		Authentication: &discovery.AuthInfo{ClientIdentity: creator, ClientTlsCertHash: tlsHash[:]},
		Queries: []*discovery.Query{{
			Channel: n.state.Channel,
			Query: &discovery.Query_CcQuery{CcQuery: &discovery.ChaincodeQuery{
				Interests: []*peer.ChaincodeInterest{{Chaincodes: []*peer.ChaincodeCall{{Name: chaincode}}}},
			}},
		}},
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(payload)
	signature, err := sign(digest[:])
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := discovery.NewDiscoveryClient(conn).Discover(ctx, &discovery.SignedRequest{Payload: payload, Signature: signature})
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w", p.Name, err)
	}
	if len(resp.GetResults()) != 1 {
		return nil, fmt.Errorf("discovery at %s: %d results for 1 query", p.Name, len(resp.GetResults()))
	}
	res := resp.GetResults()[0]
	if e := res.GetError(); e != nil {
		return nil, fmt.Errorf("discovery at %s: %s", p.Name, e.GetContent())
	}
	seen := map[string]bool{}
	for _, desc := range res.GetCcQueryRes().GetContent() {
		for _, peers := range desc.GetEndorsersByGroups() {
			for _, pe := range peers.GetPeers() {
				var id msp.SerializedIdentity
				if err := proto.Unmarshal(pe.GetIdentity(), &id); err == nil {
					seen[id.GetMspid()] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

// waitDiscovery polls every org's peer until discovery offers endorsers of
// every org for the chaincode. Right after a bring-up gossip may not have
// connected the orgs yet, and a MAJORITY submit would fail.
func (n *Network) waitDiscovery(ctx context.Context, chaincode string, timeout time.Duration) error {
	return n.waitDiscoveryOf(ctx, chaincode, n.state.Orgs, timeout)
}

// waitDiscoveryOf is waitDiscovery for the given orgs (the members and an
// org about to join).
func (n *Network) waitDiscoveryOf(ctx context.Context, chaincode string, orgs []OrgState, timeout time.Duration) error {
	want := make([]string, 0, len(orgs))
	for _, o := range orgs {
		want = append(want, o.MSPID)
	}
	sort.Strings(want)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		last = nil
		for i := range orgs {
			got, err := n.discoverEndorserOrgs(ctx, &orgs[i], chaincode)
			if err != nil {
				last = err
				break
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				last = fmt.Errorf("discovery at %s's peer offers endorsers of [%s], want [%s]",
					orgs[i].Name, strings.Join(got, " "), strings.Join(want, " "))
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaincode %s not discoverable on every org after %s: %w", chaincode, timeout, errors.Join(last, ctx.Err()))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
