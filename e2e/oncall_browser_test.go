//go:build browser

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dualsync/internal/testenv"
)

// The dashboard's on-call panel in headless Chromium against the real
// handler under devhost: the breaker opening, the outbox waiting and
// storage going down show without opening a log, and the panel fits a
// phone. Named so that `make browser-test` (-run TestDashboardInBrowser)
// runs it too.
func TestDashboardInBrowserOnCall(t *testing.T) {
	s := startStack(t, nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 7*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func() string {
		v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#oncall').innerText`))
		return v
	}
	waitUpTo := func(d time.Duration, what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")",
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
			t.Fatalf("waiting for %s: %v\non-call panel:\n%s", what, err, text())
		}
	}
	wait := func(what, expr string) { t.Helper(); waitUpTo(60*time.Second, what, expr) }
	card := func(label string) string {
		return `document.querySelector('#oncall article[aria-label="` + label + `"]')`
	}

	do("open the dashboard", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(s.url+"/api/dashboard"))
	wait("the breaker closed", card("breaker")+`?.dataset.level === 'good' && `+card("breaker")+`.innerText.includes('closed')`)
	wait("storage ok", card("storage")+`?.dataset.level === 'good'`)
	wait("nothing failed", card("failed items and conflicts")+`?.dataset.level === 'good'`)
	wait("no nightly run yet", card("last nightly run")+`?.innerText.includes('none yet')`)
	wait("the refresh said", `document.querySelector('#oncall-refresh').innerText.includes('every 15 s while this page is visible')`)

	// From here on nobody presses Refresh and no run is active: the panel
	// refreshes itself. The primary goes away; a write lands on the
	// fallback and waits in its outbox.
	s.primaryProxy.Cut()
	testenv.WaitFor(t, 30*time.Second, "a write on the fallback", func() bool {
		code, _, _, err := s.try("POST", "/api/products", `{"name":"outage","price":"1.00"}`)
		return err == nil && code == http.StatusCreated
	})
	wait("the breaker open", card("breaker")+`?.dataset.level === 'bad' && `+card("breaker")+`.innerText.includes('serving fallback')`)
	wait("a last failover time", `!`+card("breaker")+`.innerText.includes('Last failover\nnever')`)
	wait("the primary's outbox depth unknown", card("outbox age")+`?.innerText.includes('primary\ndepth unknown: not reachable')`)

	// The write's message spends the queue's retries (5 deliveries 10 s
	// apart) while the primary is away: waiting for the relay, not failed.
	waitUpTo(150*time.Second, "the item waiting for the relay", card("failed items and conflicts")+`?.innerText.includes('Waiting for the relay, real-time today\n1')`)
	if lvl, _ := chromedp.Run(ctx, chromedp.Evaluate[string](card("failed items and conflicts")+`.dataset.level`)); lvl != "warn" {
		t.Errorf("outcomes card level %q with an item waiting for the relay, want warn (nothing failed)\n%s", lvl, text())
	}
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](card("failed items and conflicts")+`.innerText`)); !strings.Contains(got, "Failed, real-time today\n0") {
		t.Errorf("outcomes card %q, want no real-time failure", got)
	}

	// The primary comes back: the breaker closes with no API request (the
	// page only reads health), once the relay has synced the waiting item,
	// whose success replaces its wait.
	s.primaryProxy.Restore()
	waitUpTo(150*time.Second, "failback without traffic", card("breaker")+`?.dataset.level === 'good' && `+card("breaker")+`.innerText.includes('closed')`)
	waitUpTo(90*time.Second, "nothing waiting any more", `!`+card("failed items and conflicts")+`?.innerText.includes('Waiting for the relay')`)

	// Storage goes away: the panel says which service.
	s.azurite.Stop()
	wait("storage down", card("storage")+`?.dataset.level === 'bad' && `+card("storage")+`.innerText.includes('Table Storage')`)
	wait("the panel's badge", `document.querySelector('#oncall-status').textContent === 'act'`)

	// A phone: the panel wraps, the page does not scroll sideways.
	do("phone size", chromedp.EmulateViewport(390, 844))
	wait("no sideways scroll", `document.documentElement.scrollWidth <= window.innerWidth`)
	s.azurite.Start()
}
