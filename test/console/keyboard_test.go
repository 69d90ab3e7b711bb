package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// TestKeyboardReachesTheDeviceActionsAndTheirDialog: Tab alone reaches the
// device's actions; Enter opens the confirmation dialog with the focus in
// it; Escape closes it, changes nothing and puts the focus back on the
// button that opened it.
func TestKeyboardReachesTheDeviceActionsAndTheirDialog(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, _ := enrollConsoleDevice(t, "console-kbd")
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/devices/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-action=suspend]`)),
	))
	requireTrue(t, ctx, `[...document.querySelectorAll('#identity dd')].some((e) => e.textContent === 'active')`, "the device page did not load the device")

	// The skip link comes first, then the way to the actions by Tab alone.
	var reached bool
	for range 60 {
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
		if eval[bool](t, ctx, `document.activeElement?.dataset?.action === 'suspend'`) {
			reached = true
			break
		}
	}
	require.True(t, reached, "Tab never reached the Suspend button")

	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)))
	requireTrue(t, ctx, `document.getElementById('confirm').open`, "Enter did not open the confirmation dialog")
	require.True(t, eval[bool](t, ctx, `document.getElementById('confirm').contains(document.activeElement)`),
		"the focus is not in the dialog (it is on %s)", eval[string](t, ctx, `document.activeElement?.outerHTML?.slice(0, 120) ?? 'nothing'`))

	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)))
	requireTrue(t, ctx, `!document.getElementById('confirm').open`, "Escape did not close the dialog")
	requireTrue(t, ctx, `document.activeElement?.dataset?.action === 'suspend'`, "the focus did not return to the Suspend button")
	require.True(t, eval[bool](t, ctx, `[...document.querySelectorAll('#identity dd')].some((e) => e.textContent === 'active')`), "Escape changed the device")
}

// controlsWithoutLabel lists, from the DOM, the form controls of the page
// (dialogs' too, open or not) that no label, aria-label or
// aria-labelledby names.
const controlsWithoutLabel = `[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map((e) => e.outerHTML.slice(0, 120))`

// formRoles are the accessibility roles of form controls.
var formRoles = map[string]bool{"textbox": true, "combobox": true, "checkbox": true, "searchbox": true, "spinbutton": true,
	"listbox": true, "radio": true, "slider": true, "switch": true, "DateTime": true, "InputTime": true, "date": true}

// TestEveryFormControlHasAName: on every page an operator uses, each
// input, select and textarea has a label in the DOM, and each form control
// of the accessibility tree Chromium builds has a name a screen reader
// announces.
func TestEveryFormControlHasAName(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, _ := enrollConsoleDevice(t, "console-labels")
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	for _, page := range []struct {
		name, path, ready string
		controls          bool // the page has a form
	}{
		{"fleet", "/", `#filter`, true},
		{"device", "/devices/" + id, `#confirm-form`, true},
		{"alerts", "/alerts", `main`, false},
		{"commands", "/commands", `#send`, true},
		{"policies", "/policies", `#put-policy`, true},
		{"audit", "/audit?device=" + id, `#audit-form`, true},
		{"health", "/health", `#nodes`, false},
	} {
		t.Run(page.name, func(t *testing.T) {
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+page.path), chromedp.WaitReady(chromedp.CSS(page.ready))))
			require.Empty(t, eval[[]string](t, ctx, controlsWithoutLabel), "%s: controls without a label", page.path)
			tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
			require.NoError(t, err)
			controls := 0
			for _, n := range tree.Nodes {
				if n.Ignored || n.Role == nil {
					continue
				}
				role := strings.Trim(string(n.Role.Value), `"`)
				if !formRoles[role] {
					continue
				}
				controls++
				name := ""
				if n.Name != nil {
					name = strings.Trim(string(n.Name.Value), `"`)
				}
				require.NotEmpty(t, strings.TrimSpace(name), "%s: a %s without an accessible name (node %s)", page.path, role, n.NodeID)
			}
			if page.controls {
				require.Positive(t, controls, "%s: the accessibility tree has no form control", page.path)
			}
		})
	}
}

// TestNarrowWindowHasNoHorizontalOverflow: at a phone's 375 px, the fleet,
// device and alerts pages fit the width (wide tables scroll inside their
// own box, not the page).
func TestNarrowWindowHasNoHorizontalOverflow(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test on a real network")
	}
	id, _ := enrollConsoleDevice(t, "console-narrow-device-with-a-long-id")
	base := startConsole(t, "Org1").signIn(t, "operator")
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(375, 812, chromedp.EmulateScale(2))))
	for _, page := range []struct{ path, ready string }{
		{"/", `document.querySelector('#total') !== null && document.querySelector('#devices tbody tr') !== null`},
		{"/devices/" + id, `document.querySelector('#chart[data-points]') !== null && document.querySelectorAll('#history tbody tr').length > 0`},
		{"/alerts", `document.readyState === 'complete'`},
	} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+page.path)))
		requireTrue(t, ctx, page.ready, page.path+" did not load")
		// Let the page settle (late rows, the chart's resize), then measure.
		time.Sleep(time.Second)
		overflow := eval[[]string](t, ctx, `(() => {
		  const w = document.documentElement.clientWidth;
		  if (document.documentElement.scrollWidth <= w) return [];
		  return [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll'))
		    .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '') + ' right=' + Math.round(e.getBoundingClientRect().right))
		    .concat(['scrollWidth=' + document.documentElement.scrollWidth + ' clientWidth=' + w]);
		})()`)
		if len(overflow) > 0 {
			screenshot(t, ctx, "narrow-"+strings.ReplaceAll(strings.Trim(page.path, "/"), "/", "-"))
		}
		require.Empty(t, overflow, "%s overflows a 375 px window", page.path)
	}
}
