package network

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// stopOrder is the order Stop and Down stop the kinds of node in: first
// what depends on others (a chaincode server serves its peer, a peer
// pulls blocks from the orderers). startOrder is the reverse.
var (
	stopOrder  = []NodeKind{KindChaincode, KindPeer, KindCA, KindOrderer}
	startOrder = []NodeKind{KindCA, KindOrderer, KindPeer, KindChaincode}
)

// stopGrace is how long a node has to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Stop stops every node of the network — chaincode servers, peers, CAs,
// orderers, each SIGTERM and after stopGrace SIGKILL — and records the
// network as stopped. Nothing in the state directory is removed: ledgers,
// crypto material, CA databases, ports, profiles and deployed chaincodes
// stay, and Start (or Up) brings the network back as it was. Stopping a
// network that is not running does nothing but record it as stopped.
func (n *Network) Stop(ctx context.Context) error {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	live := n.state.liveNodes()
	if len(live) == 0 {
		n.progressf("network in %s is already stopped (no process running)\n", n.state.StateDir)
	} else {
		if h, err := n.channelHeight(ctx); err == nil {
			n.state.StoppedHeight = h
		}
		for _, kind := range stopOrder {
			nodes := ofKind(live, kind)
			if len(nodes) == 0 {
				continue
			}
			if err := n.step(ctx, fmt.Sprintf("stop %s", countNodes(nodes)), func() error {
				return n.stopNodes(ctx, nodes)
			}); err != nil {
				return err
			}
		}
	}
	now := time.Now().UTC()
	if n.state.StoppedAt == nil {
		n.state.StoppedAt = &now
	}
	for _, nd := range n.state.Nodes {
		nd.Stopped = true
	}
	if err := n.state.save(); err != nil {
		return err
	}
	if len(live) > 0 {
		n.progressf("network stopped: %d processes; ledgers (height %d), crypto material, CA databases and ports kept in %s; `iotledger network start` resumes it\n",
			len(live), n.state.StoppedHeight, n.state.StateDir)
	}
	return nil
}

// ErrIncomplete is returned by Start for a state directory an Up did not
// finish creating: there is no network to resume.
var ErrIncomplete = errors.New("network was never completely set up")

