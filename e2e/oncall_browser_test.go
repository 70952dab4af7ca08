//go:build browser

package e2e

import (
	"context"
	"net/http"
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
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
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
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")",
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v\non-call panel:\n%s", what, err, text())
		}
	}
	card := func(label string) string {
		return `document.querySelector('#oncall article[aria-label="` + label + `"]')`
	}

	do("open the dashboard", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(s.url+"/api/dashboard"))
	wait("the breaker closed", card("breaker")+`?.dataset.level === 'good' && `+card("breaker")+`.innerText.includes('closed')`)
	wait("storage ok", card("storage")+`?.dataset.level === 'good'`)
	wait("nothing failed", card("failed items and conflicts")+`?.dataset.level === 'good'`)
	wait("no nightly run yet", card("last nightly run")+`?.innerText.includes('none yet')`)

	// The primary goes away; a write lands on the fallback and waits in its outbox.
	s.primaryProxy.Cut()
	testenv.WaitFor(t, 30*time.Second, "a write on the fallback", func() bool {
		code, _, _, err := s.try("POST", "/api/products", `{"name":"outage","price":"1.00"}`)
		return err == nil && code == http.StatusCreated
	})
	do("refresh", chromedp.Click(chromedp.ID("refresh")))
	wait("the breaker open", card("breaker")+`?.dataset.level === 'bad' && `+card("breaker")+`.innerText.includes('serving fallback')`)
	wait("a last failover time", `!`+card("breaker")+`.innerText.includes('Last failover\nnever')`)

	// Storage goes away too: the panel says which service.
	s.azurite.Stop()
	do("refresh", chromedp.Click(chromedp.ID("refresh")))
	wait("storage down", card("storage")+`?.dataset.level === 'bad' && `+card("storage")+`.innerText.includes('Table Storage')`)
	wait("the panel's badge", `document.querySelector('#oncall-status').textContent === 'act'`)

	// A phone: the panel wraps, the page does not scroll sideways.
	do("phone size", chromedp.EmulateViewport(390, 844))
	wait("no sideways scroll", `document.documentElement.scrollWidth <= window.innerWidth`)
	s.azurite.Start()
	s.primaryProxy.Restore()
}
