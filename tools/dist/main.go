// Command dist builds the release archives of iotledger (`make dist`): for
// each platform, every main package under cmd/ built statically
// (CGO_ENABLED=0, -trimpath) with its version and commit stamped in, packed
// with the README and licence into a .tar.gz, plus a SHA256SUMS file that
// `sha256sum -c` checks.
//
//	go run ./tools/dist [-out dist] [-platforms linux/amd64,linux/arm64] [-version v1.2.0]
//
// The archives are reproducible: the same commit, Go version and build time
// (SOURCE_DATE_EPOCH, default the commit's time) give the same bytes.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var (
		opts      options
		platforms string
		commands  string
	)
	flag.StringVar(&opts.Out, "out", "dist", "directory for the archives and SHA256SUMS")
	flag.StringVar(&platforms, "platforms", defaultPlatforms, "GOOS/GOARCH pairs, comma separated")
	flag.StringVar(&commands, "commands", "", "only these commands of cmd/, comma separated (default: all)")
	flag.StringVar(&opts.Version, "version", "", "version to stamp and name the archives by (default: the tag on HEAD, else a Go pseudo-version)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dist takes no arguments, got %q\n", flag.Arg(0))
		os.Exit(2)
	}
	opts.Platforms = splitList(platforms)
	opts.Commands = splitList(commands)
	opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rel, err := build(ctx, opts)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
	for _, a := range rel.Archives {
		fmt.Println(a)
	}
	fmt.Println(rel.Sums)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