// Start starts every node of a stopped (or crashed, or rebooted) network
// that is not running, on its recorded ports and with its recorded
// command, in dependency order (CAs, orderers, peers, chaincode servers),
// and returns once every node is healthy, the orderers have a Raft leader,
// the heights agree and discovery offers every org's peer for every
// chaincode. Nothing is regenerated: no crypto, no genesis block, no
// channel join, no deploy. A recorded port held by another process fails
// Start before anything starts, naming the port and the node. Starting a
// running network does nothing.
func (n *Network) Start(ctx context.Context) error {
	unlock, err := n.exclusive(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return n.start(ctx)
}

// start is Start with the network already taken (Up holds the lock).
func (n *Network) start(ctx context.Context) error {
	if !n.state.complete() {
		return fmt.Errorf("%w in %s (an `up` failed or was interrupted): `iotledger network down`, then `iotledger network up`",
			ErrIncomplete, n.state.StateDir)
	}
	var todo []*Node
	for _, nd := range n.state.Nodes {
		if !processAlive(nd.PID, nd.StartTicks) {
			todo = append(todo, nd)
		}
	}
	if len(todo) == 0 {
		n.progressf("network in %s is already running (%d processes)\n", n.state.StateDir, len(n.state.Nodes))
		n.state.StoppedAt = nil
		return n.state.save()
	}
	if err := ensureHosts(ctx, n.state.Hosts); err != nil {
		return err
	}
	if err := checkStartable(ctx, todo, portReleaseWait); err != nil {
		return err
	}
	err := n.startInOrder(ctx, todo)
	if err == nil {
		err = n.step(ctx, "Raft leader and heights agree", func() error {
			return n.waitConsistent(ctx, 2*time.Minute)
		})
	}
	if err == nil {
		err = n.step(ctx, "discovery offers every org's peer", func() error {
			for _, cc := range n.state.Chaincodes {
				if err := n.waitDiscovery(ctx, cc.Name, 90*time.Second); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		// Leave the network as it was: stopped, ready for another Start
		// once the cause is gone.
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := n.stopNodes(stopCtx, todo); serr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the nodes after the failure: %w", serr))
		}
		for _, nd := range todo {
			nd.Stopped = true
		}
		_ = n.state.save()
		return err
	}
	n.state.StoppedAt = nil
	if err := n.state.save(); err != nil {
		return err
	}
	h, _ := n.channelHeight(ctx)
	n.progressf("network running: %d processes started, channel %s at height %d, same ports and crypto material as before\n",
		len(todo), n.state.Channel, h)
	return nil
}

// startInOrder starts nodes kind by kind in startOrder, each kind in
// parallel, each waited for until healthy.
func (n *Network) startInOrder(ctx context.Context, todo []*Node) error {
	for _, kind := range startOrder {
		nodes := ofKind(todo, kind)
		if len(nodes) == 0 {
			continue
		}
		if err := n.step(ctx, fmt.Sprintf("start %s", countNodes(nodes)), func() error {
			return n.startNodes(ctx, nodes)
		}); err != nil {
			return err
		}
	}
	return nil
}

// portReleaseWait is how long checkStartable waits for a busy port to be
// freed before it refuses: the network's own processes, killed a moment
// ago (a crash, `kill -9`, a test), hold their sockets until the kernel
// has finished their exit, which for an orderer with its Raft log mapped
// can take a while after its PID has gone.
const portReleaseWait = 15 * time.Second

// checkStartable fails, before anything starts, if a node's command is gone
// or one of its recorded ports is taken and stays taken for wait. The
// network keeps its ports: the connection profiles, the hubs and the
// genesis block's orderer endpoints name them.
func checkStartable(ctx context.Context, nodes []*Node, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		errs, busy := startBlockers(nodes)
		if len(errs) == 0 {
			return nil
		}
		if !busy || !time.Now().Before(deadline) {
			return fmt.Errorf("cannot start the network, nothing was started: %w", errors.Join(errs...))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot start the network, nothing was started: %w", errors.Join(append(errs, ctx.Err())...))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startBlockers lists what stops nodes from starting: a missing command or
// a taken port (busy: at least one port, which may yet be freed).
func startBlockers(nodes []*Node) (errs []error, busy bool) {
	for _, nd := range nodes {
		if _, err := exec.LookPath(nd.Command); err != nil {
			errs = append(errs, &NodeError{Node: nd.Name, Log: nd.Log, Err: fmt.Errorf("command %s: %w", nd.Command, err)})
		}
		names := make([]string, 0, len(nd.Ports))
		for name := range nd.Ports {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if err := nd.checkPortFree(name); err != nil {
				busy = true
				errs = append(errs, &NodeError{Node: nd.Name, Log: nd.Log,
					Err: fmt.Errorf("its %s port %d is taken by another process (%w); the network keeps its ports (profiles, hubs and the channel config name them): free the port and start again", name, nd.Ports[name], err)})
			}
		}
	}
	return errs, busy
}

func (n *Network) waitConsistent(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st := n.status(ctx)
		if st.Healthy {
			return nil
		}
		select {
		case <-ctx.Done():
			var why []string
			for _, ns := range st.Unhealthy() {
				why = append(why, fmt.Sprintf("%s %s: %s (log %s)", ns.Name, ns.Health, ns.Error, ns.Log))
			}
			return fmt.Errorf("not healthy after %s: %s", timeout, strings.Join(why, "; "))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stopNodes stops nodes in parallel.
func (n *Network) stopNodes(ctx context.Context, nodes []*Node) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.kids.stop(ctx, nd, stopGrace)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// channelHeight is the highest channel height a running peer (or, without
// one, orderer) reports.
func (n *Network) channelHeight(ctx context.Context) (uint64, error) {
	var best uint64
	var last error
	found := false
	for _, kind := range []NodeKind{KindPeer, KindOrderer} {
		for _, nd := range n.state.nodesOf(kind) {
			if !processAlive(nd.PID, nd.StartTicks) {
				continue
			}
			m, err := scrapeMetrics(ctx, nd.addrOf(PortOperations), n.state.Channel)
			if err != nil {
				last = err
				continue
			}
			if h, ok := m[metricHeight]; ok {
				best, found = max(best, uint64(h)), true
			}
		}
		if found {
			return best, nil
		}
	}
	if last == nil {
		last = errors.New("no running peer or orderer reports it")
	}
	return 0, fmt.Errorf("channel height: %w", last)
}

// stoppedHow describes a network that has no process running.
func stoppedHow(st *State) string {
	if st.StoppedAt != nil {
		return fmt.Sprintf("stopped at %s, height %d", st.StoppedAt.Local().Format(time.DateTime), st.StoppedHeight)
	}
	return "its processes are gone: a crash or a reboot"
}

func ofKind(nodes []*Node, kind NodeKind) []*Node {
	var out []*Node
	for _, nd := range nodes {
		if nd.Kind == kind {
			out = append(out, nd)
		}
	}
	return out
}

// countNodes says "3 orderers" or "1 CA (ca.org1)".
func countNodes(nodes []*Node) string {
	if len(nodes) == 0 {
		return "no node"
	}
	noun := map[NodeKind]string{KindOrderer: "orderer", KindPeer: "peer", KindCA: "CA", KindChaincode: "chaincode server"}[nodes[0].Kind]
	if len(nodes) != 1 {
		noun += "s"
	}
	names := make([]string, len(nodes))
	for i, nd := range nodes {
		names[i] = nd.Name
	}
	return fmt.Sprintf("%d %s (%s)", len(nodes), noun, strings.Join(names, ", "))
}

func (n *Network) progressf(format string, args ...any) {
	if n.progress != nil {
		fmt.Fprintf(n.progress, format, args...)
	}
}
