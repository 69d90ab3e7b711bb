package console

import (
	"net/http"
	"time"

	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
)

// Throughput is what the channel committed in the last window, as the
// org's index holds it: readings per second fleet-wide, per org whose hubs
// submitted them, and per submitting identity.
type Throughput struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	WindowSeconds float64   `json:"windowSeconds"`
	Rate
	// IndexedThrough is the time of the newest block the index has applied
	// (absent for an empty index). Readings committed after it are not
	// counted yet.
	IndexedThrough *time.Time      `json:"indexedThrough,omitempty"`
	ByOrg          []OrgThroughput `json:"byOrg"`
	BySubmitter    []SubmitterRate `json:"bySubmitter"`
}

// Rate is a count of committed batches and readings, and readings per second.
type Rate struct {
	Batches           int     `json:"batches"`
	Readings          int     `json:"readings"`
	ReadingsPerSecond float64 `json:"readingsPerSecond"`
	// PrivateBatches are another org's private batches: committed, but
	// their readings are not in this org's index and not counted.
	PrivateBatches int `json:"privateBatches,omitempty"`
}

// OrgThroughput is the share of the org whose hubs submitted the batches.
type OrgThroughput struct {
	MSPID string `json:"mspId"`
	Rate
}

// SubmitterRate is the share of one submitting identity (a hub's Fabric
// client identity: the hubs of an org that share one count together).
type SubmitterRate struct {
	MSPID     string `json:"mspId"`
	Submitter string `json:"submitter"`
	Rate
}

// Bounds of the throughput window.
const (
	defaultThroughputWindow = time.Minute
	minThroughputWindow     = 10 * time.Second
	maxThroughputWindow     = time.Hour
)

func (r *Rate) add(st index.SubmitterThroughput) {
	r.Batches += st.Batches
	r.Readings += st.Readings
	r.PrivateBatches += st.PrivateBatches
}

func (r *Rate) per(window time.Duration) {
	r.ReadingsPerSecond = float64(r.Readings) / window.Seconds()
}

func (s *Server) getThroughput(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	window := defaultThroughputWindow
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < minThroughputWindow || d > maxThroughputWindow {
			return badRequest("window %q: want a duration from %s to %s, e.g. 60s", v, minThroughputWindow, maxThroughputWindow)
		}
		window = d
	}
	to := s.cfg.Now().UTC()
	from := to.Add(-window)
	got, err := st.Throughput(r.Context(), from, to)
	if err != nil {
		return err
	}
	out := Throughput{From: from, To: to, WindowSeconds: window.Seconds(), ByOrg: []OrgThroughput{}, BySubmitter: []SubmitterRate{}}
	if !got.Latest.IsZero() {
		latest := got.Latest
		out.IndexedThrough = &latest
	}
	orgs := map[string]int{}
	for _, sub := range got.Submitters {
		out.add(sub)
		sr := SubmitterRate{MSPID: sub.MSPID, Submitter: sub.Submitter}
		sr.add(sub)
		sr.per(window)
		out.BySubmitter = append(out.BySubmitter, sr)
		i, ok := orgs[sub.MSPID]
		if !ok {
			i = len(out.ByOrg)
			orgs[sub.MSPID] = i
			out.ByOrg = append(out.ByOrg, OrgThroughput{MSPID: sub.MSPID})
		}
		out.ByOrg[i].add(sub)
	}
	for i := range out.ByOrg {
		out.ByOrg[i].per(window)
	}
	out.per(window)
	writeJSON(w, http.StatusOK, out)
	return nil
}
