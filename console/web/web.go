// Package web holds the console's pages (html/template) and static assets
// (vanilla JavaScript modules, CSS, and the third-party files that
// `make console-assets` copies from the npm packages package-lock.json
// pins), embedded in the binary: the console needs no CDN and no internet.
package web

import (
	"embed"
	"io/fs"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Templates are the page templates: layout.html and one file per page.
func Templates() fs.FS { return templates }

// Static is the tree served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	return sub
}
