package orgjoin_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	gw "github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/client/hub/wire"
	"github.com/iotledger/iotledger/client/hub/wire/wiretest"
	"github.com/iotledger/iotledger/network"
	"github.com/iotledger/iotledger/test/testnet"
)

// waitFor bounds every wait for something the network does.
const waitFor = 3 * time.Minute

// refChaincode is the raw Put/Get chaincode, deployed while the channel has
// two orgs: its committed definition's MAJORITY must become 2 of 3.
const refChaincode = "orgjoinref"

func TestACityJoinsARunningHospitalAndLogisticsNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	orgs := fabric.Orgs()
	require.Len(t, orgs, 2, "a fresh network of two orgs")
	hospital, logistics := orgs[0], orgs[1]
	require.NoError(t, fabric.DeployChaincode(ctx, network.ChaincodeSpec{Name: refChaincode, Package: "./cmd/iotledger-refchaincode"}))
	nodesBefore := len(fabric.Nodes())

	// The newcomer's side: its own crypto material, peer and CA, and its
	// definition — nothing of the members.
	created, err := fabric.CreateOrg(ctx, "City")
	require.NoError(t, err)
	t.Logf("org create: %s", created.Took)
	require.ElementsMatch(t, []string{"peer0.city", "ca.city"}, created.Nodes)
	_, err = fabric.CreateOrg(ctx, "City")
	require.ErrorIs(t, err, network.ErrOrgExists, "the same org twice")

	// Joining before the members added it is refused, and changes nothing.
	_, err = fabric.JoinOrg(ctx, "City")
	require.ErrorIs(t, err, network.ErrNotAdded)
	require.Equal(t, orgs, fabric.Orgs())
	require.Len(t, fabric.Nodes(), nodesBefore+2, "no chaincode server was left for the city")

	// The members' side: only the definition file crosses.
	data, err := os.ReadFile(created.Definition)
	require.NoError(t, err)
	def, err := network.ParseOrgDefinition(data)
	require.NoError(t, err)
	_, err = fabric.AddOrg(ctx, def, []string{hospital})
	require.ErrorContains(t, err, "MAJORITY", "one of two admins is not a MAJORITY")
	added, err := fabric.AddOrg(ctx, def, nil)
	require.NoError(t, err)
	t.Logf("org add: %s (config sequence %d, block %d)", added.Took, added.Update.Sequence, added.Update.Block)
	require.ElementsMatch(t, []string{hospital + "MSP", logistics + "MSP"}, added.Update.Signers)
	_, err = fabric.AddOrg(ctx, def, nil)
	require.ErrorIs(t, err, network.ErrOrgExists)

	joined, err := fabric.JoinOrg(ctx, "City")
	require.NoError(t, err)
	t.Logf("org join: %s; create+add+join: %s", joined.Took, created.Took+added.Took+joined.Took)
	require.Equal(t, []string{hospital, logistics, "City"}, fabric.Orgs())
	require.Contains(t, joined.Chaincodes, network.DefaultChaincode)
	require.Contains(t, joined.Chaincodes, refChaincode)

	st, err := fabric.Status(ctx)
	require.NoError(t, err)
	var cityNodes []string
	for _, nd := range st.Nodes {
		if nd.Org == "City" {
			cityNodes = append(cityNodes, nd.Name)
			require.Equal(t, network.HealthOK, nd.Health, "%s: %s", nd.Name, nd.Error)
		}
	}
	require.ElementsMatch(t, []string{"peer0.city", "ca.city", "chaincode.iotledger.city", "chaincode." + refChaincode + ".city"}, cityNodes)

	_, err = fabric.AddOrg(ctx, def, nil)
	require.ErrorIs(t, err, network.ErrOrgExists, "a member cannot be added again")
	recordCityNodes() // TestMain checks that down stops them

	t.Run("MAJORITY is 2 of 3", func(t *testing.T) { majorityIsTwoOfThree(t, ctx) })
	t.Run("the city's hub ingests its devices' readings", func(t *testing.T) { cityIngests(t, ctx) })
	t.Run("the hospital grants the city read access to a group", func(t *testing.T) { hospitalGrantsAGroup(t, ctx, hospital) })
	t.Run("stop and start include the city", func(t *testing.T) { stopAndStartIncludeTheCity(t, ctx) })
}

