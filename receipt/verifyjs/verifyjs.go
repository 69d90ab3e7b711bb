// Package verifyjs holds the JavaScript verifier of receipts: one ES module
// (verify.mjs) and the subset of Fabric's protobuf messages it decodes
// (fabric.proto). The same files run in node (test/receipt-node's command
// line, which checks them against the Go verifier on real receipts) and in
// the browser (the console serves them, embedded here, to its receipts
// page), so the two cannot drift apart.
package verifyjs

import (
	"embed"
	"io/fs"
)

//go:embed verify.mjs fabric.proto
var files embed.FS

// Files are verify.mjs and fabric.proto.
func Files() fs.FS { return files }
