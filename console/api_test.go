package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/chaincode/reading"
	"github.com/iotledger/iotledger/client"
)

func httptestRecorder(fx *fixture, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	fx.srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

func requireStrictJSON(t *testing.T, body string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), body)
}

func TestWritesNeedOneStrictJSONBodyThatConfirmsTheDevice(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Limits.MaxBodyBytes = 256 })
	op := fx.as("operator")
	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"no body", "", http.StatusBadRequest, CodeBadRequest, "needs a JSON body"},
		{"unknown field", `{"reason":"x","confirm":"sensor-1","force":true}`, http.StatusBadRequest, CodeBadRequest, `unknown field "force"`},
		{"two values", `{"reason":"x","confirm":"sensor-1"} {}`, http.StatusBadRequest, CodeBadRequest, "one JSON value"},
		{"not JSON", `reason=x`, http.StatusBadRequest, CodeBadRequest, "request body"},
		{"wrong type", `{"reason":1,"confirm":"sensor-1"}`, http.StatusBadRequest, CodeBadRequest, "request body"},
		{"no confirmation", `{"reason":"x"}`, http.StatusBadRequest, CodeBadRequest, "must repeat the device id"},
		{"confirmation of another device", `{"reason":"x","confirm":"sensor-2"}`, http.StatusBadRequest, CodeBadRequest, "must repeat the device id"},
		{"too large", `{"reason":"` + strings.Repeat("x", 300) + `","confirm":"sensor-1"}`, http.StatusRequestEntityTooLarge, CodeTooLarge, "over 256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := fx.do(op, "POST", "/api/v1/devices/sensor-1/revoke", tc.body)
			require.Equal(t, tc.status, status, body)
			e := apiError(t, body)
			require.Equal(t, tc.code, e.Code)
			require.Contains(t, e.Message, tc.msg)
		})
	}
	require.Empty(t, fx.ledgers.callsOf("SetDeviceStatus"), "no refused request may reach the ledger")
}

func TestChaincodeRefusalsPassThroughWithTheirCodeAndMessage(t *testing.T) {
	fx := newFixture(t)
	op := fx.as("operator")
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&client.TransactionError{Tx: "policy:Put", Code: api.CodeInvalidArgument, Message: "statement 0: condition: undeclared reference to 'reqest'"}, http.StatusBadRequest, "INVALID_ARGUMENT"},
		{&client.TransactionError{Tx: "policy:Put", Code: api.CodeAccessDenied, Message: "Org2MSP may not change Org1MSP's policies"}, http.StatusForbidden, "ACCESS_DENIED"},
		{&client.TransactionError{Tx: "policy:Put", Stage: client.StageCommit, ValidationCode: "ENDORSEMENT_POLICY_FAILURE", Message: "committed as invalid"}, http.StatusBadGateway, CodeLedger},
	} {
		fx.ledgers.err = tc.err
		status, body := fx.do(op, "PUT", "/api/v1/policies/p1", `{"id":"p1","statements":[]}`)
		require.Equal(t, tc.status, status, body)
		e := apiError(t, body)
		require.Equal(t, tc.code, e.Code)
		var te *client.TransactionError
		require.ErrorAs(t, tc.err, &te)
		if te.Code != "" {
			require.Equal(t, te.Message, e.Message, "the chaincode's own words reach the UI")
		}
	}
	status, body := fx.do(op, "PUT", "/api/v1/policies/p1", `{"id":"p2"}`)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, apiError(t, body).Message, "differs from the path")
}

func TestUnknownAPIPathsGetAJSONError(t *testing.T) {
	fx := newFixture(t)
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/nothing", "")
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, CodeNotFound, apiError(t, body).Code)
	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/devices/ghost", "")
	require.Equal(t, http.StatusNotFound, status, body)
	require.Equal(t, "NOT_FOUND", apiError(t, body).Code)
}

func TestFleetCountsEveryPageOfDevices(t *testing.T) {
	fx := newFixture(t)
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/fleet", "")
	require.Equal(t, http.StatusOK, status, body)
	var f Fleet
	requireStrictJSON(t, body, &f)
	require.Equal(t, 3, f.Total)
	require.Equal(t, map[string]int{"active": 2, "suspended": 1}, f.ByStatus)
	require.Equal(t, map[string]int{"thermometer": 2, "valve": 1}, f.ByType)
	require.Equal(t, map[string]int{"cold-chain": 2, "dock": 1}, f.ByGroup)

	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/devices?type=thermometer&status=suspended", "")
	require.Equal(t, http.StatusOK, status, body)
	var p api.DevicePage
	requireStrictJSON(t, body, &p)
	require.Len(t, p.Devices, 1)
	require.Equal(t, "sensor-2", p.Devices[0].ID)

	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/devices?status=lost", "")
	require.Equal(t, http.StatusBadRequest, status, body)
}

