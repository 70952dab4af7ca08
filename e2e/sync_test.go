package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/sample"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// The original's flow: sample data, start a run, poll until Completed,
// read the output.
func TestSeedFlow(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	for _, db := range []store.DB{s.primary, s.fallback} {
		if err := sample.Load(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	// One difference for the run to repair: a product only the fallback has.
	var created apiProduct
	if code, _ := s.call("POST", "/api/products", `{"name":"Lamp","price":"12.50"}`, &created); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	id := s.startRun("")
	st := s.waitRun(id, 60*time.Second)
	if st.RuntimeStatus != "Completed" || st.Name != "ProductSyncOrchestrator" || st.InstanceID != id {
		t.Fatalf("status = %+v", st)
	}
	ids, err := s.primary.IDs(ctx, domain.EntityProduct, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Output) != len(ids) || st.CustomStatus.Total != int64(len(ids)) || st.CustomStatus.Done != int64(len(ids)) {
		t.Errorf("output has %d items, total %d, done %d; the primary has %d products", len(st.Output), st.CustomStatus.Total, st.CustomStatus.Done, len(ids))
	}
	for _, o := range st.Output {
		if o.Status != "unchanged" && o.Status != "created" {
			t.Errorf("item %d: %s", o.ID, o.Status)
		}
	}
	if d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)); len(d) != 0 {
		t.Errorf("rows differing after the run: %v", d)
	}
	// The list shows the run, newest first.
	var runs []runStatus
	if code, _ := s.call("GET", "/api/product-sync", "", &runs); code != http.StatusOK || len(runs) == 0 || runs[0].InstanceID != id {
		t.Errorf("list = %d %+v", code, runs)
	}
	// Failed-only results of a clean run: none.
	var page struct {
		Items []any `json:"items"`
	}
	if code, _ := s.call("GET", "/api/product-sync/"+id+"/results?status=failed", "", &page); code != http.StatusOK || len(page.Items) != 0 {
		t.Errorf("failed results = %d %+v", code, page)
	}
}

