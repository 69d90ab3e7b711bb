package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
)

// Me is who is signed in and what the console lets them do.
type Me struct {
	Org         string       `json:"org"`
	MSPID       string       `json:"mspId"`
	Name        string       `json:"name"`
	Role        string       `json:"role"`
	Subject     string       `json:"subject"`
	Permissions []Permission `json:"permissions"`
}

// Fleet counts the org's devices.
type Fleet struct {
	Total     int            `json:"total"`
	ByStatus  map[string]int `json:"byStatus"`
	ByType    map[string]int `json:"byType"`
	ByGroup   map[string]int `json:"byGroup"`
	Truncated bool           `json:"truncated,omitempty"` // more devices than the console counts
}

// DeviceDetail is a device with its history on the ledger.
type DeviceDetail struct {
	Device  *api.Device              `json:"device"`
	History []api.DeviceHistoryEntry `json:"history"`
}

// Readings is a page of a device's readings from the index.
type Readings struct {
	Readings []index.ReadingView `json:"readings"`
	// Next is the `after` of the next page, when there may be one.
	Next string `json:"next,omitempty"`
}

// Audit is every transaction that touched a device: the ledger's history
// of its record and the index's trail of transactions.
type Audit struct {
	Device       string                   `json:"device"`
	History      []api.DeviceHistoryEntry `json:"history"`
	Transactions []index.AuditEntry       `json:"transactions"`
}

// StatusAction is the body of suspend, activate and revoke. Confirm must
// repeat the device id: a request cannot change a device by accident.
type StatusAction struct {
	Reason  string `json:"reason"`
	Confirm string `json:"confirm"`
}

// RotateKeyAction is the body of rotate-key.
type RotateKeyAction struct {
	PublicKey string `json:"publicKey"` // PEM (PKIX)
	Confirm   string `json:"confirm"`
}

// SentCommands are the commands one send issued (one per device of a group).
type SentCommands struct {
	Commands []api.Command `json:"commands"`
}

// Alerts are the alerts rules raised, newest first.
type Alerts struct {
	Alerts []api.Alert `json:"alerts"`
}

// Health is the network's health as `iotledger network status` shows it.
type Health struct {
	Network any `json:"network"`
}

func (s *Server) apiRoutes() []route {
	return []route{
		{"GET", "/api/v1/me", "", s.getMe},
		{"GET", "/api/v1/fleet", PermDeviceRead, s.getFleet},
		{"GET", "/api/v1/fleet/throughput", PermTelemetryRead, s.getThroughput},
		{"GET", "/api/v1/devices", PermDeviceRead, s.listDevices},
		{"GET", "/api/v1/devices/{id}", PermDeviceRead, s.getDevice},
		{"GET", "/api/v1/devices/{id}/readings", PermTelemetryRead, s.listReadings},
		{"GET", "/api/v1/devices/{id}/readings/summary", PermTelemetryRead, s.readingSummary},
		{"GET", "/api/v1/devices/{id}/readings/stream", PermTelemetryRead, s.streamReadings},
		{"GET", "/api/v1/devices/{id}/readings/{seq}/receipt", PermReceiptRead, s.readingReceipt},
		{"GET", "/api/v1/devices/{id}/audit", PermDeviceRead, s.getAudit},
		{"GET", "/api/v1/devices/{id}/commands", PermDeviceRead, s.listCommands},
		{"POST", "/api/v1/devices/{id}/suspend", PermDeviceManage, s.setStatus(api.StatusSuspended)},
		{"POST", "/api/v1/devices/{id}/activate", PermDeviceManage, s.setStatus(api.StatusActive)},
		{"POST", "/api/v1/devices/{id}/revoke", PermDeviceManage, s.setStatus(api.StatusRevoked)},
		{"POST", "/api/v1/devices/{id}/rotate-key", PermDeviceManage, s.rotateKey},
		{"POST", "/api/v1/commands", PermDeviceCommand, s.sendCommand},
		{"GET", "/api/v1/commands/{id}", PermDeviceRead, s.getCommand},
		{"GET", "/api/v1/alerts", PermDeviceRead, s.listAlerts},
		{"GET", "/api/v1/events/stream", PermDeviceRead, s.streamEvents},
		{"GET", "/api/v1/policies", PermPolicyRead, s.listPolicies},
		{"PUT", "/api/v1/policies/{id}", PermPolicyManage, s.putPolicy},
		{"GET", "/api/v1/rules", PermPolicyRead, s.listRules},
		{"PUT", "/api/v1/rules/{id}", PermRuleManage, s.putRule},
		{"POST", "/api/v1/explain", PermPolicyRead, s.explain},
		{"GET", "/api/v1/health", PermNetworkRead, s.getHealth},
		{"GET", "/api/v1/hubs", PermNetworkRead, s.getHubs},
	}
}

func (s *Server) me(c identity.Caller) Me {
	return Me{Org: s.cfg.Profile.Org, MSPID: c.MSPID, Name: c.Name, Role: c.Role, Subject: c.Subject, Permissions: PermissionsOf(c.Role)}
}

