package console

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

// Until a browser runs the pages, their markup is checked for what makes
// them usable by keyboard and screen reader: a language, one h1, landmarks,
// a skip link to main, and a label for every form control.
func TestEveryPageHasLandmarksAndLabelledControls(t *testing.T) {
	fx := newFixture(t)
	for _, pg := range uiPages {
		path := strings.Replace(strings.TrimSuffix(pg.path, "{$}"), "{id}", "sensor-1", 1)
		t.Run(pg.name, func(t *testing.T) {
			status, body := fx.do(fx.as("operator"), "GET", path, "")
			require.Equal(t, http.StatusOK, status)
			doc, err := html.Parse(strings.NewReader(body))
			require.NoError(t, err)
			var h1, mains, navs int
			var lang, skip string
			ids := map[string]bool{}
			labelFor := map[string]bool{}
			var walk func(n *html.Node, inLabel bool)
			walk = func(n *html.Node, inLabel bool) {
				if n.Type == html.ElementNode {
					if id := attr(n, "id"); id != "" {
						require.False(t, ids[id], "duplicate id %q", id)
						ids[id] = true
					}
					switch n.Data {
					case "html":
						lang = attr(n, "lang")
					case "h1":
						h1++
					case "main":
						mains++
					case "nav":
						navs++
						require.NotEmpty(t, attr(n, "aria-label"), "a nav needs a name")
					case "label":
						inLabel = true
						if f := attr(n, "for"); f != "" {
							labelFor[f] = true
						}
					case "a":
						if strings.Contains(attr(n, "class"), "skip") {
							skip = attr(n, "href")
						}
					case "input", "select", "textarea":
						if attr(n, "type") != "hidden" {
							require.True(t, inLabel || attr(n, "aria-label") != "" || labelFor[attr(n, "id")],
								"%s name=%q has no label", n.Data, attr(n, "name"))
						}
					}
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c, inLabel)
				}
			}
			walk(doc, false)
			require.Equal(t, "en", lang)
			require.Equal(t, 1, h1, "one h1")
			require.Equal(t, 1, mains, "one main")
			require.Equal(t, 1, navs, "one nav")
			require.Equal(t, "#main", skip, "a skip link to main")
			require.True(t, ids["main"])
		})
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
