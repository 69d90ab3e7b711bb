package network

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// freePorts reserves n distinct free TCP ports on 127.0.0.1. All listeners
// are held open until every port is known, so the same port is never handed
// out twice; another process may still take one before the node binds it,
// which the node's start then reports as a busy port.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
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

// portOpen tells whether something accepts connections on the port.
func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", addr(port), 500*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
