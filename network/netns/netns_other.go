//go:build !linux

package netns

import "fmt"

// Open fails: network namespaces exist only on Linux.
func Open(name string) (*Namespace, error) {
	if _, err := path(name); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("netns: namespace %s: %w", name, ErrUnsupported)
}

func (ns *Namespace) do(func() error) error { return ErrUnsupported }
