package network

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// checkHealth asks a node's operations endpoint for /healthz. Fabric answers
// 200 with {"status":"OK"} or 503 naming the failed checks.
func checkHealth(ctx context.Context, opsAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+opsAddr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// nodeHealth checks a node: its process, then its operations endpoint (or,
// for a chaincode server, its listener).
func nodeHealth(ctx context.Context, n *Node) error {
	if !processAlive(n.PID, n.StartTicks) {
		if n.Stopped {
			return errors.New("stopped")
		}
		return fmt.Errorf("process %d is not running", n.PID)
	}
	if _, ok := n.Ports[PortOperations]; ok {
		return checkHealth(ctx, n.addrOf(PortOperations))
	}
	if !portOpen(n.Address()) {
		return fmt.Errorf("nothing listens on %s", n.Address())
	}
	return nil
}

// waitHealthy polls a freshly started node until it is healthy. If its
// process exits first, the error names the node, its log file and the log's
// last lines.
func waitHealthy(ctx context.Context, kids *children, n *Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited := kids.exitedChan(n.PID)
	var last error
	for {
		last = nodeHealth(ctx, n)
		if last == nil {
			return nil
		}
		if !processAlive(n.PID, n.StartTicks) {
			return nodeFailure(n, fmt.Errorf("%w during start", ErrNodeExited))
		}
		select {
		case <-exited:
			return nodeFailure(n, fmt.Errorf("%w during start", ErrNodeExited))
		case <-ctx.Done():
			return nodeFailure(n, fmt.Errorf("not healthy after %s: %w", timeout, last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NodeError is a failure of one node; it names the node and its log file.
type NodeError struct {
	Node    string
	Log     string
	LogTail string
	Err     error
}

func (e *NodeError) Error() string {
	s := fmt.Sprintf("%s: %v (log: %s)", e.Node, e.Err, e.Log)
	if e.LogTail != "" {
		s += "\n--- last lines of " + e.Log + " ---\n" + e.LogTail
	}
	return s
}

func (e *NodeError) Unwrap() error { return e.Err }

func nodeFailure(n *Node, err error) error {
	return &NodeError{Node: n.Name, Log: n.Log, LogTail: logTail(n.Log, 15), Err: err}
}

func logTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	return tail(string(data), lines)
}

// peerHeight reads a peer's block height for a channel from its Prometheus
// metrics (ledger_blockchain_height).
func peerHeight(ctx context.Context, n *Node, channel string) (uint64, error) {
	m, err := scrapeMetrics(ctx, n.addrOf(PortOperations), channel)
	if err != nil {
		return 0, err
	}
	h, ok := m[metricHeight]
	if !ok {
		return 0, fmt.Errorf("peer has not joined channel %s", channel)
	}
	return uint64(h), nil
}

// scrapeMetrics reads a node's Prometheus metrics from its operations
// endpoint and returns the samples labelled with the channel, by name.
func scrapeMetrics(ctx context.Context, opsAddr, channel string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+opsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, channel)
}

// parseMetrics reads the Prometheus text format and returns the value of
// each sample that carries the label channel="<channel>", by metric name
// (the first such sample of a name wins).
func parseMetrics(r io.Reader, channel string) (map[string]float64, error) {
	want := `channel="` + channel + `"`
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "}")
		if !ok || !hasLabel(labels, want) {
			continue
		}
		if _, seen := out[name]; seen {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics: %q: no value", line)
		}
		f, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", line, err)
		}
		out[name] = f
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// hasLabel reports whether a sample's label list (between the braces)
// holds the label pair want exactly.
func hasLabel(labels, want string) bool {
	for l := range strings.SplitSeq(labels, ",") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// adminClient is an HTTPS client for an orderer's channel participation API,
// authenticated with the orderer org admin's TLS client certificate.
func adminClient(caFile, certFile, keyFile string) (*http.Client, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read orderer TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load orderer admin TLS client certificate: %w", err)
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		}},
	}, nil
}

// ordererChannel is the channel participation API's view of one channel.
type ordererChannel struct {
	Name              string `json:"name"`
	ConsensusRelation string `json:"consensusRelation"`
	Status            string `json:"status"`
	Height            uint64 `json:"height"`
}

func ordererChannelInfo(ctx context.Context, hc *http.Client, adminAddr, channel string) (*ordererChannel, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"https://"+adminAddr+"/participation/v1/channels/"+channel, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("channel participation API: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var ch ordererChannel
	if err := json.Unmarshal(body, &ch); err != nil {
		return nil, fmt.Errorf("channel participation API: %w", err)
	}
	return &ch, nil
}
