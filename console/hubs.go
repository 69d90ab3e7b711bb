package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/iotledger/iotledger/client/hub"
	"github.com/iotledger/iotledger/console/identity"
)

// HubStatus is what one of the org's hubs says of itself on /healthz:
// whether it is up, how many devices are connected to it, its outbox.
type HubStatus struct {
	URL    string      `json:"url"`
	Health *hub.Health `json:"health,omitempty"`
	Error  string      `json:"error,omitempty"` // the hub could not be asked
}

// Hubs are the org's hubs as the fleet overview shows them.
type Hubs struct {
	Hubs []HubStatus `json:"hubs"`
	// ConnectedDevices is the sum of the devices connected to the hubs
	// that answered.
	ConnectedDevices int `json:"connectedDevices"`
}

// HubSource reports the org's hubs.
type HubSource interface {
	Hubs(ctx context.Context) []HubStatus
}

// HubEndpoints asks each hub's health endpoint (`iotledger hub --http`,
// e.g. http://127.0.0.1:9100), all at once, each within Timeout.
type HubEndpoints struct {
	URLs    []string
	Client  *http.Client  // default: http.DefaultClient
	Timeout time.Duration // default 3 s
}

// Hubs implements HubSource.
func (h HubEndpoints) Hubs(ctx context.Context) []HubStatus {
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	out := make([]HubStatus, len(h.URLs))
	var wg sync.WaitGroup
	for i, u := range h.URLs {
		wg.Go(func() {
			out[i] = askHub(ctx, c, timeout, u)
		})
	}
	wg.Wait()
	return out
}

func askHub(ctx context.Context, c *http.Client, timeout time.Duration, base string) HubStatus {
	st := HubStatus{URL: base}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	res, err := c.Do(req)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	defer func() { _ = res.Body.Close() }()
	// An unhealthy hub answers 503 with the same body.
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusServiceUnavailable {
		st.Error = fmt.Sprintf("/healthz answered %s", res.Status)
		return st
	}
	var hl hub.Health
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&hl); err != nil {
		st.Error = "/healthz: " + err.Error()
		return st
	}
	st.Health = &hl
	return st
}

func (s *Server) getHubs(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
	out := Hubs{Hubs: []HubStatus{}}
	if s.cfg.Hubs != nil {
		out.Hubs = s.cfg.Hubs.Hubs(r.Context())
	}
	for _, h := range out.Hubs {
		if h.Health != nil {
			out.ConnectedDevices += h.Health.Devices
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
