package syncer

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/queue"
	"dualsync/internal/store"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func product(id int64, name string, updated time.Time, deleted bool) domain.Product {
	p := domain.Product{ID: id, Name: name, Price: 1999, CreatedAt: t0, UpdatedAt: updated, NameAt: updated, DescriptionAt: t0, PriceAt: t0}
	if deleted {
		p.DeletedAt = &updated
	}
	return p
}

// at returns p with version vector {pv, fv}.
func at(p domain.Product, pv, fv int64) domain.Product {
	p.Ver = domain.Vector{P: pv, F: fv}
	return p
}

func TestDecide(t *testing.T) {
	later := t0.Add(time.Millisecond)
	tests := []struct {
		name string
		p, f *domain.Product
		want action
	}{
		{"neither", nil, nil, actNeitherSides},
		{"primary only", ptr(at(product(1, "a", t0, false), 1, 0)), nil, actToFallback},
		{"fallback only", nil, ptr(at(product(2, "a", t0, false), 0, 1)), actToPrimary},
		{"identical", ptr(at(product(1, "a", t0, false), 1, 1)), ptr(at(product(1, "a", t0, false), 1, 1)), actNone},
		{"primary dominates", ptr(at(product(1, "b", later, false), 2, 1)), ptr(at(product(1, "a", t0, false), 1, 1)), actToFallback},
		{"fallback dominates", ptr(at(product(1, "a", t0, false), 1, 0)), ptr(at(product(1, "b", later, false), 1, 1)), actToPrimary},
		// Time plays no part: an older updatedAt that saw the other's change wins.
		{"dominating but older in time", ptr(at(product(1, "b", t0, false), 2, 1)), ptr(at(product(1, "a", later, false), 1, 1)), actToFallback},
		{"live that saw the delete is kept", ptr(at(product(1, "a", t0, true), 2, 0)), ptr(at(product(1, "b", later, false), 2, 1)), actToPrimary},
		{"concurrent", ptr(at(product(1, "p", t0, false), 2, 0)), ptr(at(product(1, "f", t0, false), 1, 1)), actMergeBoth},
		{"equal vectors, different rows (before vectors)", ptr(product(1, "p", t0, false)), ptr(product(1, "f", t0, false)), actMergeBoth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantVerdict(t, tt.p, tt.f, verdict{act: tt.want}) })
	}
}

// wantVerdict checks decide on the rows (nil: absent).
func wantVerdict(t *testing.T, pp, fp *domain.Product, want verdict) {
	t.Helper()
	var p, f domain.Product
	if pp != nil {
		p = *pp
	}
	if fp != nil {
		f = *fp
	}
	if got := decide(productKind, p, pp != nil, f, fp != nil, 0); got != want {
		t.Errorf("decide = %+v, want %+v", got, want)
	}
}

