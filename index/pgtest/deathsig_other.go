//go:build !linux

package pgtest

import "syscall"

// dieWithParent: only Linux has a parent-death signal; elsewhere the
// server is stopped by the test's cleanup alone.
func dieWithParent(*syscall.SysProcAttr) {}
