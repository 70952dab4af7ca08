//go:build browser

// The dashboard in a real browser: Debian's headless Chromium, driven over
// the DevTools protocol, against the real handler under devhost. Run it
// with `make browser-test` (it installs chromium when missing).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, fallbackURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("ALTER TABLE products ADD CONSTRAINT browser_test_refuses CHECK (name <> '" + refusedName + "')")
	s := startStack(t, map[string]string{
		"FALLBACK_DATABASE_URL": fallbackURL,
		"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
	})

	// Products 1 and 3 only in the primary, 2 only in the fallback, 7 the
	// same in both, 5 refused by the fallback, 9 changed on both sides (a
	// conflict: its name from the fallback, its 4,000-character
	// description from the primary). Users 1 (primary) and 2 (fallback)
	// have the same email: both conflict.
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
	long := strings.Repeat("Solid-oak-stool-with-a-very-long-unbroken-description;", 80)[:4000]
	t0, t1 := now.Add(-time.Minute), now
	stool := domain.Product{ID: 9, Price: 4500, CreatedAt: t0, UpdatedAt: t1, PriceAt: t0}
	p9, f9 := stool, stool
	p9.Name, p9.Description, p9.Ver, p9.NameAt, p9.DescriptionAt = "Stool", long, domain.Vector{P: 2, F: 1}, t0, t1
	f9.Name, f9.Description, f9.Ver, f9.NameAt, f9.DescriptionAt = "Stool (oak)", "Short", domain.Vector{P: 1, F: 2}, t1, t0
	if _, err := s.primary.PutProduct(ctx, p9, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fallback.PutProduct(ctx, f9, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.primary.PutUser(ctx, domain.User{ID: 1, Name: "Ann", Email: "ann@example.com", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fallback.PutUser(ctx, domain.User{ID: 2, Name: "Ann B.", Email: "ann@example.com", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	wantProduct := map[string]string{"created": "3", "updated": "0", "deleted": "0", "unchanged": "1", "conflict": "1", "failed": "1"}

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
	row := func(run string) string {
		return fmt.Sprintf(`document.querySelector('button[data-run=%q]').closest('tr')`, run)
	}
	// layout fails the test where the page scrolls sideways or a
	// comparison column is clipped or pushed off the screen.
	layout := func(size string) {
		t.Helper()
		if got := eval(`String(document.documentElement.scrollWidth) + ' ' + String(window.innerWidth)`); func() bool {
			var sw, w int
			fmt.Sscan(got, &sw, &w)
			return sw > w
		}() {
			t.Errorf("%s: the page scrolls sideways (scrollWidth, viewport width: %s)", size, got)
		}
		clipped := eval(`JSON.stringify([...document.querySelectorAll('table.compare td, table.compare th')].filter(c => c.offsetParent)
			.filter(c => { const r = c.getBoundingClientRect(); const box = c.closest('tr.extra, #item-body').getBoundingClientRect();
				return c.scrollWidth > c.clientWidth + 1 || r.right > box.right + 1 || r.right > window.innerWidth || r.width < 40; })
			.map(c => (c.dataset.side || 'field') + ':' + c.parentElement.dataset.field + ' ' + Math.round(c.getBoundingClientRect().width) + 'px'))`)
		if clipped != "[]" {
			t.Errorf("%s: clipped comparison cells %s", size, clipped)
		}
		if n := eval(`String(document.querySelectorAll('table.compare tbody tr').length)`); n == "0" {
			t.Errorf("%s: no comparison shown to check", size)
		}
	}
	// Every time on the page says its zone; none shows raw.
	zones := func(size string) {
		t.Helper()
		if bad := eval(`JSON.stringify([...document.querySelectorAll('time.t')].map(e => e.textContent).filter(s => !/ UTC([+-]\d\d:\d\d)?$/.test(s)))`); bad != "[]" {
			t.Errorf("%s: times without their zone: %s", size, bad)
		}
		// One format in every panel: the On call panel's times too.
		if other := eval(`(document.body.innerText.match(/\d{1,2}\/\d{1,2}\/\d{2,4}|\d\d:\d\d:\d\d (AM|PM)/g) || []).join(' ')`); other != "" {
			t.Errorf("%s: times in another format: %s", size, other)
		}
		if n := eval(`String((document.querySelector('#oncall').innerText.match(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/g) || []).length)`); n == "0" {
			t.Errorf("%s: the On call panel shows no time in the page's format", size)
		}
		if raw := eval(`(document.body.innerText.match(/\d{4}-\d\d-\d\dT\d\d:\d\d/g) || []).join(' ')`); raw != "" {
			t.Errorf("%s: raw times on the page: %s", size, raw)
		}
	}

	do("open the dashboard", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(s.url+"/api/dashboard?code="+key))
	wait("the databases' health", `document.querySelector('#health-status').textContent === 'ok'`)
	wait("the empty runs list", `!document.querySelector('#runs-empty').hidden`)

	// A user run first, so the list holds two runs.
	do("click sync users", chromedp.Click(chromedp.ID("start-user")))
	wait("the user run to complete", `(() => { const r = document.querySelector('#runs tbody tr:first-child');
		return r && r.children[1].textContent === 'user' && r.querySelector('.badge').textContent.startsWith('Completed'); })()`)

	do("click sync products", chromedp.Click(chromedp.ID("start-product")))
	wait("the product run to start", `document.querySelectorAll('#runs tbody tr').length === 2`)
	productRun := eval(`document.querySelector('#runs tbody tr:first-child button').dataset.run`)
	userRun := eval(`document.querySelector('#runs tbody tr:nth-child(2) button').dataset.run`)
	// The started run is brought into view, the focus on its row.
	wait("the started run in view", fmt.Sprintf(`(() => { const b = document.querySelector('#runs tbody button[data-run=%q]');
		const r = b.closest('tr').getBoundingClientRect(); return document.activeElement === b && r.top >= 0 && r.bottom <= window.innerHeight; })()`, productRun))
	wait("the product run to complete", row(productRun)+`.querySelector('.badge').textContent.startsWith('Completed')`)

	counts := func(run string) map[string]string {
		t.Helper()
		var c map[string]string
		raw := eval(`JSON.stringify(Object.fromEntries([...` + row(run) + `.querySelectorAll('td[data-outcome]')].map(td => [td.dataset.outcome, td.textContent])))`)
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := counts(productRun); fmt.Sprint(c) != fmt.Sprint(wantProduct) {
		t.Errorf("the product run's counts on the page: %v, want %v", c, wantProduct)
	}
	if got := eval(row(productRun) + `.querySelector('.progress-col span').textContent`); !strings.HasPrefix(got, "6 / 6 · 100%") {
		t.Errorf("progress reads %q, want 6 / 6 · 100%%", got)
	}
	// A run that ended with failed items does not look like a clean one.
	if got := eval(row(productRun) + `.querySelector('.badge').className + ' ' + ` + row(productRun) + `.querySelector('.badge').textContent`); got != "badge s-completed-failed Completed · 1 failed" {
		t.Errorf("the product run's badge: %q, want the failed-items badge", got)
	}
	if got := eval(row(userRun) + `.querySelector('.badge').className`); got != "badge s-completed-conflict" {
		t.Errorf("the user run's badge: %q, want the conflicts badge", got)
	}
	// Every column of the runs table fits at 1280 px and wider, with no
	// inner scroll, and tabbing through a row scrolls nothing sideways.
	fits := func(size string) {
		t.Helper()
		got := eval(`(() => { const w = document.querySelector('#runs').closest('.table-wrap'); const box = w.getBoundingClientRect();
			const out = [...document.querySelectorAll('#runs thead th, #runs tbody td')].filter(c => c.getBoundingClientRect().right > box.right + 0.5)
				.map(c => c.textContent.trim() || c.dataset.label);
			return JSON.stringify({ inner: w.scrollWidth - w.clientWidth, out }); })()`)
		if got != `{"inner":0,"out":[]}` {
			t.Errorf("%s: the runs table does not fit: %s", size, got)
		}
		for i := 0; i < 40; i++ {
			do("tab", chromedp.KeyEvent(kb.Tab))
			if in := eval(`String(!!document.activeElement.closest('#runs'))`); in != "true" {
				continue
			}
			if sc := eval(`String(document.querySelector('#runs').closest('.table-wrap').scrollLeft + window.scrollX)`); sc != "0" {
				t.Errorf("%s: tabbing to %s scrolled the runs table sideways by %s px", size, eval(`document.activeElement.textContent`), sc)
			}
		}
	}
	fits("1440x900")
	do("1280x800", chromedp.EmulateViewport(1280, 800))
	do("focus the first run", chromedp.Focus(chromedp.CSS(`#runs tbody button[data-run]`)))
	fits("1280x800")
	do("1440x900", chromedp.EmulateViewport(1440, 900))

	// The page agrees with the API (whose answers the checker validates).
	var st runStatus
	getJSON(t, api, s.url+"/api/product-sync/"+productRun, &st)
	for o, n := range st.CustomStatus.Counts {
		if fmt.Sprint(n) != wantProduct[o] {
			t.Errorf("%s: the API says %d, the page %s", o, n, wantProduct[o])
		}
	}

	// The user run's conflict count links to its conflicts.
	do("click the user run's conflict count", chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.count-link[data-run=%q][data-status="conflict"]`, userRun))))
	wait("the user run's conflicts", `(() => { const rows = [...document.querySelectorAll('#items > tbody > tr:not(.extra)')];
		return document.querySelector('#detail-summary').textContent.includes(`+fmt.Sprintf("%q", userRun)+`) && rows.length === 2 &&
			rows.every(r => r.children[2].textContent.startsWith('conflict') && r.children[3].textContent !== ''); })()`)
	if got := eval(`document.querySelector('.tab[aria-pressed="true"]').dataset.status`); got != "conflict" {
		t.Errorf("the conflict link opened the %q items", got)
	}
	// No failed item: no retry button, no explanation of one.
	if got := eval(`String(document.querySelector('#detail-retry').hidden)`); got != "true" {
		t.Errorf("a run without failed items shows the retry line")
	}
	// An email clash: a comparison with the user that holds the email, not
	// JSON; its Attempts column is filled.
	if got := eval(`[...document.querySelectorAll('#items > tbody > tr:not(.extra) td[data-label="Attempts"]')].map(td => td.textContent).join(',')`); got != "2,2" {
		t.Errorf("the conflicts' attempts read %q, want 2,2 (each gave up after 2 attempts)", got)
	}
	do("open the email clash", chromedp.Click(chromedp.CSS(`#items tbody tr button.toggle`)))
	wait("the email clash as a comparison", `(() => { const x = document.querySelector('#items tr.extra:not([hidden])');
		return x && x.querySelector('table.compare tr.differs[data-field="email"]') &&
			[...x.querySelectorAll('table.compare thead th')].some(th => th.textContent.includes('holds the email')) &&
			x.querySelector('table.compare caption').textContent.includes('ann@example.com') && !x.textContent.includes('{"'); })()`)
	zones("1440x900 email clash")

	// The product run from the keyboard: it opens on its failed item, whose
	// reason names the constraint and counts the attempts.
	do("open the product run with the keyboard", chromedp.Focus(chromedp.CSS(fmt.Sprintf(`button[data-run=%q]`, productRun))), chromedp.KeyEvent(kb.Enter))
	wait("the product run's failed items", `(() => { const rows = document.querySelectorAll('#items > tbody > tr:not(.extra)');
		return rows.length === 1 && rows[0].children[0].textContent === '5' && rows[0].children[2].textContent.startsWith('failed'); })()`)
	if got := eval(`document.querySelector('.tab[aria-pressed="true"]').dataset.status`); got != "failed" {
		t.Errorf("the run opened on the %q items, want failed", got)
	}
	reason := eval(`document.querySelector('#items tbody tr td.reason-cell').textContent`)
	var page struct {
		Items []struct {
			ID       int64  `json:"id"`
			Reason   string `json:"reason"`
			Attempts int    `json:"attempts"`
		} `json:"items"`
	}
	getJSON(t, api, s.url+"/api/product-sync/"+productRun+"/results?status=failed", &page)
	if len(page.Items) != 1 || page.Items[0].ID != 5 || page.Items[0].Reason != reason ||
		!strings.Contains(reason, `check constraint "browser_test_refuses"`) || !strings.Contains(reason, "2 attempts") || page.Items[0].Attempts != 2 {
		t.Errorf("failed item reason on the page %q, API %+v", reason, page.Items)
	}
	if got := eval(`document.querySelector('#items tbody tr td[data-label="Attempts"]').textContent`); got != "2" {
		t.Errorf("attempts on the page: %q, want 2", got)
	}
	if eval(`document.activeElement.id`) != "detail-heading" {
		t.Errorf("opening a run from the keyboard should move the focus to its detail")
	}
	do("open the item's attempts", chromedp.Click(chromedp.CSS(`#items tbody tr button.toggle`)))
	wait("the attempt history", `document.querySelectorAll('#items tr.extra ol.attempts li').length === 2`)
	b.screenshot(t) // the README's: a run with a failed item, its cause and attempts

	// Its conflict: the comparison fills the row, the merged values say
	// where they came from.
	do("show the conflicts", chromedp.Click(chromedp.CSS(`.tab[data-status="conflict"]`)))
	wait("the product conflict", `(() => { const r = document.querySelector('#items > tbody > tr:not(.extra)'); return r && r.children[0].textContent === '9'; })()`)
	do("open the comparison", chromedp.Click(chromedp.CSS(`#items tbody tr button.toggle`)))
	wait("the comparison", `document.querySelectorAll('#items tr.extra:not([hidden]) table.compare tbody tr').length > 5`)
	for field, want := range map[string]string{"description": "from primary", "name": "from fallback"} {
		if got := eval(fmt.Sprintf(`(document.querySelector('table.compare tr[data-field=%q] td[data-side="merged"] .src') || {}).textContent || ''`, field)); got != want {
			t.Errorf("the merged %s is marked %q, want %q", field, got, want)
		}
	}
	layout("1440x900")
	zones("1440x900")
	if err := os.MkdirAll(filepath.Join(testenv.RepoRoot(t), ".run"), 0o755); err == nil {
		b.screenshotTo(t, filepath.Join(testenv.RepoRoot(t), ".run", "dashboard-conflict.png"))
	}

	// A real-time failure: a product written through the API that the
	// fallback refuses. The day's outcomes show it.
	var created apiProduct
	if code, _ := s.call("POST", "/api/products", `{"name":"`+refusedName+`","price":"1.00"}`, &created); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	day := "realtime-" + time.Now().UTC().Format("20060102")
	testenv.WaitFor(t, 60*time.Second, "the real-time failure", func() bool {
		var rt struct{ Items []struct{ ID int64 } }
		getJSON(t, api, s.url+"/api/product-sync/"+day+"/results?status=failed", &rt)
		return len(rt.Items) == 1 && rt.Items[0].ID == created.ID
	})
	do("show today's real-time outcomes", chromedp.Click(chromedp.CSS(`#realtime button[type="submit"]`)))
	wait("the real-time failure on the page", fmt.Sprintf(`(() => { const r = document.querySelector('#items > tbody > tr:not(.extra)');
		return document.querySelector('#detail-heading').textContent.startsWith('Real-time outcomes') && r && r.children[0].textContent === '%d' &&
			r.querySelector('.reason-cell').textContent.includes('browser_test_refuses'); })()`, created.ID))
	// Real-time failures are not a run's: no retry button, no explanation.
	if got := eval(`String(document.querySelector('#detail-retry').hidden && document.querySelector('#retry-failed').offsetParent === null)`); got != "true" {
		t.Errorf("a real-time day shows the retry line")
	}
	// Filter the day's items by id: the failure, either entity.
	do("filter the day by id", chromedp.SetValue(chromedp.ID("items-id"), fmt.Sprint(created.ID)), chromedp.Click(chromedp.CSS(`#items-find button[type="submit"]`)))
	wait("the day filtered by id", fmt.Sprintf(`(() => { const r = document.querySelectorAll('#items > tbody > tr:not(.extra)');
		return r.length === 1 && r[0].children[0].textContent === '%d' && !document.querySelector('#items-id-clear').hidden; })()`, created.ID))

	// Retry the product run's failed item once the fallback takes it. The
	// run keeps its own duration; the retry round gets one of its own.
	ownDuration := func() string {
		return eval(row(productRun) + `.querySelector('td[data-label="Duration"]').firstChild.textContent`)
	}
	durationBefore := ownDuration()
	exec("ALTER TABLE products DROP CONSTRAINT browser_test_refuses")
	do("open the product run", chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-run=%q]`, productRun))))
	wait("the retry button", `!document.querySelector('#retry-failed').disabled && !document.querySelector('#detail-retry').hidden`)
	do("retry the failed items", chromedp.Click(chromedp.ID("retry-failed")))
	wait("the retried run to complete", row(productRun)+`.querySelector('.badge').textContent === 'Completed · 1 conflict'`)
	wantProduct["created"], wantProduct["failed"] = "4", "0"
	if got := ownDuration(); got != durationBefore {
		t.Errorf("the retry changed the run's own duration from %q to %q", durationBefore, got)
	}
	if got := eval(`(` + row(productRun) + `.querySelector('.retry-duration') || {}).textContent || ''`); !strings.HasPrefix(got, " retry ") {
		t.Errorf("the retried run's duration cell has no retry duration: %q", got)
	}
	if c := counts(productRun); fmt.Sprint(c) != fmt.Sprint(wantProduct) {
		t.Errorf("after the retry the page shows %v, want %v", c, wantProduct)
	}
	getJSON(t, api, s.url+"/api/product-sync/"+productRun, &st)
	if st.CustomStatus.Counts["failed"] != 0 || st.CustomStatus.Counts["created"] != 4 || st.CustomStatus.Done != 6 {
		t.Errorf("after the retry the API says %+v", st.CustomStatus)
	}

	// Find an item by id in the open run: its history.
	do("search item 5", chromedp.SetValue(chromedp.ID("search-id"), "5"), chromedp.Click(chromedp.CSS(`#search button[type="submit"]`)))
	wait("item 5's history", `!document.querySelector('#item').hidden && document.querySelector('#item-body').textContent.includes('retry round 1') &&
		document.querySelectorAll('#item-body ol.attempts li').length === 2`)
	// Find an item with a comparison: the conflict's, below its history.
	do("search item 9", chromedp.SetValue(chromedp.ID("search-id"), "9"), chromedp.Click(chromedp.CSS(`#search button[type="submit"]`)))
	wait("item 9's comparison", `document.querySelector('#item-heading').textContent.startsWith('Product 9') &&
		document.querySelectorAll('#item-body table.compare td[data-side="merged"]').length > 5`)
	// Filter a tab by id: item 7 in All items; none in Failed, which says
	// what its outcome is.
	do("all items", chromedp.Click(chromedp.CSS(`.tab[data-status=""]`)))
	do("filter id 7", chromedp.SetValue(chromedp.ID("items-id"), "7"), chromedp.Click(chromedp.CSS(`#items-find button[type="submit"]`)))
	wait("item 7 alone", `(() => { const r = document.querySelectorAll('#items > tbody > tr:not(.extra)');
		return r.length === 1 && r[0].children[0].textContent === '7' && r[0].children[2].textContent.startsWith('unchanged'); })()`)
	do("failed tab", chromedp.Click(chromedp.CSS(`.tab[data-status="failed"]`)))
	wait("no failed item 7", `document.querySelectorAll('#items > tbody > tr').length === 0 && !document.querySelector('#items-empty').hidden &&
		document.querySelector('#items-empty').textContent.includes('product 7 is unchanged')`)
	do("show all", chromedp.Click(chromedp.ID("items-id-clear")))
	wait("the filter cleared", `document.querySelector('#items-id-clear').hidden && document.querySelector('#items-id').value === ''`)
	// Find a run by id, and filter the runs.
	do("search the user run", chromedp.SetValue(chromedp.ID("search-id"), userRun), chromedp.Click(chromedp.CSS(`#search button[type="submit"]`)))
	wait("the user run by id", `document.querySelector('#detail-summary').textContent.includes(`+fmt.Sprintf("%q", userRun)+`)`)
	do("filter user runs", chromedp.SetValue(chromedp.ID("f-entity"), "user"))
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('#f-entity').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	wait("only the user run", `document.querySelectorAll('#runs tbody tr').length === 1 && document.querySelector('#runs tbody tr').children[1].textContent === 'user'`)
	do("clear the filter", chromedp.SetValue(chromedp.ID("f-entity"), ""))
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('#f-entity').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	wait("both runs", `document.querySelectorAll('#runs tbody tr').length === 2`)

	// Nothing runs any more: the page stops polling.
	wait("auto-refresh to stop", `document.querySelector('#refresh-state').textContent.includes('auto-refresh off')`)
	time.Sleep(time.Second) // the On call refresh the last state change started
	before := len(b.requests())
	time.Sleep(5 * time.Second) // more than twice the page's polling interval
	// At most one refresh of the On call panel (every 15 s: health, the
	// runs and today's real-time counts, each paged), nothing of the runs'.
	var cycles, lists int
	var others []string
	for _, r := range b.requests()[before:] {
		switch {
		case strings.Contains(r.url, "/api/dashboard"), strings.Contains(r.url, "/api/product-sync/realtime-"):
		case strings.Contains(r.url, "/api/health/details"):
			cycles++
		case strings.Contains(r.url, "/api/product-sync?"):
			lists++ // one per On call refresh; more is the runs table polling
		default:
			others = append(others, r.url)
		}
	}
	if cycles > 1 || lists > cycles || len(others) > 0 {
		t.Errorf("while nothing was running, in 5 s: %d On call refreshes, %d run lists, other calls %v", cycles, lists, others)
	}

	// The conflict through a link, at desktop size, then
	// on a phone: no sideways scroll, the runs table's important columns on
	// the screen, the comparison not clipped.
	open := s.url + "/api/dashboard?code=" + key + "#run=" + productRun + "&status=conflict"
	do("open the product run's conflicts by link", chromedp.Navigate(open))
	wait("the linked conflict", `(() => { const r = document.querySelector('#items > tbody > tr:not(.extra)'); return r && r.children[0].textContent === '9'; })()`)
	do("open the comparison", chromedp.Click(chromedp.CSS(`#items tbody tr button.toggle`)))
	wait("the comparison", `document.querySelectorAll('#items tr.extra:not([hidden]) table.compare tbody tr').length > 5`)
	layout("1440x900")
	zones("1440x900")

	do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload())
	wait("the linked conflict on a phone", `(() => { const r = document.querySelector('#items > tbody > tr:not(.extra)'); return r && r.children[0].textContent === '9'; })()`)
	b.screenshotTo(t, filepath.Join(testenv.RepoRoot(t), ".run", "dashboard-phone.png"))
	do("open the comparison on a phone", chromedp.Click(chromedp.CSS(`#items tbody tr button.toggle`)))
	wait("the comparison on a phone", `document.querySelectorAll('#items tr.extra:not([hidden]) table.compare tbody tr').length > 5`)
	layout("390x844")
	zones("390x844")
	// The comparison keeps its column labels on a phone.
	if got := eval(`[...document.querySelectorAll('#items tr.extra:not([hidden]) table.compare thead th')].filter(th => th.getBoundingClientRect().height > 0).map(th => th.textContent).join(',')`); got != "Field,primary,fallback,merged" {
		t.Errorf("390x844: the comparison's visible column labels: %q", got)
	}
	hidden := eval(`JSON.stringify([...document.querySelectorAll('#runs tbody tr:first-child td')].filter(td =>
		['Started', 'Status', 'Progress', 'Conflict', 'Failed'].includes(td.dataset.label)).filter(td => {
			const r = td.getBoundingClientRect(); return r.width < 30 || r.height < 10 || r.left < 0 || r.right > window.innerWidth; })
		.map(td => td.dataset.label))`)
	if hidden != "[]" {
		t.Errorf("390x844: runs table columns off the screen: %s", hidden)
	}
	if n := eval(`String(document.querySelectorAll('#runs tbody tr:first-child td').length)`); n != "13" {
		t.Errorf("390x844: the runs table shows %s cells of a run, want 13", n)
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

// screenshotTo saves the whole page as a PNG at path.
func (b *browser) screenshotTo(t *testing.T, path string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
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
