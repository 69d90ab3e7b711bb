package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/console/web"
	"github.com/iotledger/iotledger/receipt/verifyjs"
)

// page is one page of the UI: its template and the script that fills it
// from the API.
type page struct {
	path, name, title, script string
	need                      Permission
	nav                       bool
	chart                     bool
}

var uiPages = []page{
	{path: "/{$}", name: "fleet", title: "Fleet", script: "fleet", need: PermDeviceRead, nav: true},
	{path: "/devices/{id}", name: "device", title: "Device", script: "device", need: PermDeviceRead, chart: true},
	{path: "/alerts", name: "alerts", title: "Alerts", script: "alerts", need: PermDeviceRead, nav: true},
	{path: "/commands", name: "commands", title: "Commands", script: "commands", need: PermDeviceRead, nav: true},
	{path: "/policies", name: "policies", title: "Policies and rules", script: "policies", need: PermPolicyRead, nav: true},
	{path: "/audit", name: "audit", title: "Audit trail", script: "audit", need: PermDeviceRead, nav: true},
	{path: "/receipts", name: "receipts", title: "Receipts", script: "receipts", need: PermReceiptRead, nav: true},
	{path: "/health", name: "health", title: "Network health", script: "health", need: PermNetworkRead, nav: true},
}

type pages struct {
	tmpl map[string]*template.Template
}

func newPages() (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}}
	for _, pg := range uiPages {
		t, err := template.New(pg.name).ParseFS(web.Templates(), "templates/layout.html", "templates/"+pg.name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: page %s: %w", pg.name, err)
		}
		p.tmpl[pg.name] = t
	}
	return p, nil
}

// navItem is a link of the page navigation.
type navItem struct {
	Href, Label string
	Current     bool
}

// pageData is what a page template sees.
type pageData struct {
	Title  string
	Me     Me
	Can    map[string]bool // permission with ':' as '_' → allowed
	Nav    []navItem
	Script string
	Chart  bool
	Device string
}

// PermissionList is the permissions, space separated, for scripts.
func (d pageData) PermissionList() string { return joinPerms(d.Me.Permissions) }

func (p *pages) routes(s *Server) []route {
	out := make([]route, 0, len(uiPages)+1)
	for _, pg := range uiPages {
		out = append(out, route{method: "GET", path: pg.path, need: pg.need, serve: p.render(s, pg)})
	}
	out = append(out,
		route{method: "GET", path: "/static/", serve: serveFiles("/static/", web.Static())},
		// The receipt verifier the node verifier runs too, kept in one place.
		route{method: "GET", path: "/static/receipt/", serve: serveFiles("/static/receipt/", verifyjs.Files())},
	)
	return out
}

// receiptWorker is the script of the receipts page's verifier worker, and
// receiptWorkerCSP its policy, which replaces the pages' own for the
// worker: protobufjs compiles its decoders with Function(), so the worker
// alone may evaluate code ('unsafe-eval'); it has no DOM, and it may fetch
// nothing (connect-src falls back to default-src 'none'), so a receipt is
// verified without any network request, whatever the code does.
const (
	receiptWorker    = "/static/js/receipt-worker.js"
	receiptWorkerCSP = "default-src 'none'; script-src 'self' 'unsafe-eval'"
)

// serveFiles serves an embedded tree under prefix, without directory
// listings.
func serveFiles(prefix string, files fs.FS) func(http.ResponseWriter, *http.Request, identity.Caller) error {
	h := http.StripPrefix(prefix, http.FileServerFS(files))
	return func(w http.ResponseWriter, r *http.Request, _ identity.Caller) error {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return nil
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.Path == receiptWorker {
			w.Header().Set("Content-Security-Policy", receiptWorkerCSP)
		}
		h.ServeHTTP(w, r)
		return nil
	}
}

func (p *pages) render(s *Server, pg page) func(http.ResponseWriter, *http.Request, identity.Caller) error {
	return func(w http.ResponseWriter, r *http.Request, c identity.Caller) error {
		me := s.me(c)
		d := pageData{Title: pg.title, Me: me, Can: map[string]bool{}, Script: pg.script, Chart: pg.chart}
		for _, perm := range me.Permissions {
			d.Can[strings.ReplaceAll(string(perm), ":", "_")] = true
		}
		for _, other := range uiPages {
			if other.nav && allowed(c.Role, other.need) {
				href := strings.TrimSuffix(other.path, "{$}")
				d.Nav = append(d.Nav, navItem{Href: href, Label: other.title, Current: other.name == pg.name})
			}
		}
		switch pg.name {
		case "device":
			d.Device = r.PathValue("id")
			d.Title = "Device " + d.Device
		case "audit":
			d.Device = r.URL.Query().Get("device")
		}
		var buf bytes.Buffer
		if err := p.tmpl[pg.name].ExecuteTemplate(&buf, "layout", d); err != nil {
			return fmt.Errorf("rendering page %s: %w", pg.name, err)
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		_, err := w.Write(buf.Bytes())
		return err
	}
}
