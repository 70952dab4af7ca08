//go:build browser

package e2e

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// progressSteps is a 1,000-item run as the runs list reports it while its
// planner pages come in: the total grows (300, 900, 1,000) while items are
// done. A percentage of the growing total would fall (33% to 22%).
const progressSteps = `[
	{"planned": false, "total": 300, "done": 0},
	{"planned": false, "total": 300, "done": 100},
	{"planned": false, "total": 900, "done": 200},
	{"planned": true, "total": 1000, "done": 400},
	{"planned": true, "total": 1000, "done": 700}
]`

// The progress cell in headless Chromium: it never goes backwards as the
// total grows, and an ETA shows as soon as a rate exists (a lower bound
// while planning). The runs list the page reads is replaced, step by step,
// by a script that the browser runs before the page's own (the real
// handler serves the page and everything else): a planning phase long
// enough to watch is not something a test catalogue has.
func TestDashboardInBrowserProgress(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	fake := `(() => {
		const steps = ` + progressSteps + `;
		const created = new Date(Date.now() - 20000).toISOString();
		window.__step = 0;
		const real = window.fetch.bind(window);
		window.fetch = (input, init) => {
			const u = String(input);
			if (/(^|\/)product-sync\?/.test(u)) {
				const st = steps[window.__step];
				const run = { name: 'ProductSyncOrchestrator', instanceId: '9999999999999abcdefabcde', runtimeStatus: 'Running', input: null,
					customStatus: { entity: 'product', trigger: 'http', mode: 'full', planned: st.planned, total: st.total, done: st.done,
						counts: { created: st.done, updated: 0, deleted: 0, unchanged: 0, conflict: 0, failed: 0 } },
					output: null, createdTime: created, lastUpdatedTime: new Date().toISOString() };
				return Promise.resolve(new Response(JSON.stringify([run]), { status: 200, headers: { 'Content-Type': 'application/json' } }));
			}
			return real(input, init);
		};
	})();`
	if err := chromedp.Do(b.ctx, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fake})
		return chromedp.Void{}, err
	}); err != nil {
		t.Fatal(err)
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool]("!!("+expr+")",
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, b.text())
		}
	}
	for _, size := range [][2]int64{{1440, 900}, {390, 844}} {
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(size[0], size[1]), chromedp.Navigate(s.url+"/api/dashboard")); err != nil {
			t.Fatal(err)
		}
		pct := regexp.MustCompile(`(\d+)%`)
		last := -1
		for step, want := range []string{"0 done · 300 found so far · planning", "100 done · 300 found so far · planning · ETA ≥ ",
			"200 done · 900 found so far · planning · ETA ≥ ", "400 / 1,000 · 40% · ETA ", "700 / 1,000 · 70% · ETA "} {
			eval(`window.__step = ` + strconv.Itoa(step) + `; document.querySelector('#refresh').click(); ''`)
			cell := `document.querySelector('#runs tbody tr .progress-col span')`
			wait("step "+strconv.Itoa(step), cell+` && `+cell+`.textContent.startsWith(`+strconv.Quote(want)+`)`)
			text := eval(cell + `.textContent`)
			bar := eval(`(() => { const p = document.querySelector('#runs tbody tr .progress-col progress'); return p.hasAttribute('value') ? String(p.position) : 'indeterminate'; })()`)
			if m := pct.FindStringSubmatch(text); m != nil {
				n, _ := strconv.Atoi(m[1])
				if n < last {
					t.Errorf("%dx%d step %d: progress went back from %d%% to %q", size[0], size[1], step, last, text)
				}
				last = n
				if bar == "indeterminate" {
					t.Errorf("%dx%d step %d: %q with an indeterminate bar", size[0], size[1], step, text)
				}
			} else if strings.Contains(text, "planning") && bar != "indeterminate" {
				t.Errorf("%dx%d step %d: the bar has a position (%s) while the total still grows", size[0], size[1], step, bar)
			}
		}
		if got := eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
			t.Errorf("%dx%d: the page scrolls sideways", size[0], size[1])
		}
	}
	for _, m := range b.console() {
		t.Errorf("browser console: %s", m)
	}
}
