//go:build browser

// The dashboard in a real browser: Debian's headless Chromium, driven over
// the DevTools protocol, against the real handler under devhost. Run it
// with `make browser-test` (it installs chromium when missing).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jackc/pgx/v5"

	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

const chromiumPath = "/usr/bin/chromium"

// refusedName is a product name the fallback's schema refuses (a CHECK
// constraint the test adds): that product's sync fails at every attempt,
// exhausts the queue's retries and is recorded as failed, for real.
const refusedName = "Refused by the fallback"

func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: ./scripts/dev.sh chromium installs it (make browser-test does)", chromiumPath)
	}
	ctx := context.Background()

	// A fallback database of our own, so that the test can alter its schema.
	fallbackURL := testenv.CreateDatabase(t)
	fallback, err := database.Open(ctx, fallbackURL, store.RoleFallback, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fallback.Close)
	if err := fallback.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, fallbackURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "ALTER TABLE products ADD CONSTRAINT browser_test_refuses CHECK (name <> '"+refusedName+"')")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t, map[string]string{
		"FALLBACK_DATABASE_URL": fallbackURL,
		"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
	})

	// Products 1 and 3 only in the primary, 2 only in the fallback, 7 the
	// same in both, 5 refused by the fallback. Users 1 (primary) and 2
	// (fallback) have the same email: both conflict.
	now := domain.Millis(time.Now())
	put := func(db store.DB, id int64, name string) {
		t.Helper()
		if _, err := db.PutProduct(ctx, domain.Product{ID: id, Name: name, Price: 1250, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(s.primary, 1, "Lamp")
	put(s.primary, 3, "Desk")
	put(fallback, 2, "Chair")
	put(s.primary, 5, refusedName)
	put(s.primary, 7, "Shelf")
	put(fallback, 7, "Shelf")
	if _, err := s.primary.PutUser(ctx, domain.User{ID: 1, Name: "Ann", Email: "ann@example.com", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fallback.PutUser(ctx, domain.User{ID: 2, Name: "Ann B.", Email: "ann@example.com", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	wantProduct := map[string]string{"created": "3", "updated": "0", "deleted": "0", "unchanged": "1", "conflict": "0", "failed": "1"}

	// The test's own API calls are held to the document the app serves.
	checker := openAPIChecker(t, s.url)
	api := checkedClient(t, checker)

	b := newBrowser(t)
	const key = "browser-test-key"
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b.ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool]("!!("+expr+")",
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, b.text())
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}

	do("open the dashboard", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(s.url+"/api/dashboard?code="+key))
	wait("the databases' health", `document.querySelector('#health-status').textContent === 'ok'`)
	wait("the empty runs list", `!document.querySelector('#runs-empty').hidden`)

	// A user run first, so the list holds two runs.
	do("click sync users", chromedp.Click(chromedp.ID("start-user")))
	wait("the user run to complete", `(() => { const r = document.querySelector('#runs tbody tr:first-child');
		return r && r.children[1].textContent === 'user' && r.querySelector('.badge').textContent === 'Completed'; })()`)

	do("click sync products", chromedp.Click(chromedp.ID("start-product")))
	wait("the product run to start", `document.querySelectorAll('#runs tbody tr').length === 2`)
	productRun := eval(`document.querySelector('#runs tbody tr:first-child button').dataset.run`)
	userRun := eval(`document.querySelector('#runs tbody tr:nth-child(2) button').dataset.run`)
	wait("the product run to complete", fmt.Sprintf(`document.querySelector('button[data-run=%q]').closest('tr').querySelector('.badge').textContent === 'Completed'`, productRun))

	var counts map[string]string
	raw := eval(fmt.Sprintf(`JSON.stringify(Object.fromEntries([...document.querySelector('button[data-run=%q]').closest('tr')
		.querySelectorAll('td[data-outcome]')].map(td => [td.dataset.outcome, td.textContent])))`, productRun))
	if err := json.Unmarshal([]byte(raw), &counts); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(counts) != fmt.Sprint(wantProduct) {
		t.Errorf("the product run's counts on the page: %v, want %v", counts, wantProduct)
	}
	if got := eval(fmt.Sprintf(`document.querySelector('button[data-run=%q]').closest('tr').querySelector('.progress-col span').textContent`, productRun)); !strings.HasPrefix(got, "5 / 5 · 100%") {
		t.Errorf("progress reads %q, want 5 / 5 · 100%%", got)
	}
	// The page agrees with the API (whose answers the checker validates).
	var st runStatus
	getJSON(t, api, s.url+"/api/product-sync/"+productRun, &st)
	for o, n := range st.CustomStatus.Counts {
		if fmt.Sprint(n) != counts[o] {
			t.Errorf("%s: the API says %d, the page %s", o, n, counts[o])
		}
	}

	// Open the other run, then the product run from the keyboard: its
	// failed items show, with the reason the sync recorded.
	do("open the user run", chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-run=%q]`, userRun))))
	wait("the user run's detail", fmt.Sprintf(`document.querySelector('#detail-summary').textContent.includes(%q)`, userRun))
	// Its conflicts, with their reasons (and both versions where the
	// sync recorded them).
	do("show the user run's conflicts", chromedp.Click(chromedp.CSS(`.tab[data-status="conflict"]`)))
	wait("the user run's conflicts", `(() => { const rows = [...document.querySelectorAll('#items tbody tr')];
		return rows.length === 2 && rows.every(r => r.children[2].textContent === 'conflict' && r.children[3].textContent !== ''); })()`)
	var conflicts struct {
		Items []struct {
			Detail json.RawMessage `json:"detail"`
		} `json:"items"`
	}
	getJSON(t, api, s.url+"/api/product-sync/"+userRun+"/results?status=conflict", &conflicts)
	withDetail := 0
	for _, it := range conflicts.Items {
		if len(it.Detail) > 0 {
			withDetail++
		}
	}
	if got := eval(`String(document.querySelectorAll('#items tbody details').length)`); got != fmt.Sprint(withDetail) {
		t.Errorf("%s conflicts show their versions, the API has %d with a detail", got, withDetail)
	}
	do("open the product run with the keyboard", chromedp.Focus(chromedp.CSS(fmt.Sprintf(`button[data-run=%q]`, productRun))), chromedp.KeyEvent(kb.Enter))
	wait("the product run's failed items", `(() => { const rows = document.querySelectorAll('#items tbody tr');
		return rows.length === 1 && rows[0].children[0].textContent === '5' && rows[0].children[2].textContent === 'failed'; })()`)
	if got := eval(`document.querySelector('.tab[aria-pressed="true"]').dataset.status`); got != "failed" {
		t.Errorf("the run opened on the %q items, want failed", got)
	}
	reason := eval(`document.querySelector('#items tbody tr td.reason-cell').textContent`)
	var page struct {
		Items []struct {
			ID     int64  `json:"id"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	getJSON(t, api, s.url+"/api/product-sync/"+productRun+"/results?status=failed", &page)
	if len(page.Items) != 1 || page.Items[0].ID != 5 || reason == "" || page.Items[0].Reason != reason {
		t.Errorf("failed item reason on the page %q, API %+v", reason, page.Items)
	}
	if eval(`document.activeElement.id`) != "detail-heading" {
		t.Errorf("opening a run from the keyboard should move the focus to its detail")
	}

	// Nothing runs any more: the page stops polling.
	wait("auto-refresh to stop", `document.querySelector('#refresh-state').textContent.includes('auto-refresh off')`)
	before := b.apiRequests()
	time.Sleep(5 * time.Second) // more than twice the page's polling interval
	if after := b.apiRequests(); after != before {
		t.Errorf("the page made %d API calls while nothing was running", after-before)
	}

	// The key from the page's URL went with every call the page made.
	for _, r := range b.requests() {
		if strings.Contains(r.url, "/api/dashboard") {
			if !strings.Contains(r.url, "code="+key) {
				t.Errorf("%s was loaded without the key", r.url)
			}
			continue
		}
		if r.key != key {
			t.Errorf("%s %s was sent without the key (x-functions-key %q)", r.method, r.url, r.key)
		}
	}
	if n := b.apiRequests(); n < 5 {
		t.Errorf("only %d API calls seen; the listener is broken", n)
	}
	// No script error, no Content-Security-Policy violation.
	for _, m := range b.console() {
		t.Errorf("browser console: %s", m)
	}

	b.screenshot(t)
	t.Logf("openapi checks: %v", checker.Seen())
}

// browser is one headless Chromium with a fresh profile, and what its page
// sent and logged.
type browser struct {
	ctx context.Context

	mu   sync.Mutex
	reqs []sentRequest
	logs []string
}

type sentRequest struct{ method, url, key string }

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // root has no user namespace sandbox
		chromedp.Headless,
		chromedp.DisableGPU,
		// This network reaches no Google service: without these Chromium
		// stalls on updates and sign-in.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b := &browser{ctx: ctx}

	// Start the browser, then listen before the page loads.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.Contains(e.Request.URL, "/api/") {
			key, _ := e.Request.Headers["x-functions-key"].(string)
			b.mu.Lock()
			b.reqs = append(b.reqs, sentRequest{e.Request.Method, e.Request.URL, key})
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
				if strings.Contains(m.URL, "favicon.ico") {
					continue // the browser asks for one; the app has none
				}
				if m.Source == "network" && strings.HasSuffix(m.URL, "/api/health/details") && strings.Contains(m.Text, "404") {
					continue // where the keyed detail route is missing, the page falls back to /api/health
				}
				b.mu.Lock()
				b.logs = append(b.logs, fmt.Sprintf("%s %s (%s)", m.Type, m.Text, m.URL))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) requests() []sentRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]sentRequest(nil), b.reqs...)
}

// apiRequests counts the page's calls to the API (not its own files).
func (b *browser) apiRequests() int {
	n := 0
	for _, r := range b.requests() {
		if !strings.Contains(r.url, "/api/dashboard") {
			n++
		}
	}
	return n
}

func (b *browser) console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logs...)
}

func (b *browser) text() string {
	s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

// screenshot saves the page where a reviewer finds it: .run/dashboard.png,
// or docs/dashboard.png (the README's) with UPDATE_SCREENSHOT=1.
func (b *browser) screenshot(t *testing.T) {
	t.Helper()
	// Without the focus ring the keyboard step left on the run's heading.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	root := testenv.RepoRoot(t)
	path := filepath.Join(root, ".run", "dashboard.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		path = filepath.Join(root, "docs", "dashboard.png")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
