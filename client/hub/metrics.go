package hub

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/iotledger/iotledger/client"
)

// metrics are the hub's Prometheus series, registered on the hub's own
// registry (several hubs may live in one process, in tests).
type metrics struct {
	registry          *prometheus.Registry
	ingested          prometheus.Counter
	duplicates        prometheus.Counter
	rejected          *prometheus.CounterVec
	ledgerRejected    *prometheus.CounterVec
	submitSeconds     prometheus.Histogram
	submitStage       *prometheus.HistogramVec
	batchesCommitted  prometheus.Counter
	readingsCommitted prometheus.Counter
	authFailures      *prometheus.CounterVec
	aclDenied         *prometheus.CounterVec
	commandsDelivered prometheus.Counter
	acksRecorded      prometheus.Counter
	disconnects       *prometheus.CounterVec
	alreadyOnLedger   prometheus.Counter
	parked            *prometheus.CounterVec // readings parked, by reason (parked.go)
	unparked          prometheus.Counter

	subscriptionsRefused *prometheus.CounterVec
	protocolErrors       *prometheus.CounterVec
	deliveriesBlocked    prometheus.Counter
	commandsRedelivered  prometheus.Counter

	commit commitRecord // outcomes of submits, for /healthz
}

// commitRecord is what the hub knows about committing: when a batch last
// committed and when and why a submit last failed (an unclassified error:
// the ledger did not answer, or the outcome is unknown). A chaincode
// refusal is an answer, not a failure to commit, and is not recorded here.
type commitRecord struct {
	mu           sync.Mutex
	lastCommit   time.Time
	lastFailure  time.Time
	lastError    string
	failingSince time.Time // first failure since the last commit; zero after a commit
}

func (c *commitRecord) committed(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastCommit = now
	c.failingSince = time.Time{}
}

func (c *commitRecord) failed(now time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastFailure = now
	c.lastError = err.Error()
	if c.failingSince.IsZero() {
		c.failingSince = now
	}
}

// commitSnapshot is a copy of a commitRecord.
type commitSnapshot struct {
	lastCommit, lastFailure, failingSince time.Time
	lastError                             string
}

func (c *commitRecord) snapshot() commitSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return commitSnapshot{lastCommit: c.lastCommit, lastFailure: c.lastFailure, failingSince: c.failingSince, lastError: c.lastError}
}

