package syncer

// The scenarios of issue 15 (items 1, 2, 5 and 6), each against real
// PostgreSQL in both roles, the primary behind a cuttable proxy, writes
// through the failover wrapper as the API makes them, and real queues.

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/failover"
	"dualsync/internal/store"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// api is the failover wrapper over env's databases, publishing changes to
// env's item queue as the handler does.
func (e *env) api() *failover.Failover {
	return failover.New(e.primary, e.fallback, failover.Options{QueryTimeout: 3 * time.Second, Cooldown: time.Hour, OnChange: e.eng.Changed})
}

// outage cuts the primary and waits until fo serves from the fallback.
func (e *env) outage(t *testing.T, fo *failover.Failover) {
	t.Helper()
	e.primaryProxy.Cut()
	testenv.WaitFor(t, 30*time.Second, "failover to the fallback", func() bool {
		_, _ = fo.ListProducts(context.Background(), store.Page{Limit: 1})
		return fo.State() != failover.BreakerClosed
	})
}

// syncAll runs every queued item message.
func (e *env) syncAll(t *testing.T) { drain(t, e.items, e.eng.SyncItem) }

func realtime(t *testing.T, e *env, ent domain.Entity, id int64) []table.Result {
	t.Helper()
	rs, _, err := e.rec.Results(context.Background(), RealtimePartition(time.Now()), "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []table.Result
	for _, r := range rs {
		if r.Entity == ent && r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

func bothProducts(t *testing.T, e *env, id int64) (domain.Product, domain.Product) {
	t.Helper()
	ctx := context.Background()
	p, pok, err := e.primary.LoadProduct(ctx, id)
	if err != nil || !pok {
		t.Fatalf("primary: product %d ok=%v err=%v", id, pok, err)
	}
	f, fok, err := e.fallback.LoadProduct(ctx, id)
	if err != nil || !fok {
		t.Fatalf("fallback: product %d ok=%v err=%v", id, fok, err)
	}
	if !productKind.same(p, f) || p.Ver != f.Ver {
		t.Fatalf("the databases differ:\nprimary  %+v\nfallback %+v", p, f)
	}
	return p, f
}

func wantEmptyOutboxes(t *testing.T, e *env) {
	t.Helper()
	for _, db := range []store.DB{e.primary, e.fallback} {
		if d, err := db.OutboxDepth(context.Background()); err != nil || d != 0 {
			t.Errorf("%s outbox depth %d (%v), want 0", db.Role(), d, err)
		}
	}
}

// Item 1: a PATCH acknowledged by the primary, then the primary goes away
// before its sync runs and another PATCH of the same product is served by
// the fallback's stale row. Both changes survive, on both sides, and the
// concurrency is recorded as a conflict with both versions and the result.
func TestScenarioConcurrentPatchesBothSurvive(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	fo := e.api()
	a, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("A"), Description: ptr(""), Price: ptr(domain.Money(100))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	if _, err := fo.UpdateProduct(ctx, a.ID, domain.ProductChange{Price: ptr(domain.Money(999_00))}); err != nil {
		t.Fatal(err)
	}
	e.outage(t, fo)
	renamed, err := fo.UpdateProduct(ctx, a.ID, domain.ProductChange{Name: ptr("renamed")})
	if err != nil || renamed.Price != 100 {
		t.Fatalf("PATCH on the fallback = %+v, %v; want it served from the stale row", renamed, err)
	}
	e.primaryProxy.Restore()
	e.syncAll(t)

	p, _ := bothProducts(t, e, a.ID)
	if p.Name != "renamed" || p.Price != 999_00 {
		t.Fatalf("after sync both hold %+v; want name renamed and price 999.00", p)
	}
	wantEmptyOutboxes(t, e)
	var conflict *table.Result
	for _, r := range realtime(t, e, domain.EntityProduct, a.ID) {
		if r.Status == StatusConflict {
			conflict = &r
		}
	}
	if conflict == nil {
		t.Fatalf("no conflict recorded: %+v", realtime(t, e, domain.EntityProduct, a.ID))
	}
	var d struct{ Primary, Fallback, Merged productJSON }
	if err := json.Unmarshal([]byte(conflict.Detail), &d); err != nil {
		t.Fatalf("detail %q: %v", conflict.Detail, err)
	}
	if d.Primary.Price != "999.00" || d.Fallback.Name != "renamed" || d.Merged.Name != "renamed" || d.Merged.Price != "999.00" {
		t.Errorf("detail = %+v", d)
	}
}

// Item 1: a DELETE acknowledged by the primary and a PATCH served by the
// fallback's stale row: the delete wins on both sides.
func TestScenarioDeleteWinsOverConcurrentPatch(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	fo := e.api()
	a, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("A"), Description: ptr(""), Price: ptr(domain.Money(100))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	if err := fo.DeleteProduct(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	e.outage(t, fo)
	if _, err := fo.UpdateProduct(ctx, a.ID, domain.ProductChange{Name: ptr("renamed")}); err != nil {
		t.Fatalf("PATCH on the fallback: %v", err)
	}
	e.primaryProxy.Restore()
	e.syncAll(t)
	p, _ := bothProducts(t, e, a.ID)
	if !p.Deleted() {
		t.Fatalf("the deleted product came back: %+v", p)
	}
	for _, db := range []store.DB{e.primary, e.fallback} {
		if _, err := db.GetProduct(ctx, a.ID); !domain.IsKind(err, domain.KindNotFound) {
			t.Errorf("%s serves the deleted product: %v", db.Role(), err)
		}
	}
	wantEmptyOutboxes(t, e)
}

func bothUsers(t *testing.T, e *env, ids ...int64) map[int64]string {
	t.Helper()
	ctx := context.Background()
	emails := map[int64]string{}
	for _, id := range ids {
		p, _, err := e.primary.LoadUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := e.fallback.LoadUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !userKind.same(p, f) || p.Ver != f.Ver {
			t.Fatalf("user %d differs:\nprimary  %+v\nfallback %+v", id, p, f)
		}
		emails[id] = p.Email
	}
	return emails
}

// syncUsers runs the users' messages in the given order (queue order is
// not guaranteed), each retried as the queue would until it succeeds.
func syncUsers(t *testing.T, e *env, ids ...int64) {
	t.Helper()
	for range 3 {
		var failed []int64
		for _, id := range ids {
			if err := e.eng.SyncItem(context.Background(), Message{Entity: domain.EntityUser, ID: id}); err != nil {
				failed = append(failed, id)
			}
		}
		if ids = failed; len(ids) == 0 {
			return
		}
	}
	t.Fatalf("users %v never synced", ids)
}

// Item 2: on the fallback user 3 moves b@ to c@, then user 1 moves a@ to
// b@; user 1's message runs first. The move is taken as a whole: no
// conflict, both databases equal, outboxes empty (so failback is right).
func TestScenarioEmailMoveConverges(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	fo := e.api()
	u1, err := fo.CreateUser(ctx, domain.UserChange{Name: ptr("one"), Email: ptr("a@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	u3, err := fo.CreateUser(ctx, domain.UserChange{Name: ptr("three"), Email: ptr("b@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	e.outage(t, fo)
	if _, err := fo.UpdateUser(ctx, u3.ID, domain.UserChange{Email: ptr("c@example.com")}); err != nil {
		t.Fatal(err)
	}
	if _, err := fo.UpdateUser(ctx, u1.ID, domain.UserChange{Email: ptr("b@example.com")}); err != nil {
		t.Fatal(err)
	}
	e.primaryProxy.Restore()
	syncUsers(t, e, u1.ID, u3.ID)
	got := bothUsers(t, e, u1.ID, u3.ID)
	if got[u1.ID] != "b@example.com" || got[u3.ID] != "c@example.com" {
		t.Fatalf("emails %v", got)
	}
	for _, id := range []int64{u1.ID, u3.ID} {
		for _, r := range realtime(t, e, domain.EntityUser, id) {
			if r.Status == StatusConflict {
				t.Errorf("user %d: a move was recorded as a conflict: %+v", id, r)
			}
		}
	}
	wantEmptyOutboxes(t, e)
}

// Item 2: two users swap their emails through a temporary address on the
// fallback; in either message order, the swap converges.
func TestScenarioEmailSwapConverges(t *testing.T) {
	for _, firstIsOne := range []bool{true, false} {
		e := newEnv(t, Options{})
		ctx := context.Background()
		fo := e.api()
		u1, err := fo.CreateUser(ctx, domain.UserChange{Name: ptr("one"), Email: ptr("a@example.com")})
		if err != nil {
			t.Fatal(err)
		}
		u2, err := fo.CreateUser(ctx, domain.UserChange{Name: ptr("two"), Email: ptr("b@example.com")})
		if err != nil {
			t.Fatal(err)
		}
		e.syncAll(t)
		e.outage(t, fo)
		for _, step := range []struct {
			id    int64
			email string
		}{{u1.ID, "tmp@example.com"}, {u2.ID, "a@example.com"}, {u1.ID, "b@example.com"}} {
			if _, err := fo.UpdateUser(ctx, step.id, domain.UserChange{Email: ptr(step.email)}); err != nil {
				t.Fatal(err)
			}
		}
		e.primaryProxy.Restore()
		order := []int64{u1.ID, u2.ID}
		if !firstIsOne {
			order = []int64{u2.ID, u1.ID}
		}
		syncUsers(t, e, order...)
		got := bothUsers(t, e, u1.ID, u2.ID)
		if got[u1.ID] != "b@example.com" || got[u2.ID] != "a@example.com" {
			t.Fatalf("order %v: emails %v", order, got)
		}
		wantEmptyOutboxes(t, e)
	}
}

// Item 5: the fallback is rebuilt from empty while the primary holds
// product 2 from the old fallback. Sync brings product 2 back, and the
// rebuilt fallback never hands out id 2 again.
func TestScenarioRebuiltFallbackNeverReusesIDs(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	old, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr("old fallback's"), Description: ptr(""), Price: ptr(domain.Money(1))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: old.ID}); err != nil {
		t.Fatal(err)
	}
	// Rebuild: a new, empty fallback database, and a full run.
	e.fallback = openDB(t, testenv.CreateDatabase(t), store.RoleFallback)
	e.eng = New(e.primary, e.fallback, e.items, e.plans, e.rec, Options{})
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	e.syncAll(t)
	if got, err := e.eng.Status(ctx, st.InstanceID); err != nil || got.RuntimeStatus != RunCompleted {
		t.Fatalf("run = %+v, %v", got, err)
	}
	n, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr("new"), Description: ptr(""), Price: ptr(domain.Money(2))})
	if err != nil {
		t.Fatalf("create on the rebuilt fallback: %v", err)
	}
	if n.ID == old.ID || n.ID%2 != 0 {
		t.Fatalf("the rebuilt fallback handed out id %d (old row %d)", n.ID, old.ID)
	}
	if p, _ := bothProducts(t, e, old.ID); p.Name != "old fallback's" {
		t.Fatalf("product %d = %+v", old.ID, p)
	}
}

// hookDB is a real database that runs a hook once, right after the first
// LoadProduct: a write landing between sync's read and its write.
type hookDB struct {
	store.DB
	hook func()
}

func (h *hookDB) LoadProduct(ctx context.Context, id int64) (domain.Product, bool, error) {
	p, ok, err := h.DB.LoadProduct(ctx, id)
	if h.hook != nil {
		f := h.hook
		h.hook = nil
		f()
	}
	return p, ok, err
}

// Item 6: a write on the target lands between sync's read and its copy.
// The copy is refused (compare and set), sync reads again and merges; the
// concurrent write is neither lost nor acknowledged unseen.
func TestScenarioWriteDuringCopy(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	fo := e.api()
	a, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("A"), Description: ptr(""), Price: ptr(domain.Money(100))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	if _, err := e.primary.UpdateProduct(ctx, a.ID, domain.ProductChange{Price: ptr(domain.Money(200))}); err != nil {
		t.Fatal(err)
	}
	fb := &hookDB{DB: e.fallback}
	fb.hook = func() {
		if _, err := e.fallback.UpdateProduct(ctx, a.ID, domain.ProductChange{Description: ptr("written during the copy")}); err != nil {
			t.Error(err)
		}
	}
	eng := New(e.primary, fb, e.items, e.plans, e.rec, Options{})
	if err := eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: a.ID}); err != nil {
		t.Fatal(err)
	}
	p, _ := bothProducts(t, e, a.ID)
	if p.Price != 200 || p.Description != "written during the copy" {
		t.Fatalf("both hold %+v; want the primary's price and the fallback's description", p)
	}
	wantEmptyOutboxes(t, e)
}
