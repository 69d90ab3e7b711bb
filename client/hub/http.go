package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is the /healthz answer.
type Health struct {
	OK          bool   `json:"ok"`
	Hub         string `json:"hub"`
	Broker      string `json:"broker"`
	Ledger      string `json:"ledger"`
	OutboxDepth int64  `json:"outboxDepth"`
	PendingAcks int64  `json:"pendingAcks"`
	Devices     int    `json:"devices"`
}

// Health reports whether the broker is up and the ledger answers. A
// classified chaincode error (such as NOT_FOUND for a probe id) proves the
// ledger is reachable.
func (h *Hub) Health(ctx context.Context) Health {
	out := Health{Hub: h.cfg.HubID, Broker: "up", Ledger: "reachable", OutboxDepth: h.outbox.Depth(), PendingAcks: h.outbox.PendingAcks()}
	if h.ctx == nil || h.ctx.Err() != nil {
		out.Broker = "stopped"
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.LedgerTimeout)
	defer cancel()
	if _, err := h.cfg.Ledger.Device(cctx, "healthz-probe"); err != nil && api.CodeOf(err) == "" {
		out.Ledger = "unreachable: " + err.Error()
	}
	h.sessMu.Lock()
	out.Devices = len(h.sessions)
	h.sessMu.Unlock()
	out.OK = out.Broker == "up" && out.Ledger == "reachable"
	return out
}

func (h *Hub) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(h.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		hl := h.Health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !hl.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(hl)
	})
	if h.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