func (s *Server) getMe(w http.ResponseWriter, _ *http.Request, c identity.Caller) error {
	writeJSON(w, http.StatusOK, s.me(c))
	return nil
}

func (s *Server) getFleet(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	f := Fleet{ByStatus: map[string]int{}, ByType: map[string]int{}, ByGroup: map[string]int{}}
	q := api.DeviceQuery{PageSize: 500}
	for {
		p, err := l.ListDevices(r.Context(), q)
		if err != nil {
			return err
		}
		for _, d := range p.Devices {
			if f.Total == s.limits.FleetDevices {
				f.Truncated = true
				break
			}
			f.Total++
			f.ByStatus[string(d.Status)]++
			f.ByType[d.Type]++
			for _, g := range d.Groups {
				f.ByGroup[g]++
			}
		}
		if f.Truncated || p.Bookmark == "" || p.Bookmark == q.Bookmark {
			break
		}
		q.Bookmark = p.Bookmark
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	qv := r.URL.Query()
	q := api.DeviceQuery{Type: qv.Get("type"), Group: qv.Get("group"), Bookmark: qv.Get("bookmark")}
	if q.Type != "" && q.Group != "" {
		return badRequest("filter by type or by group, not both (the ledger indexes each on its own)")
	}
	if v := qv.Get("pageSize"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 || n > 500 {
			return badRequest("pageSize %q: want 1 to 500", v)
		}
		q.PageSize = int32(n)
	}
	status := api.DeviceStatus(qv.Get("status"))
	switch status {
	case "", api.StatusProvisioned, api.StatusActive, api.StatusSuspended, api.StatusRevoked, api.StatusDecommissioned:
	default:
		return badRequest("status %q: want provisioned, active, suspended, revoked or decommissioned", status)
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	p, err := l.ListDevices(r.Context(), q)
	if err != nil {
		return err
	}
	if status != "" {
		kept := p.Devices[:0]
		for _, d := range p.Devices {
			if d.Status == status {
				kept = append(kept, d)
			}
		}
		p.Devices = kept
	}
	if p.Devices == nil {
		p.Devices = []api.Device{}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	id := r.PathValue("id")
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	d, err := l.Device(r.Context(), id)
	if err != nil {
		return err
	}
	h, err := l.DeviceHistory(r.Context(), id)
	if err != nil {
		return err
	}
	if h == nil {
		h = []api.DeviceHistoryEntry{}
	}
	writeJSON(w, http.StatusOK, DeviceDetail{Device: d, History: h})
	return nil
}

func (s *Server) store() (index.Store, error) {
	if s.cfg.Index == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the console was started without the org's index: readings, alerts, audit trail and receipts come from it (start `iotledger index` and give the console --index)"}
	}
	return s.cfg.Index, nil
}

// readingQuery reads from, to (RFC 3339), after (seq), limit and order.
func readingQuery(r *http.Request) (index.ReadingQuery, error) {
	qv := r.URL.Query()
	q := index.ReadingQuery{Device: r.PathValue("id"), Limit: 100}
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if v := qv.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return q, badRequest("%s %q: want an RFC 3339 time, e.g. 2026-12-01T10:00:00Z", name, v)
			}
			*dst = t
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, badRequest("to is before from")
	}
	if v := qv.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return q, badRequest("after %q: want a sequence number", v)
		}
		q.AfterSeq = n
	}
	if v := qv.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return q, badRequest("limit %q: want 1 to 1000", v)
		}
		q.Limit = n
	}
	switch qv.Get("order") {
	case "", "oldest":
	case "newest":
		q.Newest = true
	default:
		return q, badRequest("order %q: want oldest or newest", qv.Get("order"))
	}
	return q, nil
}