// unixSeconds is a time as a Prometheus timestamp gauge (0 for never).
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// newMetrics makes the hub's series; connected counts connected devices,
// identityVerified is 1 once the ledger's identity is verified, else 0.
func newMetrics(o *Outbox, connected, identityVerified func() float64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_ingested_total",
			Help: "Readings accepted and stored in the outbox (PUBACK sent).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_duplicate_total",
			Help: "Retransmissions of readings already accepted (acknowledged, not stored again).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_rejected_total",
			Help: "Messages refused by the hub, by reason.",
		}, []string{"reason"}),
		ledgerRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_ledger_rejected_total",
			Help: "Accepted readings the ledger refused (isolated by bisecting the batch), by chaincode error code; below_window: recovered readings older than the device's replay window, dropped unsubmitted.",
		}, []string{"reason"}),
		submitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "iotledger_hub_submit_duration_seconds",
			Help:    "Duration of SubmitBatch calls (endorse, order, commit).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}),
		submitStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iotledger_hub_submit_stage_duration_seconds",
			Help:    "Duration of each stage of a SubmitBatch attempt: endorse (proposal to endorsed transaction), submit (to the orderer's acceptance), commit-status (from there until the gateway peer reports the commit: ordering, delivery, validation, commit); result ok or error.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"stage", "result"}),
		batchesCommitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_batches_committed_total",
			Help: "Batches committed on the ledger.",
		}),
		readingsCommitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_committed_total",
			Help: "Readings committed on the ledger by this hub.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_auth_failures_total",
			Help: "Refused MQTT connections, by reason (will_refused: the CONNECT asked for a will).",
		}, []string{"reason"}),
		aclDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_acl_denied_total",
			Help: "Publishes and subscriptions refused by the topic ACL.",
		}, []string{"op"}),
		commandsDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_commands_delivered_total",
			Help: "Commands published to devices and marked delivered on the ledger.",
		}),
		acksRecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_acks_recorded_total",
			Help: "Device command acks recorded on the ledger.",
		}),
		alreadyOnLedger: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_already_on_ledger_total",
			Help: "Readings found on the ledger when re-checked (committed before a crash or an unknown outcome).",
		}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_parked_total",
			Help: "Accepted readings parked instead of dropped, by reason (not_found: the ledger does not know the device; wrong network, or its record went away).",
		}, []string{"reason"}),
		unparked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_readings_unparked_total",
			Help: "Parked readings moved back to pending because the ledger knows their device again.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_forced_disconnects_total",
			Help: "Devices disconnected by the hub because of a ledger event, by new status.",
		}, []string{"status"}),
		subscriptionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_subscriptions_refused_total",
			Help: "SUBSCRIBE filters refused, by reason (other_device, wildcard, system_topic, shared, not_subscribable, not_a_device_topic, invalid_filter, refused_by_broker).",
		}, []string{"reason"}),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotledger_hub_protocol_errors_total",
			Help: "Device connections the broker closed because the device broke MQTT or the hub's packet limits, by reason (packet_too_large: over the maximum packet size).",
		}, []string{"reason"}),
		deliveriesBlocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_deliveries_blocked_total",
			Help: "Publishes to a device dropped before the wire because the hub had not sent them (a will, $SYS, anything not the hub's); should stay 0.",
		}),
		commandsRedelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotledger_hub_commands_redelivered_total",
			Help: "Delivered but unacked commands sent again to a device when it subscribed on a new connection.",
		}),
	}
	m.registry.MustRegister(
		m.ingested, m.duplicates, m.rejected, m.ledgerRejected, m.submitSeconds, m.submitStage,
		m.batchesCommitted, m.readingsCommitted, m.authFailures, m.aclDenied,
		m.commandsDelivered, m.acksRecorded, m.disconnects, m.alreadyOnLedger, m.parked, m.unparked,
		m.subscriptionsRefused, m.protocolErrors, m.deliveriesBlocked, m.commandsRedelivered,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_outbox_depth",
			Help: "Readings accepted but not yet resolved against the ledger.",
		}, func() float64 { return float64(o.Depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_readings_held_back",
			Help: "Readings not yet in a batch because their device already has one in flight (a device's readings are in one batch in flight at a time); rising steadily: a device sends more than a batch per commit round trip.",
		}, func() float64 { return float64(o.HeldBack()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_readings_parked",
			Help: "Accepted readings parked in the outbox, neither submitted nor dropped, because the ledger did not know their device (see `iotledger hub parked list`); not 0: look.",
		}, func() float64 { return float64(o.Parked()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_ledger_identity_verified",
			Help: "1 once the ledger's trust anchor (channel, genesis block hash) is the one the outbox belongs to; 0 before, or for another ledger: nothing is submitted (see /healthz).",
		}, identityVerified),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_acks_pending",
			Help: "Command acks accepted but not yet recorded on the ledger.",
		}, func() float64 { return float64(o.PendingAcks()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_connected_devices",
			Help: "Devices connected to this hub's broker.",
		}, connected),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_last_commit_timestamp_seconds",
			Help: "Unix time of the last batch the ledger committed (0: none since the hub started).",
		}, func() float64 { return unixSeconds(m.commit.snapshot().lastCommit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotledger_hub_last_submit_failure_timestamp_seconds",
			Help: "Unix time of the last submit that failed without an answer from the ledger (0: none since the hub started).",
		}, func() float64 { return unixSeconds(m.commit.snapshot().lastFailure) }),
	)
	return m
}

// buildInfo is iotledger_build_info: always 1, labelled with the module
// version of the binary ("(devel)" when built from a source tree) and the
// Go version it was built with.
func buildInfo() prometheus.Collector {
	version, goversion := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, goversion = bi.Main.Version, bi.GoVersion
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "iotledger_build_info",
		Help:        "Build of this binary: version and Go version, as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goversion},
	})
	g.Set(1)
	return g
}

// newSubmitTrace is the trace the hub puts in the context of its submits:
// each stage's duration goes to the stage histogram and to
// Config.SubmitTrace.
func (h *Hub) newSubmitTrace() *client.SubmitTrace {
	next := h.cfg.SubmitTrace
	return &client.SubmitTrace{StageDone: func(tx string, stage client.Stage, d time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = "error"
		}
		h.metrics.submitStage.WithLabelValues(string(stage), result).Observe(d.Seconds())
		if next != nil && next.StageDone != nil {
			next.StageDone(tx, stage, d, err)
		}
	}}
}
