package testnet

import (
	"bytes"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// prefixed writes lines to stderr with a prefix, so that a package's
// bring-up progress is recognisable in `go test` output.
func prefixed(prefix string) io.Writer { return &prefixWriter{prefix: prefix, w: os.Stderr} }

type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	buf    bytes.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			// Keep the partial line for the next write.
			rest := append([]byte{}, line...)
			p.buf.Reset()
			p.buf.Write(rest)
			return len(b), nil
		}
		if _, err := io.WriteString(p.w, p.prefix+string(line)); err != nil {
			return 0, err
		}
	}
}

func notifyTerm(c chan os.Signal) { signal.Notify(c, syscall.SIGTERM, syscall.SIGINT) }