func views(rs []index.Reading) ([]index.ReadingView, error) {
	out := make([]index.ReadingView, 0, len(rs))
	for _, r := range rs {
		v, err := index.View(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) listReadings(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	q, err := readingQuery(r)
	if err != nil {
		return err
	}
	rs, err := st.Readings(r.Context(), q)
	if err != nil {
		return err
	}
	out := Readings{}
	if out.Readings, err = views(rs); err != nil {
		return err
	}
	if !q.Newest && len(rs) == q.Limit {
		out.Next = strconv.FormatUint(rs[len(rs)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) readingReceipt(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		return badRequest("seq %q: want a sequence number", r.PathValue("seq"))
	}
	proof, err := index.ReadingProof(r.Context(), st, id, seq)
	if err != nil {
		return err
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	rc, err := l.ReadingReceipt(r.Context(), proof)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("receipt-%s-%d.json", safeName(id), seq)))
	writeJSON(w, http.StatusOK, rc)
	return nil
}

// safeName keeps a device id fit for a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	id := r.PathValue("id")
	st, err := s.store()
	if err != nil {
		return err
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	h, err := l.DeviceHistory(r.Context(), id)
	if err != nil {
		return err
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return badRequest("limit %q: want 1 to 1000", v)
		}
	}
	txs, err := st.Audit(r.Context(), id, limit)
	if err != nil {
		return err
	}
	if h == nil {
		h = []api.DeviceHistoryEntry{}
	}
	if txs == nil {
		txs = []index.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, Audit{Device: id, History: h, Transactions: txs})
	return nil
}

func (s *Server) listCommands(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	qv := r.URL.Query()
	q := api.CommandQuery{Device: r.PathValue("id"), Status: api.CommandStatus(qv.Get("status")), Bookmark: qv.Get("bookmark")}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	p, err := l.ListCommands(r.Context(), q)
	if err != nil {
		return err
	}
	if p.Commands == nil {
		p.Commands = []api.Command{}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func confirmed(id, confirm string) error {
	if confirm != id {
		return badRequest("confirm %q must repeat the device id %q: this changes the device on the ledger", confirm, id)
	}
	return nil
}

func (s *Server) setStatus(to api.DeviceStatus) func(http.ResponseWriter, *http.Request, identity.Caller) error {
	return func(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
		id := r.PathValue("id")
		var body StatusAction
		if err := decodeStrict(r, &body); err != nil {
			return err
		}
		if err := confirmed(id, body.Confirm); err != nil {
			return err
		}
		l, err := s.ledger(r.Context(), c)
		if err != nil {
			return err
		}
		d, err := l.SetDeviceStatus(r.Context(), id, to, body.Reason)
		if err != nil {
			return err
		}
		s.log.InfoContext(r.Context(), "device status set from the console", "device", id, "status", to, "by", c.Name)
		writeJSON(w, http.StatusOK, d)
		return nil
	}
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	id := r.PathValue("id")
	var body RotateKeyAction
	if err := decodeStrict(r, &body); err != nil {
		return err
	}
	if err := confirmed(id, body.Confirm); err != nil {
		return err
	}
	if strings.TrimSpace(body.PublicKey) == "" {
		return badRequest("publicKey: the new key is required (PEM, PKIX)")
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	d, err := l.RotateDeviceKey(r.Context(), id, body.PublicKey)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) sendCommand(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	var req api.CommandRequest
	if err := decodeStrict(r, &req); err != nil {
		return err
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	cmds, err := l.SendCommand(r.Context(), req)
	if err != nil {
		return err
	}
	if cmds == nil {
		cmds = []api.Command{}
	}
	writeJSON(w, http.StatusCreated, SentCommands{Commands: cmds})
	return nil
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	cmd, err := l.Command(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cmd)
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return badRequest("limit %q: want 1 to 1000", v)
		}
	}
	as, err := st.Alerts(r.Context(), r.URL.Query().Get("device"), limit)
	if err != nil {
		return err
	}
	if as == nil {
		as = []api.Alert{}
	}
	writeJSON(w, http.StatusOK, Alerts{Alerts: as})
	return nil
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	qv := r.URL.Query()
	p, err := l.ListPolicies(r.Context(), api.PolicyQuery{Owner: qv.Get("owner"), Bookmark: qv.Get("bookmark")})
	if err != nil {
		return err
	}
	if p.Policies == nil {
		p.Policies = []api.Policy{}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	var p api.Policy
	if err := decodeStrict(r, &p); err != nil {
		return err
	}
	if p.ID == "" {
		p.ID = r.PathValue("id")
	}
	if p.ID != r.PathValue("id") {
		return badRequest("the body's id %q differs from the path's %q", p.ID, r.PathValue("id"))
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	out, err := l.PutPolicy(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	qv := r.URL.Query()
	p, err := l.ListRules(r.Context(), api.RuleQuery{Owner: qv.Get("owner"), Bookmark: qv.Get("bookmark")})
	if err != nil {
		return err
	}
	if p.Rules == nil {
		p.Rules = []api.Rule{}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) putRule(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	var rule api.Rule
	if err := decodeStrict(r, &rule); err != nil {
		return err
	}
	if rule.ID == "" {
		rule.ID = r.PathValue("id")
	}
	if rule.ID != r.PathValue("id") {
		return badRequest("the body's id %q differs from the path's %q", rule.ID, r.PathValue("id"))
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	out, err := l.PutRule(r.Context(), rule)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	var req api.AccessRequest
	if err := decodeStrict(r, &req); err != nil {
		return err
	}
	if req.Action == "" || req.Resource == "" {
		return badRequest("action and resource are required, e.g. {\"action\":\"telemetry:read\",\"resource\":\"sensor-1\"}")
	}
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	e, err := l.Explain(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
	if s.cfg.Health == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the console has no network status source (give it --state-dir of a local network)"}
	}
	st, err := s.cfg.Health.Health(r.Context())
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "network status: " + err.Error()}
	}
	writeJSON(w, http.StatusOK, Health{Network: st})
	return nil
}
