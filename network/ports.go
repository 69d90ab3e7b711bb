package network

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Ports are chosen below the kernel's ephemeral range: a port from that
// range may at any moment become the local port of some outgoing
// connection, and then a node cannot bind it.
const (
	portRangeLow  = 10000
	ephemeralFile = "/proc/sys/net/ipv4/ip_local_port_range"
)

// portRange returns the range to allocate from: [10000, start of the
// ephemeral range), or nothing if that is too small.
func portRange() (low, high int) {
	data, err := os.ReadFile(ephemeralFile)
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0, 0
	}
	eph, err := strconv.Atoi(fields[0])
	if err != nil || eph-portRangeLow < 1000 {
		return 0, 0
	}
	return portRangeLow, eph - 1
}

// freePorts reserves n distinct free TCP ports on 127.0.0.1, scanning the
// range from a random point so that networks started at the same time
// rarely try the same ports. All listeners are held open until every port is
// known, so the same port is never handed out twice; another process may
// still take one before the node binds it, which Up notices and answers by
// starting over with new ports.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	low, high := portRange()
	if high > low {
		size := high - low + 1
		start := rand.IntN(size) //nolint:gosec // spreading port choices, not a secret
		for i := 0; i < size && len(ports) < n; i++ {
			p := low + (start+i)%size
			l, err := net.Listen("tcp", addr(p))
			if err != nil {
				continue
			}
			ls = append(ls, l)
			ports = append(ports, p)
		}
		if len(ports) == n {
			return ports, nil
		}
	}
	// No usable range (or it is full): let the kernel choose.
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("allocate a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portAllocator hands out ports reserved by freePorts one at a time.
type portAllocator struct{ ports []int }

func newPortAllocator(n int) (*portAllocator, error) {
	p, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	return &portAllocator{ports: p}, nil
}

func (a *portAllocator) next() int {
	if len(a.ports) == 0 {
		panic("network: port allocator exhausted") // a bug in counting ports, not a runtime condition
	}
	p := a.ports[0]
	a.ports = a.ports[1:]
	return p
}

// ErrPortBusy reports a port that another process already listens on.
var ErrPortBusy = errors.New("port busy")

// checkPortFree fails with ErrPortBusy when something listens on the port.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		return fmt.Errorf("%w: 127.0.0.1:%d: %w", ErrPortBusy, port, err)
	}
	return l.Close()
}

// portOpen tells whether something accepts connections on host:port.
func portOpen(address string) bool {
	c, err := net.DialTimeout("tcp", address, 500*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// loopback is where every node listens unless it has a host of its own
// (hosts mode: a network namespace with its own address).
const loopback = "127.0.0.1"

func addr(port int) string { return hostPort(loopback, port) }

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// ip is the address the node listens on: its host's, else loopback.
func (n *Node) ip() string {
	if n.IP == "" {
		return loopback
	}
	return n.IP
}

// addrOf is ip:port of one of the node's named ports.
func (n *Node) addrOf(port string) string { return hostPort(n.ip(), n.Ports[port]) }

// checkPortFree fails with ErrPortBusy when another process listens on
// the node's named port. A node in a network namespace of its own shares
// its ports with no process outside the network: nothing to check.
func (n *Node) checkPortFree(port string) error {
	if n.Netns != "" {
		return nil
	}
	return checkPortFree(n.Ports[port])
}