func TestReadingsComeFromTheIndexByTimeRangeAndPage(t *testing.T) {
	fx := newFixture(t)
	ts0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	require.NoError(t, fx.st.Apply(context.Background(), readingsBlock(0, "sensor-1", 1, 10, ts0)))
	aud := fx.as("auditor")

	status, body := fx.do(aud, "GET", "/api/v1/devices/sensor-1/readings?from=2026-12-01T10:00:03Z&to=2026-12-01T10:00:06Z", "")
	require.Equal(t, http.StatusOK, status, body)
	var page Readings
	requireStrictJSON(t, body, &page)
	require.Equal(t, []uint64{4, 5, 6, 7}, seqsOf(page))
	require.InDelta(t, 4.5, *page.Readings[0].Values[0].Number, 1e-9)

	status, body = fx.do(aud, "GET", "/api/v1/devices/sensor-1/readings?limit=4", "")
	require.Equal(t, http.StatusOK, status, body)
	page = Readings{}
	requireStrictJSON(t, body, &page)
	require.Equal(t, []uint64{1, 2, 3, 4}, seqsOf(page))
	require.Equal(t, "4", page.Next)
	status, body = fx.do(aud, "GET", "/api/v1/devices/sensor-1/readings?limit=4&after="+page.Next, "")
	require.Equal(t, http.StatusOK, status, body)
	page = Readings{}
	requireStrictJSON(t, body, &page)
	require.Equal(t, []uint64{5, 6, 7, 8}, seqsOf(page))

	for _, bad := range []string{"from=yesterday", "limit=0", "limit=5000", "after=x", "order=random", "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z"} {
		status, body := fx.do(aud, "GET", "/api/v1/devices/sensor-1/readings?"+bad, "")
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", bad, body)
	}

	status, body = fx.do(aud, "GET", "/api/v1/devices/sensor-1/audit", "")
	require.Equal(t, http.StatusOK, status, body)
	var a Audit
	requireStrictJSON(t, body, &a)
	require.Len(t, a.Transactions, 1)
	require.Equal(t, "telemetry:SubmitBatch", a.Transactions[0].Function)
	require.Equal(t, "batch-0", a.Transactions[0].TxID)
	require.Len(t, a.History, 1)
}

func TestConsoleWithoutAnIndexSaysSo(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Index = nil })
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1/readings", "")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, apiError(t, body).Message, "without the org's index")
}

func seqsOf(p Readings) []uint64 {
	out := []uint64{}
	for _, r := range p.Readings {
		out = append(out, r.Seq)
	}
	return out
}

// sse reads server-sent events from a response.
type sse struct {
	sc *bufio.Scanner
}

// next returns the next event's name and data, skipping comments.
func (s *sse) next(t *testing.T) (name, id, data string) {
	t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && name != "":
			return name, id, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", "", ""
}

func openStream(t *testing.T, fx *fixture, who, path string) (*sse, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", fx.ts.URL+path, nil)
	require.NoError(t, err)
	c := fx.as(who)
	c.Timeout = 0
	res, err := c.Do(req) //nolint:bodyclose // the returned stop closes it
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	return &sse{sc: bufio.NewScanner(res.Body)}, func() { cancel(); _ = res.Body.Close() }
}

func TestLiveReadingStreamSendsReadingsAsTheyAreIndexed(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	ts0 := time.Now().Add(-time.Minute).UnixMilli()
	require.NoError(t, fx.st.Apply(ctx, readingsBlock(0, "sensor-1", 1, 3, ts0)))
	stream, stop := openStream(t, fx, "auditor", "/api/v1/devices/sensor-1/readings/stream")
	defer stop()
	// Readings indexed before the stream opened are not sent again: the
	// chart loads them with the range query.
	require.NoError(t, fx.st.Apply(ctx, readingsBlock(1, "sensor-1", 4, 2, ts0+10_000)))
	for _, want := range []string{"4", "5"} {
		name, id, data := stream.next(t)
		require.Equal(t, "reading", name)
		require.Equal(t, want, id)
		require.Contains(t, data, `"device":"sensor-1"`)
	}
	// A browser that reconnects with Last-Event-ID resumes after it.
	again, stop2 := openStream(t, fx, "auditor", "/api/v1/devices/sensor-1/readings/stream?after=2")
	defer stop2()
	_, id, _ := again.next(t)
	require.Equal(t, "3", id)
}