// stopAndStartIncludeTheCity: stop stops the city's nodes with the
// others, start brings them back, and the city's peer serves again.
func stopAndStartIncludeTheCity(t *testing.T, ctx context.Context) {
	require.NoError(t, fabric.Stop(ctx))
	for _, nd := range fabric.Nodes() {
		require.False(t, nd.Running(), "%s still runs after stop", nd.Name)
	}
	require.NoError(t, fabric.Start(ctx))
	st, err := fabric.Status(ctx)
	require.NoError(t, err)
	require.True(t, st.Healthy, "unhealthy after start: %+v", st.Unhealthy())
	var city int
	for _, nd := range st.Nodes {
		if nd.Org == "City" {
			city++
		}
	}
	require.Equal(t, 4, city, "the city's peer, CA and two chaincode servers")
	recordCityNodes()
	op := connect(t, "City", "operator")
	d := enroll(t, ctx, op, testnet.UniqueID(t, "city-after-restart"), "air-quality", "streets")
	got, err := op.Device(ctx, d.id)
	require.NoError(t, err)
	require.Equal(t, api.StatusActive, got.Status)
}

// majorityIsTwoOfThree: on a definition committed with two orgs, a write
// endorsed by the city alone is invalidated; one endorsed by the city and
// one other org commits.
func majorityIsTwoOfThree(t *testing.T, ctx context.Context) {
	c := gateway(t, "City", "operator").GetNetwork(fabric.Channel()).GetContract(refChaincode)
	status := submit(t, ctx, c, gw.WithArguments("city-alone", "x"), gw.WithEndorsingOrganizations("CityMSP"))
	require.False(t, status.Successful)
	require.Equal(t, peer.TxValidationCode_ENDORSEMENT_POLICY_FAILURE, status.Code)

	status = submit(t, ctx, c, gw.WithArguments("city-and-logistics", "x"), gw.WithEndorsingOrganizations("CityMSP", fabric.Orgs()[1]+"MSP"))
	require.True(t, status.Successful, "code %s", status.Code)
	got, err := c.EvaluateTransaction("Get", "city-and-logistics")
	require.NoError(t, err)
	require.Equal(t, "x", string(got))
	_, err = c.EvaluateTransaction("Get", "city-alone")
	require.ErrorContains(t, err, "NOT_FOUND")
}

// cityIngests: the city's operator enrolls a device, the city's hub (real
// MQTT) takes its signed readings and they commit.
func cityIngests(t *testing.T, ctx context.Context) {
	op := connect(t, "City", "operator")
	hubClient := connect(t, "City", "hub")
	h, err := hub.New(hub.Config{HubID: "city-hub", MQTTAddr: "127.0.0.1:0", DataDir: t.TempDir(), Ledger: hubClient,
		Events: client.EventFeed{Client: hubClient}, BatchWait: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Start(ctx))
	t.Cleanup(func() { _ = h.Close() })

	d := enroll(t, ctx, op, testnet.UniqueID(t, "city-air"), "air-quality", "streets")
	d.dial(t, ctx, h.MQTTAddr(), "city-hub")
	for seq := uint64(1); seq <= 3; seq++ {
		d.publish(t, ctx, seq, 41.5)
	}
	requireAccepted(t, ctx, op, d.id, 1, 2, 3)
}

// hospitalGrantsAGroup: the hospital allows the city telemetry:read on
// group wards; the city then reads the replay state of a ward monitor (which
// readings the ledger holds) and is refused a lab device's.
func hospitalGrantsAGroup(t *testing.T, ctx context.Context, hospital string) {
	hop := connect(t, hospital, "operator")
	hhub := connect(t, hospital, "hub")
	ward := enroll(t, ctx, hop, testnet.UniqueID(t, "ward-monitor"), "vitals-monitor", "wards")
	lab := enroll(t, ctx, hop, testnet.UniqueID(t, "lab-fridge"), "fridge", "lab")
	_, err := hhub.SubmitBatch(ctx, api.BatchRequest{Readings: []reading.Envelope{ward.reading(t, 1, 72), lab.reading(t, 1, 4)}})
	require.NoError(t, err)

	city := connect(t, "City", "operator")
	testnet.Settle(ctx, t, fabric)
	_, err = city.Seen(ctx, ward.id, []uint64{1})
	requireDenied(t, err, "before the grant")

	_, err = hop.PutPolicy(ctx, api.Policy{ID: testnet.UniqueID(t, "city-reads-wards"), Statements: []api.Statement{{
		Effect: api.Allow, Principals: []string{"msp:CityMSP"}, Actions: []string{api.ActionTelemetryRead}, Resources: []string{"group:wards"},
	}}})
	require.NoError(t, err)
	testnet.Settle(ctx, t, fabric)

	requireAccepted(t, ctx, city, ward.id, 1)
	_, err = city.Seen(ctx, lab.id, []uint64{1})
	requireDenied(t, err, "a device outside the granted group")
}

// recordCityNodes keeps the city's nodes as they run now.
func recordCityNodes() {
	cityNodes = cityNodes[:0]
	for _, nd := range fabric.Nodes() {
		if nd.Org == "City" {
			cityNodes = append(cityNodes, nd)
		}
	}
}

func requireDenied(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	var e *api.Error
	require.True(t, errors.As(err, &e), "%s: %v", what, err)
	require.Equal(t, api.CodeAccessDenied, e.Code, "%s: %v", what, err)
}

// requireAccepted waits until the ledger's replay state of device, read
// through c's peer, holds seqs as accepted.
func requireAccepted(t *testing.T, ctx context.Context, c *client.Client, device string, seqs ...uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		ans, err := c.Seen(ctx, device, seqs)
		if err != nil {
			return false
		}
		for _, s := range ans.Seqs {
			if s.State != api.SeqAccepted {
				return false
			}
		}
		return true
	}, waitFor, 200*time.Millisecond, "readings %v of %s never committed", seqs, device)
}