// A product created, updated and deleted through the API reaches the other
// database within seconds, and the outboxes drain.
func TestRealtimeSync(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	var p apiProduct
	if code, _ := s.call("POST", "/api/products", `{"name":"Desk","price":"120.00"}`, &p); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	waitProduct(t, s.fallback, p.ID, func(q domain.Product, ok bool) bool { return ok && q.Name == "Desk" && !q.Deleted() })

	if code, _ := s.call("PATCH", fmt.Sprintf("/api/products/%d", p.ID), `{"price":"99.99"}`, nil); code != http.StatusOK {
		t.Fatalf("patch: %d", code)
	}
	waitProduct(t, s.fallback, p.ID, func(q domain.Product, ok bool) bool { return ok && q.Price.String() == "99.99" })

	if code, _ := s.call("DELETE", fmt.Sprintf("/api/products/%d", p.ID), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	waitProduct(t, s.fallback, p.ID, func(q domain.Product, ok bool) bool { return ok && q.Deleted() })

	// Users go the same way.
	var u struct{ ID int64 }
	if code, _ := s.call("POST", "/api/users", `{"name":"Ann","email":"ann@example.com"}`, &u); code != http.StatusCreated {
		t.Fatalf("create user: %d", code)
	}
	testenv.WaitFor(t, 20*time.Second, "the user in the fallback", func() bool {
		got, ok, err := s.fallback.LoadUser(ctx, u.ID)
		return err == nil && ok && got.Email == "ann@example.com"
	})
	waitOutboxes(t, s, 0)
	if d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)); len(d) != 0 {
		t.Errorf("rows differing: %v", d)
	}
	// Real-time outcomes are readable through the status API.
	var page struct {
		Items []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"items"`
	}
	part := "realtime-" + time.Now().UTC().Format("20060102")
	if code, _ := s.call("GET", "/api/product-sync/"+part+"/results", "", &page); code != http.StatusOK || len(page.Items) == 0 {
		t.Errorf("real-time results: %d %+v", code, page)
	}
}

func waitProduct(t *testing.T, db store.DB, id int64, cond func(domain.Product, bool) bool) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("product %d in the %s", id, db.Role()), func() bool {
		p, ok, err := db.LoadProduct(context.Background(), id)
		return err == nil && cond(p, ok)
	})
}

func waitOutboxes(t *testing.T, s *stack, within time.Duration) {
	t.Helper()
	if within == 0 {
		within = 30 * time.Second
	}
	testenv.WaitFor(t, within, "both outboxes to drain", func() bool {
		a, err1 := s.primary.OutboxDepth(context.Background())
		b, err2 := s.fallback.OutboxDepth(context.Background())
		return err1 == nil && err2 == nil && a == 0 && b == 0
	})
}

type health struct {
	Status  string `json:"status"`
	Serving string `json:"serving"`
	Breaker string `json:"breaker"`
}

// With the primary down, writes go to the fallback; once it is back they
// reach it, and the API fails back only after the fallback's outbox drained.
func TestPrimaryOutageAndFailback(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	s.primaryProxy.Cut()
	var written []int64
	for i := range 5 {
		var p apiProduct
		code, _ := s.call("POST", "/api/products", fmt.Sprintf(`{"name":"outage %d","price":"1.00"}`, i), &p)
		if code != http.StatusCreated {
			t.Fatalf("write during the outage: %d", code)
		}
		if p.ID%2 != 0 {
			t.Errorf("id %d during the outage: the fallback allocates even ids", p.ID)
		}
		written = append(written, p.ID)
	}
	var h health
	s.call("GET", "/api/health/details", "", &h)
	if h.Serving != "fallback" || h.Status != "degraded" {
		t.Errorf("health during the outage = %+v", h)
	}
	if d, _ := s.fallback.OutboxDepth(ctx); d == 0 {
		t.Error("the fallback's outbox is empty during the outage; the writes would be lost for the primary")
	}

	s.primaryProxy.Restore()
	// Until the outbox drains the breaker may not close; once closed, every
	// write made during the outage is in the primary.
	testenv.WaitFor(t, 60*time.Second, "failback", func() bool {
		depth, err := s.fallback.OutboxDepth(ctx)
		var h health
		s.call("GET", "/api/health/details", "", &h)
		// Reads go through the API too, which probes and fails back.
		s.call("GET", "/api/products?limit=1", "", nil)
		if h.Breaker == "closed" && (err != nil || depth != 0) {
			t.Fatalf("failed back with %d unsent changes in the fallback (err %v)", depth, err)
		}
		return h.Breaker == "closed"
	})
	for _, id := range written {
		var p apiProduct
		if code, _ := s.call("GET", fmt.Sprintf("/api/products/%d", id), "", &p); code != http.StatusOK {
			t.Errorf("after failback, product %d: %d", id, code)
		}
		if _, ok, err := s.primary.LoadProduct(ctx, id); err != nil || !ok {
			t.Errorf("primary lacks product %d after failback", id)
		}
	}
}

// With the queue down at write time the API still succeeds; the change
// arrives once the queue is back (sent by the outbox relay).
func TestQueueDownAtWriteTime(t *testing.T) {
	s := startStack(t, nil)
	s.azurite.Stop()
	var p apiProduct
	code, _ := s.call("POST", "/api/products", `{"name":"Chair","price":"45.00"}`, &p)
	if code != http.StatusCreated {
		t.Fatalf("write with the queue down: %d", code)
	}
	if d, _ := s.primary.OutboxDepth(context.Background()); d != 1 {
		t.Errorf("outbox depth = %d, want the write's entry", d)
	}
	time.Sleep(2 * time.Second)
	if _, ok, _ := s.fallback.LoadProduct(context.Background(), p.ID); ok {
		t.Fatal("the product reached the fallback while the queue was down?")
	}
	s.azurite.Start()
	waitProduct(t, s.fallback, p.ID, func(q domain.Product, ok bool) bool { return ok && q.Name == "Chair" })
	waitOutboxes(t, s, 0)
}

// With the target database down during a run, item messages retry, then
// land in the poison queue; the run completes with them failed and says why.
func TestTargetDownDuringRun(t *testing.T) {
	s := startStack(t, map[string]string{"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2"})
	ctx := context.Background()
	for i := int64(1); i <= 5; i += 2 {
		now := domain.Millis(time.Now())
		if _, err := s.primary.PutProduct(ctx, domain.Product{ID: i, Name: "p", Price: 100, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.fallbackProxy.Cut()
	id := s.startRun("")
	st := s.waitRun(id, 90*time.Second)
	if st.RuntimeStatus != "Completed" || st.CustomStatus.Counts["failed"] != 3 || len(st.Output) != 3 {
		t.Fatalf("status = %+v", st)
	}
	for _, o := range st.Output {
		if o.Status != "failed" || !strings.Contains(o.Reason, "unavailable") {
			t.Errorf("item %d: %s %q, want failed because a database was unavailable", o.ID, o.Status, o.Reason)
		}
	}
	// Back up, a new run repairs everything.
	s.fallbackProxy.Restore()
	st = s.waitRun(s.startRun(""), 60*time.Second)
	if st.CustomStatus.Counts["created"] != 3 {
		t.Errorf("repair run = %+v", st.CustomStatus)
	}
}

// Two people sign up with one address, one in each database. Through the
// real queue and poison handler: each user's message is retried, then
// recorded as a conflict with both rows, and the outboxes are acknowledged
// so failback is not held forever; both users stay as they were.
func TestEmailClashEndsAsConflict(t *testing.T) {
	s := startStack(t, map[string]string{"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2"})
	ctx := context.Background()
	a, err := s.primary.CreateUser(ctx, domain.UserChange{Name: ptr("Ann"), Email: ptr("same@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.fallback.CreateUser(ctx, domain.UserChange{Name: ptr("Bob"), Email: ptr("ＳＡＭＥ@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	waitOutboxes(t, s, 90*time.Second) // the relay sends both; retries, then the poison handler acknowledges
	var page struct {
		Items []struct {
			ID     int64           `json:"id"`
			Entity string          `json:"entity"`
			Status string          `json:"status"`
			Reason string          `json:"reason"`
			Detail json.RawMessage `json:"detail"`
		} `json:"items"`
	}
	part := "realtime-" + time.Now().UTC().Format("20060102")
	if code, _ := s.call("GET", "/api/product-sync/"+part+"/results?status=conflict", "", &page); code != http.StatusOK {
		t.Fatalf("results: %d", code)
	}
	found := map[int64]bool{}
	for _, it := range page.Items {
		if it.Entity == "user" && (it.ID == a.ID || it.ID == b.ID) && strings.Contains(it.Reason, "conflict") &&
			strings.Contains(string(it.Detail), `"name":"Ann"`) && strings.Contains(string(it.Detail), `"name":"Bob"`) {
			found[it.ID] = true
		}
	}
	if !found[a.ID] || !found[b.ID] {
		t.Fatalf("conflict results = %+v, want users %d and %d", page.Items, a.ID, b.ID)
	}
	if got, err := s.primary.GetUser(ctx, a.ID); err != nil || got.Email != a.Email {
		t.Errorf("primary user %d = %+v, %v", a.ID, got, err)
	}
	if got, err := s.fallback.GetUser(ctx, b.ID); err != nil || got.Email != b.Email {
		t.Errorf("fallback user %d = %+v, %v", b.ID, got, err)
	}
}

func ptr[T any](v T) *T { return &v }