func TestEventStreamSendsAlertsCommandsAndStatusChanges(t *testing.T) {
	fx := newFixture(t)
	stream, stop := openStream(t, fx, "operator", "/api/v1/events/stream?device=sensor-1")
	defer stop()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fx.ledgers.events <- client.ChaincodeEvent{BlockNumber: 7, TxID: "tx7", Event: api.Event{Type: "telemetry.batch", Timestamp: at,
		Alerts:        []api.Alert{{Rule: "hot", Device: "valve-1", Severity: "critical"}, {Rule: "hot", Device: "sensor-1", Severity: "critical", Message: "too hot"}},
		StatusChanges: []api.StatusChange{{Device: "sensor-1", From: api.StatusActive, To: api.StatusSuspended, Cause: "rule:hot"}},
	}}
	fx.ledgers.events <- client.ChaincodeEvent{BlockNumber: 8, TxID: "tx8", Event: api.Event{Type: "command.acked", Timestamp: at,
		Commands: []api.Command{{ID: "cmd-1", Device: "sensor-1", Status: api.CommandAcked}}}}

	name, _, data := stream.next(t)
	require.Equal(t, "alert", name)
	var la LiveAlert
	requireStrictJSON(t, data, &la)
	require.Equal(t, "sensor-1", la.Alert.Device, "alerts of other devices are filtered out")
	require.Equal(t, uint64(7), la.Block)
	name, _, data = stream.next(t)
	require.Equal(t, "status", name)
	require.Contains(t, data, `"to":"suspended"`)
	name, _, data = stream.next(t)
	require.Equal(t, "command", name)
	require.Contains(t, data, `"status":"acked"`)
	require.Equal(t, "operator", fx.ledgers.callsOf("Events")[0].identity, "the stream reads the chain as the caller")
}

func TestLiveStreamsAreBoundedPerIdentity(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Limits.StreamsPerIdentity = 1 })
	_, stop := openStream(t, fx, "auditor", "/api/v1/devices/sensor-1/readings/stream")
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/events/stream", "")
	require.Equal(t, http.StatusTooManyRequests, status, body)
	require.Equal(t, CodeTooManyStreams, apiError(t, body).Code)
	// Another identity has streams of its own.
	_, stop2 := openStream(t, fx, "operator", "/api/v1/devices/sensor-1/readings/stream")
	stop2()
	stop()
	// A closed stream frees its slot.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", fx.ts.URL+"/api/v1/devices/sensor-1/readings/stream", nil)
		c := fx.as("auditor")
		res, err := c.Do(req)
		if err != nil {
			return false
		}
		defer func() { _ = res.Body.Close() }()
		return res.StatusCode == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)
}

func TestPagesOfferOnlyWhatTheRoleMayDo(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		who           string
		want, wantNot []string
	}{
		{"operator", []string{`data-action="revoke"`, `data-action="rotate-key"`, `<dialog id="confirm"`}, nil},
		{"auditor", nil, []string{`data-action="revoke"`, `data-action="suspend"`, `<dialog`}},
	} {
		status, body := fx.do(fx.as(tc.who), "GET", "/devices/sensor-1", "")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `data-device="sensor-1"`)
		require.Contains(t, body, `<main id="main"`)
		require.Contains(t, body, `<nav aria-label="Console pages">`)
		require.Contains(t, body, `/static/vendor/uPlot.iife.min.js`)
		for _, s := range tc.want {
			require.Contains(t, body, s, tc.who)
		}
		for _, s := range tc.wantNot {
			require.NotContains(t, body, s, tc.who)
		}
	}
	status, body := fx.do(fx.as("auditor"), "GET", "/commands", "")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, `id="send"`, "auditors get no send form")
	status, body = fx.do(fx.as("operator"), "GET", "/commands", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `id="send"`)

	// Every page renders, and its script and stylesheet are served.
	for _, pg := range uiPages {
		path := strings.Replace(strings.TrimSuffix(pg.path, "{$}"), "{id}", "sensor-1", 1)
		status, body := fx.do(fx.as("operator"), "GET", path, "")
		require.Equal(t, http.StatusOK, status, path)
		require.Contains(t, body, `/static/js/`+pg.script+`.js`)
		status, js := fx.do(fx.as("operator"), "GET", "/static/js/"+pg.script+".js", "")
		require.Equal(t, http.StatusOK, status, pg.script)
		require.True(t, bytes.Contains([]byte(js), []byte("import")), pg.script)
	}
	status, _ = fx.do(fx.as("operator"), "GET", "/static/js/", "")
	require.Equal(t, http.StatusNotFound, status, "no directory listings")
}

