package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// parseProcStat reads the state (field 3) and start time (field 22) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(s string) (state byte, startTicks uint64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed: no command name")
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("malformed: %d fields after the command name, want at least 20", len(fields))
	}
	if len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed: state %q", fields[0])
	}
	ticks, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed start time: %w", err)
	}
	return fields[0][0], ticks, nil
}

// processAlive tells whether pid is still the process that was started with
// the recorded start time (and not a zombie or a recycled PID).
func processAlive(pid int, startTicks uint64) bool {
	if pid <= 0 {
		return false
	}
	state, ticks, err := procIdentity(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return startTicks == 0 || ticks == startTicks
}

// children keeps the exec.Cmd of processes this process started, so that
// their exit is reaped (no zombies) and noticed at once.
type children struct {
	mu     sync.Mutex
	exited map[int]chan struct{}
}

func newChildren() *children { return &children{exited: map[int]chan struct{}{}} }

// start launches n's command in its own session (so it outlives a CLI that
// started it and a terminal's Ctrl-C does not reach it), with its output
// appended to its log file, and records its PID and start time in n.
func (c *children) start(n *Node) error {
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log file: %w", n.Name, err)
	}
	defer func() { _ = logf.Close() }()
	fmt.Fprintf(logf, "\n==== %s starting %s %s\n", time.Now().Format(time.RFC3339), n.Command, strings.Join(n.Args, " "))
	cmd := exec.Command(n.Command, n.Args...)
	if n.Netns != "" {
		// ip netns exec enters the namespace and then execs the node, so
		// the PID recorded below is the node's own.
		cmd = exec.Command(ipCommand, append([]string{"netns", "exec", n.Netns, n.Command}, n.Args...)...)
	}
	cmd.Dir = n.Dir
	cmd.Env = n.Env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w (log: %s)", n.Name, n.Command, err, n.Log)
	}
	n.PID = cmd.Process.Pid
	n.StartTicks = 0
	if _, ticks, err := procIdentity(n.PID); err == nil {
		n.StartTicks = ticks
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.exited[n.PID] = done
	c.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// exitedChan returns a channel closed when a child started by this process
// exits; nil for processes started by another process.
func (c *children) exitedChan(pid int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.exited[pid]; ok {
		return ch
	}
	return nil
}

// ErrNodeExited reports a node that stopped while it was awaited.
var ErrNodeExited = errors.New("node exited")

// stop ends a node's process: SIGTERM to its process group, then SIGKILL
// after grace. A process that is already gone (or whose PID now belongs to
// another process) is left alone.
func (c *children) stop(ctx context.Context, n *Node, grace time.Duration) error {
	if !processAlive(n.PID, n.StartTicks) {
		return nil
	}
	signal := func(sig syscall.Signal) {
		// Each node leads its own session, so -PID reaches the node and any
		// child it forked (e.g. an external builder still running).
		if err := syscall.Kill(-n.PID, sig); err != nil {
			_ = syscall.Kill(n.PID, sig)
		}
	}
	signal(syscall.SIGTERM)
	if c.waitGone(ctx, n, grace) {
		return nil
	}
	signal(syscall.SIGKILL)
	if c.waitGone(ctx, n, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", n.Name, n.PID)
}

func (c *children) waitGone(ctx context.Context, n *Node, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	exited := c.exitedChan(n.PID)
	for {
		if exited == nil && !processAlive(n.PID, n.StartTicks) {
			return true
		}
		select {
		case <-exited:
			return true
		case <-tick.C:
		case <-deadline.C:
			return !processAlive(n.PID, n.StartTicks)
		case <-ctx.Done():
			return !processAlive(n.PID, n.StartTicks)
		}
	}
}
