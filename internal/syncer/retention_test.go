package syncer

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

const day = 24 * time.Hour

// entitiesOfRun counts what Table Storage holds of run id: SyncResults
// entities in its partitions (id, id-NN) and its SyncRuns entity.
func entitiesOfRun(t *testing.T, e *env, id string) int {
	t.Helper()
	n := 0
	for _, q := range []struct{ table, filter string }{
		{table.ResultsTable, "PartitionKey ge '" + id + "' and PartitionKey lt '" + id + ".'"},
		{table.RunsTable, "PartitionKey eq 'run' and RowKey eq '" + id + "'"},
	} {
		pager := e.tables.NewClient(e.prefix + q.table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q.filter})
		for pager.More() {
			page, err := pager.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Entities)
		}
	}
	return n
}

// engineAt is an engine of e's databases, queues and tables whose clock
// stands at now + shift.
func engineAt(e *env, shift time.Duration, o Options) *Engine {
	o.Clock = func() time.Time { return time.Now().Add(shift) }
	return New(e.primary, e.fallback, e.items, e.plans, e.rec, o)
}

// TestRetentionRuns: expired runs that are over (even with a stale
// Running status) go whole, a run still in progress stays whatever its
// age until it has been idle for the whole retention period (longer than
// a message lives), a recent run stays, a run whose deletion stopped after
// its mark is finished, and old real-time days go.
func TestRetentionRuns(t *testing.T) {
	e := newEnv(t, Options{PageSize: 4})
	ctx := context.Background()
	for i := int64(1); i <= 9; i += 2 {
		put(t, e.primary, product(i, "p", t0, false))
	}
	old := engineAt(e, -40*day, Options{PageSize: 4})

	// Over, but nobody read its status since: the entity still says Running.
	done, err := old.Start(ctx, StartRequest{Trigger: "timer"})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	drain(t, e.items, e.eng.SyncItem)
	if r, _ := e.rec.GetRun(ctx, done.InstanceID); r.Status != RunRunning {
		t.Fatalf("setup: the finished run's entity says %s, want a stale Running", r.Status)
	}
	// In progress: planned, its items still waiting in the queue.
	busy, err := old.Start(ctx, StartRequest{Trigger: "timer"})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	// Marked by a pass that stopped right after the mark.
	marked, err := old.Start(ctx, StartRequest{Trigger: "timer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rec.MarkRunDeleting(ctx, marked.InstanceID, azcore.ETagAny, time.Now()); err != nil {
		t.Fatal(err)
	}
	recent, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	// Real-time outcomes 40 days ago and today.
	oldAt := time.Now().Add(-40 * day)
	if err := e.rec.RecordRealtime(ctx, table.Result{Entity: domain.EntityProduct, ID: 1, Status: StatusUpdated, At: oldAt},
		table.Result{Entity: domain.EntityProduct, ID: 1, Status: StatusUpdated}); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, id := range []string{done.InstanceID, busy.InstanceID, marked.InstanceID, recent.InstanceID} {
		sizes[id] = entitiesOfRun(t, e, id)
	}

	rep, err := engineAt(e, 0, Options{}).RetentionPass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs != 2 || rep.InProgress != 1 || !rep.Done || rep.RealtimeEntities != 1 || rep.Tombstones != 0 {
		t.Errorf("report = %+v, want 2 runs deleted, 1 in progress, 1 real-time entity, done", rep)
	}
	if want := int64(sizes[done.InstanceID] + sizes[marked.InstanceID]); rep.RunEntities != want {
		t.Errorf("deleted %d run entities, the two runs had %d", rep.RunEntities, want)
	}
	for id, want := range map[string]int{done.InstanceID: 0, marked.InstanceID: 0, busy.InstanceID: sizes[busy.InstanceID], recent.InstanceID: sizes[recent.InstanceID]} {
		if got := entitiesOfRun(t, e, id); got != want {
			t.Errorf("run %s: %d entities left, want %d", id, got, want)
		}
	}
	if _, err := e.eng.Status(ctx, done.InstanceID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("status of a deleted run: %v, want NotFound", err)
	}
	if st, err := e.eng.Status(ctx, busy.InstanceID); err != nil || st.RuntimeStatus != RunRunning {
		t.Errorf("the run in progress: %+v, %v", st, err)
	}
	for day, want := range map[string]int{RealtimePartition(oldAt): 0, RealtimePartition(time.Now()): 1} {
		rs, _, err := e.rec.Results(ctx, day, "", 100, "")
		if err != nil || len(rs) != want {
			t.Errorf("real-time %s: %d results, %v; want %d", day, len(rs), err, want)
		}
	}

	// A retention period on, the run in progress and the recent one (never
	// planned: its planner message still waits) have had no activity for
	// the whole period, longer than any of their messages can live:
	// abandoned, they go.
	rep, err = engineAt(e, 31*day, Options{}).RetentionPass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs != 2 || rep.InProgress != 0 {
		t.Errorf("second pass = %+v, want the two abandoned runs deleted", rep)
	}
	for _, id := range []string{busy.InstanceID, recent.InstanceID} {
		if got := entitiesOfRun(t, e, id); got != 0 {
			t.Errorf("abandoned run %s: %d entities left", id, got)
		}
	}
}

// TestRetentionTombstones: only tombstones both databases hold identically
// (or that the other side no longer holds), deleted before the horizon and
// waiting in no outbox, are purged; nothing is purged while the setting is
// unset.
func TestRetentionTombstones(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	both := func(p domain.Product) { put(t, e.primary, p); put(t, e.fallback, p) }
	both(at(product(1, "gone", t0, true), 2, 0))                     // identical tombstones: purged
	put(t, e.primary, at(product(3, "differs", t0, true), 2, 0))     // vectors differ: kept
	put(t, e.fallback, at(product(3, "differs", t0, true), 2, 1))    //
	put(t, e.primary, at(product(5, "half purged", t0, true), 2, 0)) // the other side has none: purged
	both(at(product(7, "live", t0, false), 1, 0))                    // live: kept
	both(at(product(9, "recent", time.Now(), true), 2, 0))           // deleted within the horizon: kept
	changed := at(product(11, "other name", t0, true), 2, 0)         // same vector, a column differs: kept
	put(t, e.primary, changed)
	changed.Name = "renamed behind the API"
	put(t, e.fallback, changed)
	// Deleted through the API on the fallback: its outbox entries wait.
	w, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr("waiting"), Price: ptr(domain.Money(100))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fallback.DeleteProduct(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	wrow, _, _ := e.fallback.LoadProduct(ctx, w.ID)
	put(t, e.primary, wrow)
	u := domain.User{ID: 21, Name: "u", Email: "u@example.com", CreatedAt: t0, UpdatedAt: t0, DeletedAt: &t0, NameAt: t0, EmailAt: t0, Ver: domain.Vector{P: 1}}
	for _, db := range []store.DB{e.primary, e.fallback} {
		if _, err := db.PutUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Live rows above every id of each parity: the highest id of a parity
	// is never purged (TestRetentionKeepsTheHighestIDs).
	both(at(product(1001, "top odd", t0, false), 1, 0))
	both(at(product(1002, "top even", t0, false), 0, 1))
	top := domain.User{ID: 23, Name: "top", Email: "top@example.com", CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0, Ver: domain.Vector{P: 1}}
	for _, db := range []store.DB{e.primary, e.fallback} {
		if _, err := db.PutUser(ctx, top, nil); err != nil {
			t.Fatal(err)
		}
	}

	rep, err := engineAt(e, 0, Options{}).RetentionPass(ctx)
	if err != nil || rep.Tombstones != 0 {
		t.Fatalf("without TOMBSTONE_RETENTION: %+v, %v; want nothing purged", rep, err)
	}
	// A day's retention: the rows deleted at t0 are past it, the API's
	// delete of a moment ago is not.
	rep, err = engineAt(e, time.Minute, Options{TombstoneRetention: day}).RetentionPass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tombstones != 5 {
		t.Errorf("purged %d rows, want 5 (product 1 twice, product 5, user 21 twice)", rep.Tombstones)
	}
	present := func(db store.DB, id int64) bool {
		_, ok, err := db.LoadProduct(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, c := range []struct {
		id   int64
		p, f bool
	}{{1, false, false}, {3, true, true}, {5, false, false}, {7, true, true}, {9, true, true}, {11, true, true}, {w.ID, true, true}} {
		if p, f := present(e.primary, c.id), present(e.fallback, c.id); p != c.p || f != c.f {
			t.Errorf("product %d: primary %v fallback %v, want %v %v", c.id, p, f, c.p, c.f)
		}
	}
	for _, db := range []store.DB{e.primary, e.fallback} {
		if _, ok, _ := db.LoadUser(ctx, u.ID); ok {
			t.Errorf("user %d still on the %s", u.ID, db.Role())
		}
	}
	// With a long horizon, the API's recent tombstone stays even once its
	// outbox is acknowledged.
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	if rep, err := engineAt(e, time.Minute, Options{TombstoneRetention: day}).RetentionPass(ctx); err != nil || rep.Tombstones != 0 {
		t.Errorf("third pass: %+v, %v; want nothing purged", rep, err)
	}
	// A day later it is purged from both.
	if rep, err := engineAt(e, 2*day, Options{TombstoneRetention: day}).RetentionPass(ctx); err != nil || rep.Tombstones != 4 {
		t.Errorf("two days on: %+v, %v; want products %d and 9 purged on both sides", rep, err, w.ID)
	}
}

// TestRetentionKeepsTheHighestIDs: the tombstone with the highest id of
// its parity is not purged, so a database rebuilt empty afterwards still
// finds that id in the other one and never hands it out again; once a
// higher id exists, it goes.
func TestRetentionKeepsTheHighestIDs(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	both := func(p domain.Product) { put(t, e.primary, p); put(t, e.fallback, p) }
	both(at(product(3, "odd", t0, true), 2, 0))
	both(at(product(5, "top odd", t0, true), 2, 0))
	both(at(product(4, "top even", t0, true), 0, 2))
	rep, err := engineAt(e, time.Minute, Options{TombstoneRetention: day}).RetentionPass(ctx)
	if err != nil || rep.Tombstones != 2 {
		t.Fatalf("first pass: %+v, %v; want product 3 purged from both, 4 and 5 kept", rep, err)
	}
	for _, id := range []int64{4, 5} {
		if top, _ := bothProducts(t, e, id); !top.Deleted() {
			t.Fatalf("product %d = %+v", id, top)
		}
	}
	both(at(product(7, "higher", t0, false), 1, 0))
	if rep, err := engineAt(e, time.Minute, Options{TombstoneRetention: day}).RetentionPass(ctx); err != nil || rep.Tombstones != 2 {
		t.Fatalf("second pass: %+v, %v; want product 5 purged from both", rep, err)
	}
}
