package console_test

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// chromiumNames are the executables Debian's chromium package and others
// install.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

var chromiumOnce struct {
	sync.Once
	path string
	err  string
}

// chromium finds a headless-capable Chromium, installing Debian's
// chromium package when none is there and the test may (root, apt-get
// present, IOTLEDGER_INSTALL_CHROMIUM not "0"). A machine without one
// fails the test, saying what to install: a browser test that skips would
// pass without testing anything.
func chromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() {
		if p := os.Getenv("IOTLEDGER_CHROMIUM"); p != "" {
			chromiumOnce.path = p
			return
		}
		if p := lookChromium(); p != "" {
			chromiumOnce.path = p
			return
		}
		if os.Getenv("IOTLEDGER_INSTALL_CHROMIUM") == "0" || os.Geteuid() != 0 {
			chromiumOnce.err = "no Chromium found: install Debian's chromium package (sudo apt-get install -y chromium) or set IOTLEDGER_CHROMIUM to a Chromium executable"
			return
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			chromiumOnce.err = "no Chromium found and no apt-get to install it: set IOTLEDGER_CHROMIUM to a Chromium executable"
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		t.Log("installing Debian's chromium package (apt-get install -y chromium)")
		for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "chromium"}} {
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				chromiumOnce.err = "apt-get " + args[0] + " failed: " + err.Error() + "\n" + tail(out)
				return
			}
		}
		if chromiumOnce.path = lookChromium(); chromiumOnce.path == "" {
			chromiumOnce.err = "apt-get installed chromium, but no executable of it is on PATH"
		}
	})
	if chromiumOnce.err != "" {
		t.Fatal(chromiumOnce.err)
	}
	return chromiumOnce.path
}

func lookChromium() string {
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