// TestDecideRegression: a database whose own entry is behind the other's
// copy of it, or jumped over it, lost that write (a restore, a rebuild).
func TestDecideRegression(t *testing.T) {
	const floor = 1_000_000
	jumped := func(p domain.Product, from, to int64) domain.Product {
		p.Jump = domain.Jump{From: from, To: to}
		return p
	}
	tests := []struct {
		name string
		p, f *domain.Product
		want verdict
	}{
		// The restored primary wrote X again after its restart: its entry
		// jumped from the backup's 1 over the 3 the fallback had synced.
		{"primary restored, written since", ptr(jumped(at(product(1, "x", t0, false), floor, 0), 1, floor)), ptr(at(product(1, "x3", t0, false), 3, 0)),
			verdict{act: actMergeBoth, reg: regPrimary}},
		// Restored and not written since: behind, the fallback's row is a
		// descendant of it and is copied over it, reported as a conflict.
		{"primary restored, behind", ptr(at(product(1, "x", t0, false), 1, 0)), ptr(at(product(1, "x3", t0, false), 3, 0)),
			verdict{act: actToPrimary, reg: regPrimary}},
		{"fallback restored, written since", ptr(at(product(2, "y", t0, false), 2, 5)), ptr(jumped(at(product(2, "y", t0, false), 2, floor), 4, floor)),
			verdict{act: actMergeBoth, reg: regFallback}},
		{"fallback behind and the primary wrote too", ptr(at(product(2, "y", t0, false), 3, 5)), ptr(at(product(2, "y", t0, false), 2, 4)),
			verdict{act: actToFallback, reg: regFallback}},
		{"both regressed", ptr(at(product(1, "p", t0, false), 1, 5)), ptr(at(product(1, "f", t0, false), 3, 4)),
			verdict{act: actMergeBoth, reg: regPrimary | regFallback}},
		// Drift, not a restore: a row edited by SQL behind the API.
		{"equal vectors, different rows", ptr(at(product(1, "p", t0, false), 3, 1)), ptr(at(product(1, "f", t0, false), 3, 1)),
			verdict{act: actMergeBoth, drift: true}},
		// Y was created on the fallback (primary entry 0), its price
		// PATCHed on the primary (entry floor-500) and synced; the primary
		// was restored to before that, then PATCHed after a restart: its
		// entry jumped from 0 over the lost write.
		{"primary restored where its entry was 0", ptr(jumped(at(product(2, "y-name", t0, false), floor, 1), 0, floor)), ptr(at(product(2, "y-price", t0, false), floor-500, 1)),
			verdict{act: actMergeBoth, reg: regPrimary}},
		// Retention purged the tombstone from the fallback only (a pass
		// stopped half-way): not a restore.
		{"tombstone absent on the other side", ptr(at(product(2, "b", t0, true), 3, 2)), nil, verdict{act: actToFallback}},
		// The rebuilt fallback lost its row: the primary holds its entry 2.
		{"absent where its entry is known", ptr(at(product(2, "b", t0, false), 0, 2)), nil, verdict{act: actToFallback, reg: regFallback}},
		{"absent on the primary", nil, ptr(at(product(1, "b", t0, false), 4, 0)), verdict{act: actToPrimary, reg: regPrimary}},
		// A benign jump (a restart, nothing lost) is no regression.
		{"jump below what the other has seen", ptr(jumped(at(product(1, "x", t0, false), floor+1, 0), 3, floor)), ptr(at(product(1, "x", t0, false), 3, 0)),
			verdict{act: actToFallback}},
		{"jump the other has seen", ptr(jumped(at(product(1, "x", t0, false), floor+1, 0), 3, floor)), ptr(at(product(1, "x", t0, false), floor, 0)),
			verdict{act: actToFallback}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantVerdict(t, tt.p, tt.f, tt.want) })
	}
}