func connect(t *testing.T, org, identity string) *client.Client {
	t.Helper()
	p, err := fabric.Profile(org)
	require.NoError(t, err)
	c, err := client.Connect(t.Context(), p, identity)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// device is an enrolled device with its key.
type device struct {
	id     string
	signer *reading.Signer
	conn   *paho.Client
}

func enroll(t *testing.T, ctx context.Context, op *client.Client, id, kind, group string) *device {
	t.Helper()
	s, err := reading.GenerateKey(reading.ECDSAP256)
	require.NoError(t, err)
	_, err = op.EnrollDevice(ctx, api.EnrollRequest{ID: id, Type: kind, Groups: []string{group}, PublicKey: s.Public().PEM(), Activate: true})
	require.NoError(t, err)
	return &device{id: id, signer: s}
}

func (d *device) reading(t *testing.T, seq uint64, v float64) reading.Envelope {
	t.Helper()
	env, err := d.signer.SignReading(reading.Payload{Device: d.id, Seq: seq, Timestamp: time.Now().UnixMilli(),
		Values: []reading.Value{{Name: "value", Unit: "1", Number: &v}}})
	require.NoError(t, err)
	return env
}

// dial connects the device to a hub over MQTT 5 with a signed token.
func (d *device) dial(t *testing.T, ctx context.Context, addr, hubID string) {
	t.Helper()
	d.conn = wiretest.DialMQTT(ctx, t, addr, hubID, d.id, d.signer, paho.ClientConfig{})
}

// publish sends one signed reading at QoS 1 and waits for its PUBACK.
func (d *device) publish(t *testing.T, ctx context.Context, seq uint64, v float64) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := d.conn.Publish(cctx, &paho.Publish{Topic: wire.Topic(d.id, wire.KindTelemetry), QoS: 1, Payload: d.reading(t, seq, v).Encode()})
	require.NoError(t, err)
	require.NotNil(t, res)
	require.Less(t, int(res.ReasonCode), 0x80, "PUBACK reason %d", res.ReasonCode)
}

// gateway opens a raw Fabric gateway to an org's peer as one of its
// identities, to name the endorsing orgs of a proposal.
func gateway(t *testing.T, org, name string) *gw.Gateway {
	t.Helper()
	return testnet.Gateway(t, fabric, org, name)
}

// submit endorses (by the orgs opts name), submits and waits for the commit status.
func submit(t *testing.T, ctx context.Context, c *gw.Contract, opts ...gw.ProposalOption) *gw.Status {
	t.Helper()
	proposal, err := c.NewProposal("Put", opts...)
	require.NoError(t, err)
	tx, err := proposal.Endorse()
	require.NoError(t, err)
	commit, err := tx.Submit()
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	status, err := commit.StatusWithContext(cctx)
	require.NoError(t, err)
	return status
}