func TestWritesFromAnotherSitesPageAreRefused(t *testing.T) {
	fx := newFixture(t)
	op := fx.as("operator")
	// A page of another site that the operator's browser visits can make
	// it send requests with the operator's client certificate.
	for _, tc := range []struct {
		name   string
		header map[string]string
		body   string
		status int
		code   string
	}{
		{"fetch from another site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			`{"reason":"x","confirm":"sensor-1"}`, http.StatusForbidden, CodeCrossOrigin},
		{"old browser, Origin only", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"},
			`{"reason":"x","confirm":"sensor-1"}`, http.StatusForbidden, CodeCrossOrigin},
		// An HTML form can post text/plain that is valid JSON: name
		// `{"confirm":"sensor-1","reason":"` and value `"}`.
		{"HTML form posting JSON as text/plain", map[string]string{"Content-Type": "text/plain"},
			`{"confirm":"sensor-1","reason":"="}`, http.StatusUnsupportedMediaType, CodeMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", fx.ts.URL+"/api/v1/devices/sensor-1/revoke", strings.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := op.Do(req)
			require.NoError(t, err)
			defer func() { _ = res.Body.Close() }()
			var e Error
			require.NoError(t, json.NewDecoder(res.Body).Decode(&e))
			require.Equal(t, tc.status, res.StatusCode, e.Message)
			require.Equal(t, tc.code, e.Code)
		})
	}
	require.Empty(t, fx.ledgers.callsOf("SetDeviceStatus"))
	// The console's own pages (same origin) may.
	req, err := http.NewRequest("POST", fx.ts.URL+"/api/v1/devices/sensor-1/revoke", strings.NewReader(`{"reason":"x","confirm":"sensor-1"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := op.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

type fakeHealth struct {
	status any
	err    error
}

func (h fakeHealth) Health(context.Context) (any, error) { return h.status, h.err }

func TestHealthShowsTheNetworkStatusWhenTheConsoleHasASource(t *testing.T) {
	fx := newFixture(t)
	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/health", "")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, apiError(t, body).Message, "no network status source")

	fx = newFixture(t, func(c *Config) { c.Health = fakeHealth{status: map[string]any{"healthy": true, "height": 42}} })
	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/health", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"network":{"healthy":true,"height":42}}`, body)

	fx = newFixture(t, func(c *Config) { c.Health = fakeHealth{err: errors.New("orderer1: connection refused")} })
	status, body = fx.do(fx.as("auditor"), "GET", "/api/v1/health", "")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, apiError(t, body).Message, "orderer1: connection refused")
}

func TestAReadingsReceiptIsBuiltFromTheIndexAndDownloaded(t *testing.T) {
	fx := newFixture(t)
	require.NoError(t, fx.st.Apply(context.Background(), readingsBlock(0, "sensor-1", 1, 3, time.Now().UnixMilli())))
	req, err := http.NewRequest("GET", fx.ts.URL+"/api/v1/devices/sensor-1/readings/2/receipt", nil)
	require.NoError(t, err)
	res, err := fx.as("auditor").Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, `attachment; filename="receipt-sensor-1-2.json"`, res.Header.Get("Content-Disposition"))
	calls := fx.ledgers.callsOf("ReadingReceipt")
	require.Len(t, calls, 1)
	require.Equal(t, "auditor", calls[0].identity)
	proof := calls[0].args[0].(*reading.Proof)
	require.Equal(t, "batch-0", proof.BatchID)
	require.Equal(t, 1, proof.Index)
	require.Equal(t, 3, proof.Size)

	status, body := fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1/readings/99/receipt", "")
	require.Equal(t, http.StatusNotFound, status, body)
	status, _ = fx.do(fx.as("auditor"), "GET", "/api/v1/devices/sensor-1/readings/x/receipt", "")
	require.Equal(t, http.StatusBadRequest, status)
}
