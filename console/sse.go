package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/iotledger/iotledger/chaincode/api"
	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
)

// streamLimiter bounds live streams, in all and per identity.
type streamLimiter struct {
	mu        sync.Mutex
	total     int
	max       int
	perMax    int
	perCaller map[string]int
}

func newStreamLimiter(maxTotal, perIdentity int) *streamLimiter {
	return &streamLimiter{max: maxTotal, perMax: perIdentity, perCaller: map[string]int{}}
}

// acquire takes a stream slot for name, or says why not.
func (l *streamLimiter) acquire(name string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perCaller[name] >= l.perMax {
		return nil, &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyStreams,
			Message: fmt.Sprintf("identity %s already has %d live streams open (the most one identity may): close a tab or a chart", name, l.perMax)}
	}
	if l.total >= l.max {
		return nil, &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyStreams,
			Message: fmt.Sprintf("the console serves %d live streams already (its limit): try again later", l.max)}
	}
	l.total++
	l.perCaller[name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.perCaller[name]--; l.perCaller[name] == 0 {
				delete(l.perCaller, name)
			}
		})
	}, nil
}

// sseWriter writes server-sent events.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush()
	return s
}

func (s *sseWriter) event(name, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		if _, err := fmt.Fprintf(s.w, "id: %s\n", id); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseWriter) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.rc.Flush()
}

// streamReadings sends a device's new readings as they reach the index
// (event "reading", id = seq). It starts after ?after= or the
// Last-Event-ID a reconnecting browser sends, else after the newest
// reading indexed now.
func (s *Server) streamReadings(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	device := r.PathValue("id")
	after, err := streamStart(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if after == nil {
		newest, err := st.Readings(ctx, index.ReadingQuery{Device: device, Limit: 1, Newest: true})
		if err != nil {
			return err
		}
		var seq uint64
		if len(newest) == 1 {
			seq = newest[0].Seq
		}
		after = &seq
	}
	release, err := s.streams.acquire(c.Name)
	if err != nil {
		return err
	}
	defer release()
	sse := startSSE(w)
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	keepalive := time.NewTicker(s.cfg.KeepaliveInterval)
	defer keepalive.Stop()
	last := *after
	for {
		rs, err := st.Readings(ctx, index.ReadingQuery{Device: device, AfterSeq: last, Limit: 500})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			_ = sse.event("error", "", Error{Code: CodeUnavailable, Message: "reading the index: " + err.Error()})
			return nil
		}
		for _, rd := range rs {
			v, err := index.View(rd)
			if err != nil {
				return nil
			}
			if err := sse.event("reading", strconv.FormatUint(rd.Seq, 10), v); err != nil {
				return nil
			}
			last = rd.Seq
		}
		if len(rs) == 500 {
			continue // more waiting: no pause
		}
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			if err := sse.comment("keepalive"); err != nil {
				return nil
			}
		case <-poll.C:
		}
	}
}

func streamStart(r *http.Request) (*uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if q := r.URL.Query().Get("after"); q != "" {
		v = q
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, badRequest("after %q: want a sequence number", v)
	}
	return &n, nil
}

// LiveAlert is an alert as the events stream sends it.
type LiveAlert struct {
	Block     uint64    `json:"block"`
	TxID      string    `json:"txId"`
	Timestamp time.Time `json:"timestamp"`
	Alert     api.Alert `json:"alert"`
}

// LiveCommand is a command's new state as the events stream sends it.
type LiveCommand struct {
	Block     uint64      `json:"block"`
	TxID      string      `json:"txId"`
	Timestamp time.Time   `json:"timestamp"`
	Command   api.Command `json:"command"`
}

// LiveStatus is a device status change as the events stream sends it.
type LiveStatus struct {
	Block     uint64           `json:"block"`
	TxID      string           `json:"txId"`
	Timestamp time.Time        `json:"timestamp"`
	Change    api.StatusChange `json:"change"`
}

// streamEvents sends what committed transactions produce, from now on, as
// the caller reads the chain: events "alert", "command" and "status",
// optionally only of ?device=.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
	device := r.URL.Query().Get("device")
	l, err := s.ledger(r.Context(), c)
	if err != nil {
		return err
	}
	release, err := s.streams.acquire(c.Name)
	if err != nil {
		return err
	}
	defer release()
	ctx := r.Context()
	evs, err := l.Events(ctx, client.EventOptions{})
	if err != nil {
		return err
	}
	sse := startSSE(w)
	keepalive := time.NewTicker(s.cfg.KeepaliveInterval)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			if err := sse.comment("keepalive"); err != nil {
				return nil
			}
		case ev, ok := <-evs:
			if !ok {
				return nil
			}
			if err := sendEvent(sse, ev, device); err != nil {
				return nil
			}
		}
	}
}

func sendEvent(sse *sseWriter, ev client.ChaincodeEvent, device string) error {
	at := ev.Event.Timestamp
	for _, a := range ev.Event.Alerts {
		if device == "" || a.Device == device {
			if err := sse.event("alert", "", LiveAlert{Block: ev.BlockNumber, TxID: ev.TxID, Timestamp: at, Alert: a}); err != nil {
				return err
			}
		}
	}
	for _, cmd := range ev.Event.Commands {
		if device == "" || cmd.Device == device {
			if err := sse.event("command", "", LiveCommand{Block: ev.BlockNumber, TxID: ev.TxID, Timestamp: at, Command: cmd}); err != nil {
				return err
			}
		}
	}
	for _, ch := range ev.Event.StatusChanges {
		if device == "" || ch.Device == device {
			if err := sse.event("status", "", LiveStatus{Block: ev.BlockNumber, TxID: ev.TxID, Timestamp: at, Change: ch}); err != nil {
				return err
			}
		}
	}
	return nil
}