// TestDecideDistrusted: while a database is known to have gone back in
// time, its rows never dominate; the other's still do.
func TestDecideDistrusted(t *testing.T) {
	tests := []struct {
		name     string
		p, f     domain.Product
		distrust regression
		want     verdict
	}{
		{"primary dominates, primary trusted", at(product(1, "b", t0, false), 2, 1), at(product(1, "a", t0, false), 1, 1), regFallback, verdict{act: actToFallback}},
		{"primary dominates, primary distrusted", at(product(1, "b", t0, false), 2, 1), at(product(1, "a", t0, false), 1, 1), regPrimary,
			verdict{act: actMergeBoth, distrusted: regPrimary}},
		{"fallback dominates, primary distrusted", at(product(1, "a", t0, false), 1, 1), at(product(1, "b", t0, false), 1, 2), regPrimary, verdict{act: actToPrimary}},
		{"fallback dominates, fallback distrusted", at(product(1, "a", t0, false), 1, 1), at(product(1, "b", t0, false), 1, 2), regFallback,
			verdict{act: actMergeBoth, distrusted: regFallback}},
		{"equal rows, distrusted", at(product(1, "a", t0, false), 1, 1), at(product(1, "a", t0, false), 1, 1), regPrimary, verdict{act: actNone}},
		{"equal vectors, different rows, distrusted", at(product(1, "a", t0, false), 1, 1), at(product(1, "b", t0, false), 1, 1), regPrimary,
			verdict{act: actMergeBoth, distrusted: regPrimary}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(productKind, tt.p, true, tt.f, true, tt.distrust); got != tt.want {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMergeProducts(t *testing.T) {
	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
	base := product(1, "base", t0, false)
	p := base
	p.Price, p.PriceAt, p.UpdatedAt, p.Ver = 999_00, t1, t1, domain.Vector{P: 2, F: 1}
	f := base
	f.Name, f.NameAt, f.UpdatedAt, f.Ver = "renamed", t2, t2, domain.Vector{P: 1, F: 2}
	m := mergeProducts(p, f)
	if m.Name != "renamed" || m.Price != 999_00 || m.Description != base.Description || m.Ver != (domain.Vector{P: 2, F: 2}) ||
		!m.UpdatedAt.Equal(t2) || !m.NameAt.Equal(t2) || !m.PriceAt.Equal(t1) || m.Deleted() {
		t.Errorf("merged = %+v", m)
	}
	// A delete wins over a concurrent edit, whichever side and time.
	d := base
	d.DeletedAt, d.UpdatedAt, d.Ver = &t1, t1, domain.Vector{P: 2, F: 1}
	e := base
	e.Name, e.NameAt, e.UpdatedAt, e.Ver = "edited later", t3, t3, domain.Vector{P: 1, F: 2}
	for _, m := range []domain.Product{mergeProducts(d, e), mergeProducts(e, d)} {
		if !m.Deleted() || !m.DeletedAt.Equal(t1) || m.Name != "edited later" {
			t.Errorf("delete vs edit merged to %+v", m)
		}
	}
	// Equal field times: the primary's value.
	q, r := base, base
	q.Name, r.Name = "P", "F"
	if m := mergeProducts(q, r); m.Name != "P" {
		t.Errorf("tie gave %q, want the primary's", m.Name)
	}
}

func ptr[T any](v T) *T { return &v }

func TestChain(t *testing.T) {
	tests := []struct {
		name        string
		pages       []table.PlanPage
		total       int64
		planned     bool
		description string
	}{
		{"none", nil, 0, false, "no page yet"},
		{"empty catalogue", []table.PlanPage{{After: 0, Count: 0, Last: true}}, 0, true, ""},
		{"two pages", []table.PlanPage{{After: 10, Count: 2, Next: 12, Last: true}, {After: 0, Count: 5, Next: 10}}, 7, true, ""},
		{"gap", []table.PlanPage{{After: 0, Count: 5, Next: 10}, {After: 20, Count: 1, Last: true}}, 5, false, "page after 10 missing"},
		{"first missing", []table.PlanPage{{After: 10, Count: 2, Last: true}}, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, planned := chain(tt.pages)
			if total != tt.total || planned != tt.planned {
				t.Errorf("chain = %d, %v; want %d, %v", total, planned, tt.total, tt.planned)
			}
		})
	}
}

// env is an engine on two fresh PostgreSQL databases, the shared Azurite,
// private queues and the real tables.
type env struct {
	primary, fallback store.DB
	primaryProxy      *testenv.Proxy // the primary is reached only through it
	// primaryURL is the primary straight (backups, restores), proxiedURL
	// through the proxy; fallbackURL the fallback.
	primaryURL, proxiedURL, fallbackURL string
	items, plans                        *queue.Queue
	rec                                 *table.Store
	eng                                 *Engine
	tables                              *aztables.ServiceClient // rec's tables are prefix + table.RunsTable / ResultsTable
	prefix                              string
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	ctx := context.Background()
	conn := testenv.Storage(t)
	e := &env{}
	var err error
	e.fallbackURL = testenv.CreateDatabase(t)
	e.fallback = openDB(t, e.fallbackURL, store.RoleFallback)
	raw := testenv.CreateDatabase(t)
	openDB(t, raw, store.RolePrimary)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	e.primaryProxy = testenv.NewProxy(t, u.Host)
	u.Host = e.primaryProxy.Addr()
	e.primaryURL, e.proxiedURL = raw, u.String()
	e.primary = openDB(t, e.proxiedURL, store.RolePrimary)
	qsvc, err := azqueue.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	suffix := testenv.RandomHex(4)
	e.items, e.plans = queue.New(qsvc, "t-items-"+suffix, true), queue.New(qsvc, "t-plans-"+suffix, true)
	for _, q := range []*queue.Queue{e.items, e.plans} {
		if err := q.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = q.Client().Delete(context.Background(), nil) })
	}
	tsvc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.rec = table.New(tsvc, &table.Options{Prefix: "t" + suffix})
	e.tables, e.prefix = tsvc, "t"+suffix
	t.Cleanup(func() {
		for _, name := range []string{"t" + suffix + table.RunsTable, "t" + suffix + table.ResultsTable} {
			_, _ = tsvc.DeleteTable(context.Background(), name, nil)
		}
	})
	if err := e.rec.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	e.eng = New(e.primary, e.fallback, e.items, e.plans, e.rec, o)
	return e
}

// openDB opens and migrates a database.
func openDB(t testing.TB, raw string, role store.Role) store.DB {
	t.Helper()
	db, err := database.Open(context.Background(), raw, role, database.Options{ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// drain receives every message on q and hands it to fn, deleting those fn
// accepts, until the queue stays empty.
func drain[M any](t *testing.T, q *queue.Queue, fn func(context.Context, M) error) int {
	t.Helper()
	n := 0
	for {
		msgs := receive[M](t, q)
		if len(msgs) == 0 {
			return n
		}
		for _, msg := range msgs {
			if err := fn(context.Background(), msg.m); err != nil {
				t.Fatalf("handling %+v: %v", msg.m, err)
			}
			deleteDelivered(t, q, msg)
			n++
		}
	}
}

// put writes p as sync would, whatever the row holds now.
func put(t testing.TB, db store.DB, p domain.Product) {
	t.Helper()
	cur, ok, err := db.LoadProduct(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var expect *domain.Vector
	if ok {
		expect = &cur.Ver
	}
	if _, err := db.PutProduct(context.Background(), p, expect); err != nil {
		t.Fatal(err)
	}
}

func TestSyncItemProducts(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	later := t0.Add(time.Second)
	tests := []struct {
		name       string
		p, f       *domain.Product
		wantStatus string
		want       domain.Product // both sides hold it afterwards
	}{
		{"copy to fallback", ptr(at(product(101, "a", t0, false), 1, 0)), nil, StatusCreated, at(product(101, "a", t0, false), 1, 0)},
		{"copy to primary", nil, ptr(at(product(102, "a", t0, false), 0, 1)), StatusCreated, at(product(102, "a", t0, false), 0, 1)},
		{"fallback dominates", ptr(at(product(103, "old", t0, false), 1, 0)), ptr(at(product(103, "new", later, false), 1, 1)), StatusUpdated, at(product(103, "new", later, false), 1, 1)},
		{"delete that saw the row", ptr(at(product(104, "a", t0, false), 1, 0)), ptr(at(product(104, "a", later, true), 1, 1)), StatusDeleted, at(product(104, "a", later, true), 1, 1)},
		{"tombstone to absent side", ptr(at(product(105, "a", t0, true), 2, 0)), nil, StatusDeleted, at(product(105, "a", t0, true), 2, 0)},
		{"concurrent delete and edit: deleted, conflict", ptr(at(product(106, "a", t0, true), 2, 0)), ptr(at(product(106, "b", later, false), 1, 1)), StatusConflict, at(func() domain.Product { p := product(106, "b", later, false); p.DeletedAt = &t0; return p }(), 2, 1)},
		{"equal old vectors, different rows: merged", ptr(product(107, "p", t0, false)), ptr(product(107, "f", later, false)), StatusConflict, product(107, "f", later, false)},
		{"identical", ptr(at(product(108, "a", t0, false), 3, 2)), ptr(at(product(108, "a", t0, false), 3, 2)), StatusUnchanged, at(product(108, "a", t0, false), 3, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p != nil {
				put(t, e.primary, *tt.p)
			}
			if tt.f != nil {
				put(t, e.fallback, *tt.f)
			}
			run := startRun(t, e)
			m := Message{Entity: domain.EntityProduct, ID: tt.want.ID, Run: run}
			// Twice: a redelivered message changes nothing and counts once.
			for range 2 {
				if err := e.eng.SyncItem(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			for _, db := range []store.DB{e.primary, e.fallback} {
				got, ok, err := db.LoadProduct(ctx, tt.want.ID)
				if err != nil || !ok {
					t.Fatalf("%s: load: ok=%v err=%v", db.Role(), ok, err)
				}
				if !productKind.same(got, tt.want) || got.Ver != tt.want.Ver {
					t.Errorf("%s holds %+v, want %+v", db.Role(), got, tt.want)
				}
			}
			rs, _, err := e.rec.Results(ctx, run, "", 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Status != tt.wantStatus || rs[0].ID != tt.want.ID {
				t.Errorf("results = %+v, want one %s", rs, tt.wantStatus)
			}
			prog, err := e.rec.Progress(ctx, run)
			if err != nil {
				t.Fatal(err)
			}
			if prog.Done != 1 || prog.Counts[tt.wantStatus] != 1 {
				t.Errorf("progress = %+v, want 1 %s", prog, tt.wantStatus)
			}
		})
	}
}

// startRun creates a run record without planning it, for driving SyncItem directly.
func startRun(t testing.TB, e *env) string {
	t.Helper()
	id := newRunID(time.Now())
	if err := e.rec.CreateRun(context.Background(), table.Run{ID: id, Entity: domain.EntityProduct, Trigger: "test", Status: RunPending, CreatedTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSyncItemAcknowledgesOutbox(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	p, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr("pen"), Price: ptr(domain.Money(150))})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := e.fallback.OutboxDepth(ctx); d != 1 {
		t.Fatalf("outbox depth after a write = %d, want 1", d)
	}
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.fallback.OutboxDepth(ctx); d != 0 {
		t.Errorf("outbox depth after sync = %d, want 0", d)
	}
	if _, err := e.primary.GetProduct(ctx, p.ID); err != nil {
		t.Errorf("primary lacks the product: %v", err)
	}
	rs, _, err := e.rec.Results(ctx, RealtimePartition(time.Now()), "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rs, func(r table.Result) bool { return r.ID == p.ID && r.Status == StatusCreated }) {
		t.Errorf("no real-time result for product %d in %+v", p.ID, rs)
	}
}

// Two people, one address: each message fails (the queue retries it, the
// email may yet be freed); once the retries are spent the poison handler
// records a conflict with both rows, and acknowledges the outbox so that
// failback is not held forever. Both users stay intact.
func TestSyncItemUserEmailConflict(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	a, err := e.primary.CreateUser(ctx, domain.UserChange{Name: ptr("Ann"), Email: ptr("same@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.fallback.CreateUser(ctx, domain.UserChange{Name: ptr("Bob"), Email: ptr("ＳＡＭＥ@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	run := startRun(t, e)
	for i, id := range []int64{a.ID, b.ID} {
		m := Message{Entity: domain.EntityUser, ID: id, Run: run}
		if err := e.eng.SyncItem(ctx, m); !domain.IsKind(err, domain.KindConflict) {
			t.Fatalf("user %d: SyncItem = %v, want a conflict error (retried by the queue)", id, err)
		}
		if prog, _ := e.rec.Progress(ctx, run); prog.Done != int64(i) {
			t.Fatalf("a retried email clash was recorded as final: %+v", prog)
		}
		if err := e.eng.ItemPoisoned(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	rs, _, err := e.rec.Results(ctx, run, StatusConflict, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Reason == "" || !strings.Contains(rs[0].Detail, `"name":"Ann"`) || !strings.Contains(rs[0].Detail, `"name":"Bob"`) ||
		!strings.Contains(rs[1].Detail, `"name":"Ann"`) || !strings.Contains(rs[1].Detail, `"name":"Bob"`) {
		t.Errorf("conflict results = %+v, want 2 with reasons and both rows", rs)
	}
	for _, c := range []struct {
		db   store.DB
		user domain.User
	}{{e.primary, a}, {e.fallback, b}} {
		got, err := c.db.GetUser(ctx, c.user.ID)
		if err != nil || got.Email != c.user.Email {
			t.Errorf("%s: user %d = %+v, %v; want intact", c.db.Role(), c.user.ID, got, err)
		}
		if d, _ := c.db.OutboxDepth(ctx); d != 0 {
			t.Errorf("%s: outbox depth %d after the conflict was recorded, want 0", c.db.Role(), d)
		}
	}
}

func TestRunPlansPagesAndCompletes(t *testing.T) {
	e := newEnv(t, Options{PageSize: 4})
	ctx := context.Background()
	// 7 products in the primary only, 3 in the fallback only, 2 differing, 1 tombstone.
	for i := int64(1); i <= 13; i += 2 {
		put(t, e.primary, product(i, fmt.Sprint("p", i), t0, false))
	}
	for i := int64(2); i <= 6; i += 2 {
		put(t, e.fallback, product(i, fmt.Sprint("f", i), t0, false))
	}
	put(t, e.fallback, at(product(1, "newer", t0.Add(time.Hour), false), 0, 1))
	put(t, e.fallback, at(product(3, "p3", t0.Add(time.Hour), true), 0, 1))

	st, err := e.eng.Start(ctx, StartRequest{Name: "ProductSyncOrchestrator", Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if st.RuntimeStatus != RunPending || st.Name != "ProductSyncOrchestrator" || st.Output != nil {
		t.Errorf("start status = %+v", st)
	}
	pages := drainPlans(t, e)
	if pages != 3 { // 10 ids in pages of 4
		t.Errorf("planner messages = %d, want 3", pages)
	}
	mid, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.RuntimeStatus != RunRunning || mid.CustomStatus.Total != 10 || !mid.CustomStatus.Planned {
		t.Errorf("status before items = %+v", mid)
	}
	if n := drain(t, e.items, e.eng.SyncItem); n != 10 {
		t.Errorf("item messages = %d, want 10", n)
	}
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{StatusCreated: 8, StatusUpdated: 1, StatusDeleted: 1}
	if done.RuntimeStatus != RunCompleted || len(done.Output) != 10 || done.CustomStatus.Done != 10 {
		t.Fatalf("final status = %+v", done)
	}
	for s, n := range want {
		if done.CustomStatus.Counts[s] != n {
			t.Errorf("count %s = %d, want %d (%v)", s, done.CustomStatus.Counts[s], n, done.CustomStatus.Counts)
		}
	}
	if !slices.IsSortedFunc(done.Output, func(a, b OutputItem) int { return int(a.ID - b.ID) }) {
		t.Errorf("output not ordered by id: %+v", done.Output)
	}
	// The completed run is cached: its status no longer depends on progress.
	again, err := e.rec.GetRun(ctx, st.InstanceID)
	if err != nil || again.Status != RunCompleted || again.Total != 10 {
		t.Errorf("cached run = %+v, %v", again, err)
	}
	for _, db := range []store.DB{e.primary, e.fallback} {
		ids, err := db.IDs(ctx, domain.EntityProduct, 0, 100)
		if err != nil || len(ids) != 10 {
			t.Errorf("%s ids = %v, %v; want 10", db.Role(), ids, err)
		}
	}
}

func TestEmptyCatalogueCompletes(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Entity: domain.EntityUser})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	got, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil || got.RuntimeStatus != RunCompleted || got.CustomStatus.Total != 0 || got.Output == nil {
		t.Errorf("status = %+v, %v; want Completed with an empty output", got, err)
	}
}

func TestPoisonedItemCompletesRunAsFailed(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	put(t, e.primary, product(1, "a", t0, false))
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	// The fallback goes away: the item fails, with a reason recorded.
	e.fallback.Close()
	err = e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: 1, Run: st.InstanceID})
	if err == nil {
		t.Fatal("SyncItem succeeded with the fallback closed")
	}
	if err := e.eng.ItemPoisoned(ctx, Message{Entity: domain.EntityProduct, ID: 1, Run: st.InstanceID}); err != nil {
		t.Fatal(err)
	}
	got, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RuntimeStatus != RunCompleted || got.CustomStatus.Counts[StatusFailed] != 1 || len(got.Output) != 1 || got.Output[0].Reason == "" {
		t.Errorf("status = %+v", got)
	}
}

func TestUnknownRun(t *testing.T) {
	e := newEnv(t, Options{})
	for _, id := range []string{"nope", "../x", ""} {
		if _, err := e.eng.Status(context.Background(), id); !domain.IsKind(err, domain.KindNotFound) {
			t.Errorf("Status(%q) err = %v, want not found", id, err)
		}
	}
	if err := e.eng.Plan(context.Background(), PlanMessage{Run: "nope", Entity: domain.EntityProduct}, Delivery{MessageID: "m1"}); err != nil {
		t.Errorf("planner message of an unknown run: %v, want dropped", err)
	}
}

func TestRelaySendsUnsentAndUnacknowledged(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, Options{Clock: clock, ResendAfter: time.Minute})
	ctx := context.Background()
	p, err := e.primary.CreateProduct(ctx, domain.ProductChange{Name: ptr("cup"), Price: ptr(domain.Money(300))})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		props, err := e.items.Client().GetProperties(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return int(*props.ApproximateMessagesCount)
	}
	// Fresh entries are left to the after-commit publisher.
	if err := e.eng.Relay(ctx); err != nil || count() != 0 {
		t.Fatalf("relay of a fresh entry: err %v, messages %d; want none", err, count())
	}
	now = now.Add(10 * time.Second)
	if err := e.eng.Relay(ctx); err != nil || count() != 1 {
		t.Fatalf("relay of an unsent entry: err %v, messages %d; want 1", err, count())
	}
	// Sent, not acknowledged: not again until ResendAfter has passed.
	now = now.Add(30 * time.Second)
	if err := e.eng.Relay(ctx); err != nil || count() != 1 {
		t.Fatalf("relay before ResendAfter: err %v, messages %d; want still 1", err, count())
	}
	// Nor while its message is still waiting in the queue (a backlog).
	now = now.Add(time.Minute)
	if err := e.eng.Relay(ctx); err != nil || count() != 1 {
		t.Fatalf("relay while the message waits: err %v, messages %d; want still 1", err, count())
	}
	// The message is gone (consumed, never acknowledged): sent again.
	if n := drain(t, e.items, func(context.Context, Message) error { return nil }); n != 1 {
		t.Fatalf("took %d messages, want 1", n)
	}
	if err := e.eng.Relay(ctx); err != nil || count() != 1 {
		t.Fatalf("relay after ResendAfter: err %v, messages %d; want 1 again", err, count())
	}
	drain(t, e.items, e.eng.SyncItem)
	if d, _ := e.primary.OutboxDepth(ctx); d != 0 {
		t.Errorf("outbox depth after sync = %d", d)
	}
	if _, err := e.fallback.GetProduct(ctx, p.ID); err != nil {
		t.Errorf("fallback lacks the product: %v", err)
	}
}
