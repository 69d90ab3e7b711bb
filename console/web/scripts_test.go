package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Until the browser tests run them, these checks catch the page scripts'
// commonest breakage: importing a name api.js does not export, and looking
// up an element id the page does not have.

var (
	exportRe   = regexp.MustCompile(`(?m)^export (?:async )?(?:function|const|class) (\w+)`)
	importRe   = regexp.MustCompile(`import \{([^}]*)\} from '\./api\.js'`)
	byIDRe     = regexp.MustCompile(`getElementById\('([\w-]+)'\)`)
	selectIDRe = regexp.MustCompile(`querySelector(?:All)?\('#([\w-]+)`)
	showErrRe  = regexp.MustCompile(`showError\('([\w-]+)'`)
	idAttrRe   = regexp.MustCompile(`\bid="([\w-]+)"`)
)

func read(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	require.NoError(t, err)
	return string(b)
}

func TestPageScriptsImportOnlyWhatAPIExports(t *testing.T) {
	var exported []string
	for _, m := range exportRe.FindAllStringSubmatch(read(t, Static(), "js/api.js"), -1) {
		exported = append(exported, m[1])
	}
	require.Contains(t, exported, "api")
	scripts, err := fs.Glob(Static(), "js/*.js")
	require.NoError(t, err)
	for _, s := range scripts {
		for _, m := range importRe.FindAllStringSubmatch(read(t, Static(), s), -1) {
			for name := range strings.SplitSeq(m[1], ",") {
				name = strings.TrimSpace(name)
				require.True(t, slices.Contains(exported, name), "%s imports %q, which api.js does not export", s, name)
			}
		}
	}
}

func TestPageScriptsFindTheirElements(t *testing.T) {
	layout := read(t, Templates(), "templates/layout.html")
	for _, page := range []string{"fleet", "device", "alerts", "commands", "policies", "audit", "receipts", "health"} {
		html := layout + read(t, Templates(), "templates/"+page+".html")
		var ids []string
		for _, m := range idAttrRe.FindAllStringSubmatch(html, -1) {
			ids = append(ids, m[1])
		}
		js := read(t, Static(), "js/"+page+".js")
		for _, re := range []*regexp.Regexp{byIDRe, selectIDRe, showErrRe} {
			for _, m := range re.FindAllStringSubmatch(js, -1) {
				require.True(t, slices.Contains(ids, m[1]), "js/%s.js looks up #%s, which the %s page does not have", page, m[1], page)
			}
		}
	}
}
