//go:build browser

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dualsync/internal/domain"
)

// The dashboard starts a verify run and shows its drift report: each
// differing product's two rows side by side, the differing column marked,
// a missing row shown as such, and the run's mode in the runs table.
func TestDashboardVerifyRun(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	now := domain.Millis(time.Now())
	row := func(id int64, name string) domain.Product {
		return domain.Product{ID: id, Name: name, Price: 1250, CreatedAt: now, UpdatedAt: now, NameAt: now, DescriptionAt: now, PriceAt: now}
	}
	for _, w := range []struct {
		primary, fallback bool
		p                 domain.Product
	}{
		{true, false, row(1, "Only here")},
		{true, false, row(3, "Changed by SQL")},
		{false, true, row(3, "Before")},
		{true, true, row(5, "Same")},
	} {
		if w.primary {
			if _, err := s.primary.PutProduct(ctx, w.p, nil); err != nil {
				t.Fatal(err)
			}
		}
		if w.fallback {
			if _, err := s.fallback.PutProduct(ctx, w.p, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := takeSnapshot(t, s.fallback)

	b := newBrowser(t)
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool]("!!("+expr+")",
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, b.text())
		}
	}
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(s.url+"/api/dashboard")); err != nil {
		t.Fatal(err)
	}
	wait("the page", `document.querySelector('#start-verify')`)
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.ID("start-verify"))); err != nil {
		t.Fatal(err)
	}
	wait("the verify run in the runs table", `document.querySelector('#runs tbody [data-mode="verify"]')`)
	wait("the run completed", `document.querySelector('#runs tbody .s-completed')`)
	wait("the Differs tab with two items", `(() => { const t = document.querySelector('.tab[data-status="differs"]');
		return t && !t.hidden && t.getAttribute('aria-pressed') === 'true' && t.textContent.includes('(2)'); })()`)
	// Open the completed run (items loaded while it ran may predate its results).
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`#runs tbody button[data-run]`))); err != nil {
		t.Fatal(err)
	}
	wait("two drift reports", `document.querySelectorAll('#items .drift').length === 2`)
	// Product 3: both rows, the name marked as differing; product 1: no fallback row.
	// Each item's drift report is in the full-width row below it.
	wait("product 3's rows side by side", `(() => {
		const r3 = document.querySelector('#items tr.extra[data-for="product-3"]');
		const r1 = document.querySelector('#items tr.extra[data-for="product-1"]');
		if (!r3 || !r1) return false;
		const name = r3.querySelector('table.compare tr.differs[data-field="name"]');
		const price = r3.querySelector('table.compare tr[data-field="price"]');
		return name && name.cells[1].textContent === 'Changed by SQL' && name.cells[2].textContent === 'Before' &&
			price && !price.classList.contains('differs') &&
			r1.querySelector('table.compare tr[data-field="name"]').cells[2].textContent === '(no row)' &&
			r1.querySelector('caption').textContent.includes('missing_fallback');
	})()`)
	// One click shows the comparison, its times in the page's zone and its
	// version vectors as counters, not JSON.
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`#items tr[data-item="product-3"] button.toggle`))); err != nil {
		t.Fatal(err)
	}
	wait("product 3's comparison after one click", `(() => {
		const x = document.querySelector('#items tr.extra[data-for="product-3"]');
		const c = x && x.querySelector('table.compare');
		if (!c || c.getBoundingClientRect().height === 0) return false;
		const v = c.querySelector('tr[data-field="version"] td[data-side="primary"]').textContent;
		const t = c.querySelector('tr[data-field="updatedAt"] td[data-side="primary"]').textContent;
		return /^primary \d+ · fallback \d+$/.test(v) && / UTC([+-]\d\d:\d\d)?$/.test(t) && !x.textContent.includes('{"') && !/\dT\d/.test(x.textContent);
	})()`)
	// No retry line on a verify run.
	if v, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('#detail-retry').hidden`)); !v {
		t.Errorf("a verify run shows the retry line")
	}
	// Product 5, the same in both, was compared in bulk: counted, not
	// listed, and the All tab says so.
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`.tab[data-status=""]`))); err != nil {
		t.Fatal(err)
	}
	wait("the All tab's label", `(() => { const t = document.querySelector('.tab[data-status=""]').textContent; const n = document.querySelector('#items-note');
		return /\(\d+ listed of 3\)/.test(t) && !n.hidden && n.textContent.includes('unchanged in bulk') &&
			document.querySelectorAll('#items > tbody > tr:not(.extra)').length === 3 - Number(n.textContent.split(' ')[0]); })()`)
	if d := differing(before, takeSnapshot(t, s.fallback)); len(d) != 0 {
		t.Errorf("the verify run changed the fallback: %v", d)
	}
}
