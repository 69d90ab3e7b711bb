package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Removal says what Down deletes: everything in the state directory, the
// directory itself and its lock file. Nothing of it can be had back.
type Removal struct {
	StateDir string `json:"stateDir"`
	Running  int    `json:"running"` // processes Down stops
	Orderers int    `json:"orderers"`
	Peers    int    `json:"peers"`
	CAs      int    `json:"cas"`
	// Height is the channel height: what the running nodes report, else
	// what Stop saw (HeightKnown false if neither).
	Height      uint64 `json:"height"`
	HeightKnown bool   `json:"heightKnown"`
	LedgerBytes int64  `json:"ledgerBytes"` // nodes/*/data: ledgers, state databases, Raft logs
	// Identities are the CA-issued identities (<org>/users/*) besides the
	// cryptogen material in crypto/.
	Identities int      `json:"identities"`
	Chaincodes []string `json:"chaincodes"`
	TotalBytes int64    `json:"totalBytes"`
	// Hosts describes the namespaces, veths and bridge of a hosts-mode
	// network; empty otherwise.
	Hosts string `json:"hosts,omitempty"`
}

// Removal describes what Down would delete now.
func (n *Network) Removal(ctx context.Context) Removal {
	n.mu.Lock()
	defer n.mu.Unlock()
	_ = n.reload()
	return n.removal(ctx)
}

func (n *Network) removal(ctx context.Context) Removal {
	st := n.state
	r := Removal{
		StateDir: st.StateDir, Running: len(st.liveNodes()),
		Orderers: len(st.nodesOf(KindOrderer)), Peers: len(st.nodesOf(KindPeer)), CAs: len(st.nodesOf(KindCA)),
		LedgerBytes: dirSize(filepath.Join(st.StateDir, "nodes")), TotalBytes: dirSize(st.StateDir),
	}
	if h, err := n.channelHeight(ctx); err == nil {
		r.Height, r.HeightKnown = h, true
	} else if st.StoppedHeight > 0 {
		r.Height, r.HeightKnown = st.StoppedHeight, true
	}
	for _, o := range st.Orgs {
		users, _ := os.ReadDir(filepath.Join(st.StateDir, strings.ToLower(o.Name), "users"))
		r.Identities += len(users)
	}
	for _, cc := range st.Chaincodes {
		r.Chaincodes = append(r.Chaincodes, cc.Name)
	}
	if hs := st.Hosts; hs != nil {
		r.Hosts = fmt.Sprintf("%d network namespaces (%s-*), their veth pairs and bridge %s (%s)", len(hs.Hosts), hs.Prefix, hs.Bridge, hs.Subnet)
	}
	return r
}

// Lines are the progress lines Down prints for the removal.
func (r Removal) Lines() []string {
	height := "height unknown"
	if r.HeightKnown {
		height = fmt.Sprintf("height %d", r.Height)
	}
	lines := []string{
		fmt.Sprintf("removing the network in %s (%s in all):", r.StateDir, humanBytes(r.TotalBytes)),
		fmt.Sprintf("  ledgers of %s and %s at %s (%s in nodes/)", plural(r.Orderers, "orderer"), plural(r.Peers, "peer"), height, humanBytes(r.LedgerBytes)),
		fmt.Sprintf("  crypto material: the orgs' CA, TLS CA, node and admin keys (crypto/), %d CA-issued identities and the hubs' TLS certificates", r.Identities),
		fmt.Sprintf("  %s (<org>/ca/), the connection profiles (<org>/connection.json), the genesis block (config/)", plural(r.CAs, "CA database")),
		fmt.Sprintf("  deployed chaincodes (%s): servers, packages, builds (chaincode/); logs (logs/)", strings.Join(r.Chaincodes, ", ")),
	}
	if r.Hosts != "" {
		lines[2] = strings.Replace(lines[2], "(crypto/)", "(each org's <org>/crypto/)", 1)
		lines = append(lines, "  hosts: "+r.Hosts)
	}
	if r.Running > 0 {
		lines = append(lines, fmt.Sprintf("  after stopping its %s", plural(r.Running, "running process")))
	}
	return lines
}

// Down stops every process of the network (SIGTERM, then SIGKILL) and
// removes its state directory; the progress writer gets what it removes
// (Removal). To stop the network and keep it, use Stop.
func (n *Network) Down(ctx context.Context) error {
	unlock, err := n.exclusive(ctx)
	if errors.Is(err, ErrNotUp) {
		_ = os.Remove(n.state.StateDir + ".lock")
		return nil // already down (e.g. by another process)
	}
	if err != nil {
		return err
	}
	defer unlock()
	if n.progress != nil {
		for _, l := range n.removal(ctx).Lines() {
			fmt.Fprintln(n.progress, l)
		}
	}
	if err := n.stopAll(ctx); err != nil {
		return err
	}
	// Namespaces, veths and bridge go by their recorded names; the state
	// dir stays until they are gone, so that Down can be run again.
	if err := removeHosts(ctx, n.state.Hosts); err != nil {
		return err
	}
	if err := os.RemoveAll(n.state.StateDir); err != nil {
		return fmt.Errorf("remove state dir: %w", err)
	}
	_ = os.Remove(n.state.StateDir + ".lock")
	return nil
}

// dirSize is the size of the regular files under dir.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file vanishing while counting is not an error here
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// plural says "1 peer", "2 peers", "3 running processes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for v := b / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
