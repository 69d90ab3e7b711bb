//go:build linux

package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Open returns the named namespace (made with ip netns add); it must exist.
func Open(name string) (*Namespace, error) {
	p, err := path(name)
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return nil, fmt.Errorf("netns: namespace %s: %w", name, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return nil, fmt.Errorf("netns: %s is not a namespace (not bound from nsfs)", p)
	}
	return &Namespace{name: name, path: p}, nil
}

// do runs f on an OS thread that is in the namespace for f's duration. The
// thread goes back to the namespace it came from; if it cannot, it stays
// locked to the goroutine, and the runtime ends the thread with it rather
// than hand a thread in the wrong namespace to other goroutines.
func (ns *Namespace) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("reading this thread's namespace: %w", err)
			return
		}
		defer back.Close()
		target, err := os.Open(ns.path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering the namespace: %w", err)
			return
		}
		ferr := f()
		// What f made is sound either way: its sockets are in the namespace.
		if err := unix.Setns(int(back.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}
