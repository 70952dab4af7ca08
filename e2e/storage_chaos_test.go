//go:build chaos

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// TestStorageChaos is the storage fault drill of `make chaos`: the app
// under devhost with every table and queue request (the handler's and the
// host's) through a fault proxy in front of Azurite, while a full run, API
// PATCHes and a diff run go on. It ends with exact counts and "rows
// differing: 0", and no client answer caused by a storage fault but a 503
// with Retry-After.
func TestStorageChaos(t *testing.T) {
	rates := testenv.FaultRates{Busy: 0.05, Drop: 0.03, Fail: 0.02, Reset: 0.01, Delay: 0.10, MaxDelay: 300 * time.Millisecond}
	var tp, qp *testenv.FaultProxy
	s := startStackVia(t, nil, func(conn string) string {
		tp = testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "TableEndpoint"), *chaosSeed)
		qp = testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "QueueEndpoint"), *chaosSeed+1)
		return testenv.ViaFaultProxies(conn, tp, qp)
	})
	want := storageFixture(t, s, 4)
	fmt.Printf("storage chaos drill: seed %d, faults %+v\n", *chaosSeed, rates)
	tp.SetRates(rates, nil)
	qp.SetRates(rates, nil)

	start := time.Now()
	id := s.startRunRetrying(t, `{"mode":"full"}`)
	full := s.waitRun(id, 25*time.Minute) // a lost dequeue answer hides its messages for the 10-minute lease, as in Azure
	fullTook := time.Since(start)

	// API PATCHes, each answered 200 (or 503 with Retry-After, retried).
	patches, unavailable := 0, 0
	for i := range 200 {
		pid := int64(1 + i%600)
		for {
			code, h, b, err := s.try("PATCH", fmt.Sprintf("/api/products/%d", pid), fmt.Sprintf(`{"name":"patched %d"}`, i))
			if err == nil && code == http.StatusOK {
				patches++
				break
			}
			if err == nil && code == http.StatusServiceUnavailable && h.Get("Retry-After") != "" {
				unavailable++
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Fatalf("PATCH %d: %d %s %v", pid, code, b, err)
		}
	}
	waitOutboxes(t, s, 5*time.Minute)
	diff := s.startRunRetrying(t, `{"mode":"diff"}`)
	diffSt := s.waitRun(diff, 25*time.Minute)
	tp.SetRates(testenv.FaultRates{}, nil)
	qp.SetRates(testenv.FaultRates{}, nil)

	d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback))
	fmt.Printf("full run: %s in %s, counts %v\n", full.RuntimeStatus, fullTook.Round(time.Second), full.CustomStatus.Counts)
	fmt.Printf("PATCHes: %d answered 200, %d answers 503 with Retry-After (retried)\n", patches, unavailable)
	fmt.Printf("diff run: %s, counts %v\n", diffSt.RuntimeStatus, diffSt.CustomStatus.Counts)
	fmt.Printf("table faults:\n%squeue faults:\n%s", tp.Report(), qp.Report())
	fmt.Printf("rows differing: %d\n", len(d))
	if full.RuntimeStatus != "Completed" {
		t.Errorf("full run %s: %+v", full.RuntimeStatus, full.CustomStatus)
	}
	for st, n := range want {
		if full.CustomStatus.Counts[st] != n {
			t.Errorf("full run count %s = %d, want %d", st, full.CustomStatus.Counts[st], n)
		}
	}
	if diffSt.RuntimeStatus != "Completed" || diffSt.CustomStatus.Counts["failed"] != 0 {
		t.Errorf("diff run %s: %+v", diffSt.RuntimeStatus, diffSt.CustomStatus)
	}
	if len(d) != 0 {
		t.Errorf("rows differing: %v", d)
	}
}

// startRunRetrying starts a run, retrying a 503 with Retry-After (the one
// answer a storage fault may give a client); any other failure fails.
func (s *stack) startRunRetrying(t *testing.T, body string) string {
	t.Helper()
	for {
		code, h, b, err := s.try("POST", "/api/start-product-sync/ProductSyncOrchestrator", body)
		if err == nil && code == http.StatusServiceUnavailable && h.Get("Retry-After") != "" {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("start: %d %s %v", code, b, err)
		}
		return s.startedID(t, b)
	}
}

// storageFixture fills both databases at scale k (k*200 products: 80%
// identical, 10% in the primary only, 5% in the fallback only, 3% newer in
// the fallback, 2% deleted in the primary) and returns the full run's counts.
func storageFixture(t *testing.T, s *stack, k int) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := t0.Add(time.Second)
	prod := func(id int64, name string, at time.Time, deleted bool, pv, fv int64) domain.Product {
		p := domain.Product{ID: id, Name: name, Price: 1999, CreatedAt: t0, UpdatedAt: at, NameAt: at, DescriptionAt: t0, PriceAt: t0, Ver: domain.Vector{P: pv, F: fv}}
		if deleted {
			p.DeletedAt = &at
		}
		return p
	}
	put := func(db store.DB, p domain.Product) {
		cur, ok, err := db.LoadProduct(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var expect *domain.Vector
		if ok {
			expect = &cur.Ver
		}
		if _, err := db.PutProduct(ctx, p, expect); err != nil {
			t.Fatal(err)
		}
	}
	id := int64(0)
	next := func() int64 { id++; return id }
	for range 160 * k {
		p := prod(next(), "same", t0, false, 1, 0)
		put(s.primary, p)
		put(s.fallback, p)
	}
	for range 20 * k {
		put(s.primary, prod(next(), "primary only", t0, false, 1, 0))
	}
	for range 10 * k {
		put(s.fallback, prod(next(), "fallback only", t0, false, 0, 1))
	}
	for range 6 * k {
		i := next()
		put(s.primary, prod(i, "old", t0, false, 1, 0))
		put(s.fallback, prod(i, "new", later, false, 1, 1))
	}
	for range 4 * k {
		i := next()
		put(s.fallback, prod(i, "x", t0, false, 1, 0))
		put(s.primary, prod(i, "x", later, true, 2, 0))
	}
	return map[string]int64{"created": int64(30 * k), "updated": int64(6 * k), "deleted": int64(4 * k), "unchanged": int64(160 * k), "conflict": 0, "failed": 0}
}

func (s *stack) startedID(t *testing.T, b []byte) string {
	t.Helper()
	var start struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &start); err != nil || start.ID == "" {
		t.Fatalf("start answered %s: %v", b, err)
	}
	return start.ID
}
