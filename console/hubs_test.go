package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/client/hub"
)

func fakeHub(t *testing.T, status int, h hub.Health) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/healthz", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFleetShowsTheDevicesConnectedToEachHub(t *testing.T) {
	up := fakeHub(t, http.StatusOK, hub.Health{OK: true, Hub: "hub-a", Broker: "up", Ledger: "reachable", Devices: 3, Commit: hub.CommitOK})
	failing := fakeHub(t, http.StatusServiceUnavailable, hub.Health{Hub: "hub-b", Broker: "up", Ledger: "unreachable: peer down", Devices: 1, Commit: hub.CommitFailing})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	fx := newFixture(t, func(c *Config) { c.Hubs = HubEndpoints{URLs: []string{up, failing, gone.URL}} })

	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/hubs", "")
	require.Equal(t, http.StatusOK, status, body)
	var hs Hubs
	requireStrictJSON(t, body, &hs)
	require.Equal(t, 4, hs.ConnectedDevices, "devices of the hubs that answered")
	require.Len(t, hs.Hubs, 3)
	require.Equal(t, "hub-a", hs.Hubs[0].Health.Hub)
	require.True(t, hs.Hubs[0].Health.OK)
	require.False(t, hs.Hubs[1].Health.OK, "an unhealthy hub's answer is shown, not an error")
	require.Equal(t, "unreachable: peer down", hs.Hubs[1].Health.Ledger)
	require.Nil(t, hs.Hubs[2].Health)
	require.Contains(t, hs.Hubs[2].Error, "connection refused")

	// Without hubs configured the list is empty, not an error.
	fx = newFixture(t)
	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/hubs", "")
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"hubs":[],"connectedDevices":0}`, body)
}
