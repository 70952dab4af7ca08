package syncer

// Issue 25: databases that go back in time (a point-in-time restore, a
// rebuild from empty, an upgrade), each against real PostgreSQL in both
// roles, writes through the failover wrapper and the id guards as the
// handler makes them, and real queues and tables.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/failover"
	"dualsync/internal/ids"
	"dualsync/internal/store"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// restart is what a new handler process does: it opens both databases anew
// (a new floor for their vector entries), builds the engine, compares the
// databases (a repair run if one went back in time), and builds the API
// over id guards that have checked both databases once.
func (e *env) restart(t *testing.T, log *slog.Logger) *failover.Failover {
	t.Helper()
	time.Sleep(2 * time.Millisecond) // a later start: a higher floor
	e.primary = openDB(t, e.proxiedURL, store.RolePrimary)
	e.fallback = openDB(t, e.fallbackURL, store.RoleFallback)
	e.eng = New(e.primary, e.fallback, e.items, e.plans, e.rec, Options{Logger: log})
	gp, gf := ids.NewGuard(e.primary, e.fallback, ids.Options{}), ids.NewGuard(e.fallback, e.primary, ids.Options{})
	for _, g := range []*ids.Guard{gp, gf} {
		if err := g.Ensure(context.Background(), true); err != nil {
			t.Fatalf("start-up id check: %v", err)
		}
	}
	if err := e.eng.CheckDatabases(context.Background()); err != nil {
		t.Fatalf("start-up comparison of the databases: %v", err)
	}
	return failover.New(gp, gf, failover.Options{QueryTimeout: 3 * time.Second, Cooldown: time.Hour, OnChange: e.eng.Changed})
}

// fullRun starts a run of the entity and processes it to the end.
func (e *env) fullRun(t *testing.T, ent domain.Entity) RunStatus {
	t.Helper()
	ctx := context.Background()
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "test", Entity: ent})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	e.syncAll(t)
	got, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil || got.RuntimeStatus != RunCompleted {
		t.Fatalf("run %+v, %v", got, err)
	}
	return got
}

// outcomes lists the recorded outcomes of an item: today's real-time ones
// and those of every run (repair runs included).
func (e *env) outcomes(t *testing.T, ent domain.Entity, id int64) []table.Result {
	t.Helper()
	out := realtime(t, e, ent, id)
	runs, err := e.rec.ListRuns(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range runs {
		rs, _, err := e.rec.Results(context.Background(), run.ID, "", 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Entity == ent && r.ID == id {
				out = append(out, r)
			}
		}
	}
	return out
}

func hasRegression(rs []table.Result, db store.Role) bool {
	for _, r := range rs {
		if r.Status == StatusConflict && strings.Contains(r.Reason, "the "+string(db)+" database went back in time") {
			return true
		}
	}
	return false
}

// logBuffer collects the engine's JSON log records.
type logBuffer struct{ bytes.Buffer }

func (b *logBuffer) records(t *testing.T, event string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["event"] == event {
			out = append(out, r)
		}
	}
	return out
}

// The flow: X created and synced; the primary backed up; X renamed
// twice and B created, all synced to the fallback; the primary restored
// from the backup and the app restarted; X's price PATCHed to 777.00 and C
// created on the restored primary; a full run. Both databases must then
// hold X with the second rename and the new price, B as it was, and C as a
// product of its own; X's outcome is a conflict that says the primary went
// back in time, logged once.
func TestScenarioRestoredPrimary(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	fo := e.restart(t, log)
	x, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("X"), Description: ptr("x"), Price: ptr(domain.Money(1_00))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	backup := testenv.TakeBackup(t, e.primaryURL)
	for _, name := range []string{"X v2", "X v3"} {
		if _, err := fo.UpdateProduct(ctx, x.ID, domain.ProductChange{Name: ptr(name)}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("B"), Description: ptr("b"), Price: ptr(domain.Money(2_00))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	bothProducts(t, e, b.ID)

	backup.Restore(t, e.primaryURL)
	fo = e.restart(t, log)
	if got, err := fo.UpdateProduct(ctx, x.ID, domain.ProductChange{Price: ptr(domain.Money(777_00))}); err != nil || got.Price != 777_00 {
		t.Fatalf("PATCH on the restored primary: %+v, %v", got, err)
	}
	c, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("C"), Description: ptr("c"), Price: ptr(domain.Money(3_00))})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == b.ID || c.ID%2 != 1 {
		t.Fatalf("the restored primary gave C id %d; B has %d", c.ID, b.ID)
	}
	e.fullRun(t, domain.EntityProduct)

	px, _ := bothProducts(t, e, x.ID)
	if px.Name != "X v3" || px.Price != 777_00 || px.Description != "x" {
		t.Fatalf("X = %+v; want the rename the restore lost and the PATCH made after it", px)
	}
	pb, _ := bothProducts(t, e, b.ID)
	if pb.Name != "B" || pb.Price != 2_00 || pb.Deleted() {
		t.Fatalf("B = %+v; want it back on the restored primary as it was", pb)
	}
	pc, _ := bothProducts(t, e, c.ID)
	if pc.Name != "C" || pc.Price != 3_00 {
		t.Fatalf("C = %+v", pc)
	}
	wantEmptyOutboxes(t, e)
	if rs := e.outcomes(t, domain.EntityProduct, x.ID); !hasRegression(rs, store.RolePrimary) {
		t.Fatalf("X's outcomes %+v; want a conflict saying the primary went back in time", rs)
	}
	if rs := e.outcomes(t, domain.EntityProduct, b.ID); !hasRegression(rs, store.RolePrimary) {
		t.Fatalf("B's outcomes %+v; want a conflict saying the primary lost it", rs)
	}
	if rs := e.outcomes(t, domain.EntityProduct, c.ID); hasRegression(rs, store.RolePrimary) {
		t.Fatalf("C is new, not a regression: %+v", rs)
	}
	recs := logs.records(t, event.DatabaseRegressed)
	if len(recs) != 1 || recs[0]["database"] != "primary" || recs[0]["level"] != "ERROR" {
		t.Fatalf("regression log records %v; want one for the primary", recs)
	}
}

// Restored and then written several times before any sync (the queue
// down): the restored side's entry passes the other's copy numerically,
// but its jump shows it never had the writes in between.
func TestScenarioRestoredPrimaryWrittenManyTimes(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	fo := e.restart(t, nil)
	x, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("X"), Description: ptr("x"), Price: ptr(domain.Money(1_00))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	backup := testenv.TakeBackup(t, e.primaryURL)
	if _, err := fo.UpdateProduct(ctx, x.ID, domain.ProductChange{Name: ptr("lost rename")}); err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	backup.Restore(t, e.primaryURL)
	fo = e.restart(t, nil)
	for _, price := range []domain.Money{5_00, 6_00, 7_00, 8_00} {
		if _, err := fo.UpdateProduct(ctx, x.ID, domain.ProductChange{Price: ptr(price)}); err != nil {
			t.Fatal(err)
		}
	}
	e.syncAll(t)
	p, _ := bothProducts(t, e, x.ID)
	if p.Name != "lost rename" || p.Price != 8_00 {
		t.Fatalf("X = %+v; want the rename the restore lost and the last price", p)
	}
	if rs := realtime(t, e, domain.EntityProduct, x.ID); !hasRegression(rs, store.RolePrimary) {
		t.Fatalf("outcomes %+v; want the regression", rs)
	}
}

// The fallback rebuilt empty: its rows come back from the primary (lost
// there, so conflicts that say so), and its first create after the
// rebuild, made while the primary is cut, gets a new id; nothing merges two
// different products.
func TestScenarioRebuiltFallback(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	fo := e.restart(t, nil)
	e.outage(t, fo)
	var made []domain.Product
	for _, name := range []string{"F1", "F2"} {
		p, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr(name), Description: ptr(""), Price: ptr(domain.Money(1_00))})
		if err != nil || p.ID%2 != 0 {
			t.Fatalf("create on the fallback: %+v, %v", p, err)
		}
		made = append(made, p)
	}
	e.primaryProxy.Restore()
	e.syncAll(t)
	bothProducts(t, e, made[1].ID)

	testenv.Rebuild(t, e.fallbackURL)
	fo = e.restart(t, nil)
	e.outage(t, fo)
	n, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("new"), Description: ptr(""), Price: ptr(domain.Money(9_00))})
	if err != nil {
		t.Fatalf("create on the rebuilt fallback with the primary cut: %v", err)
	}
	for _, p := range made {
		if n.ID == p.ID {
			t.Fatalf("the rebuilt fallback reused id %d", n.ID)
		}
	}
	e.primaryProxy.Restore()
	e.fullRun(t, domain.EntityProduct)
	for _, p := range made {
		got, _ := bothProducts(t, e, p.ID)
		if got.Name != p.Name {
			t.Fatalf("product %d = %+v, want %q back", p.ID, got, p.Name)
		}
		if rs := e.outcomes(t, domain.EntityProduct, p.ID); !hasRegression(rs, store.RoleFallback) {
			t.Fatalf("product %d outcomes %+v; want a conflict saying the fallback lost it", p.ID, rs)
		}
	}
	if got, _ := bothProducts(t, e, n.ID); got.Name != "new" {
		t.Fatalf("new product = %+v", got)
	}
}

// A handler starting while the primary is down cannot check the fallback's
// ids against it: the fallback's creates take ids past the ceiling, which no
// row the primary holds can have.
func TestScenarioCreatesPastTheCeiling(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.primaryProxy.Cut()
	gp, gf := ids.NewGuard(e.primary, e.fallback, ids.Options{}), ids.NewGuard(e.fallback, e.primary, ids.Options{})
	fo := failover.New(gp, gf, failover.Options{QueryTimeout: 2 * time.Second, Cooldown: time.Hour})
	before := ids.Ceiling(time.Now())
	p, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("n"), Description: ptr(""), Price: ptr(domain.Money(1))})
	if err != nil {
		t.Fatalf("create with the fallback unchecked and the primary down: %v", err)
	}
	if p.ID%2 != 0 || p.ID <= before {
		t.Fatalf("created id %d; want an even id past the ceiling %d", p.ID, before)
	}
}

// Issue 25 item 4: a rename and a DELETE made on the fallback before the
// upgrade to version vectors, still waiting in its outbox, survive the
// primary's first PATCHes after the upgrade.
func TestScenarioUpgradeKeepsWaitingChanges(t *testing.T) {
	ctx := context.Background()
	body, err := os.ReadFile("../postgres/migrations/001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	later := stamp.Add(time.Hour)
	urls := map[store.Role]string{}
	for role, start := range map[store.Role]string{store.RolePrimary: "1", store.RoleFallback: "2"} {
		raw := testenv.CreateDatabase(t)
		urls[role] = raw
		conn, err := pgx.Connect(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		stmts := []string{
			strings.ReplaceAll(string(body), "{{id_start}}", start),
			`CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
			 INSERT INTO schema_migrations (version) VALUES ('001_init')`,
		}
		for _, sql := range stmts {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		// Products 1 and 3 were synced: the same rows on both sides.
		for _, id := range []int{1, 3} {
			if _, err := conn.Exec(ctx, "INSERT INTO products (id, name, description, price, created_at, updated_at) VALUES ($1, 'old', 'd', 1.00, $2, $2)", id, stamp); err != nil {
				t.Fatal(err)
			}
		}
		if role == store.RoleFallback {
			// During an outage the fallback renamed 1 and deleted 3; the
			// upgrade came before their sync.
			for _, sql := range []string{
				"UPDATE products SET name = 'renamed', updated_at = $1 WHERE id = 1",
				"UPDATE products SET deleted_at = $1, updated_at = $1 WHERE id = 3",
				"INSERT INTO outbox (entity, entity_id, version, created_at) VALUES ('product', 1, $1, $1), ('product', 3, $1, $1)",
			} {
				if _, err := conn.Exec(ctx, sql, later); err != nil {
					t.Fatal(err)
				}
			}
		}
		conn.Close(ctx)
	}
	e := newEnv(t, Options{})
	e.primary, e.fallback = openDB(t, urls[store.RolePrimary], store.RolePrimary), openDB(t, urls[store.RoleFallback], store.RoleFallback)
	e.eng = New(e.primary, e.fallback, e.items, e.plans, e.rec, Options{})
	// After the upgrade the primary serves again and PATCHes both rows.
	if _, err := e.primary.UpdateProduct(ctx, 1, domain.ProductChange{Price: ptr(domain.Money(9_99))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.primary.UpdateProduct(ctx, 3, domain.ProductChange{Name: ptr("edited")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, 3} {
		if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	p1, _ := bothProducts(t, e, 1)
	if p1.Name != "renamed" || p1.Price != 9_99 {
		t.Fatalf("product 1 = %+v; want the fallback's rename and the primary's price", p1)
	}
	if p3, _ := bothProducts(t, e, 3); !p3.Deleted() {
		t.Fatalf("product 3 = %+v; the fallback's delete was undone", p3)
	}
	wantEmptyOutboxes(t, e)
}

// flakyRecorder is the real table store whose next RecordRunResult and
// RecordRealtime fail once each, after the merge has written both
// databases: a Table Storage timeout, an instance recycled.
type flakyRecorder struct {
	*table.Store
	runFails, realtimeFails int
}

func (f *flakyRecorder) RecordRunResult(ctx context.Context, run string, r table.Result) (bool, error) {
	if f.runFails > 0 {
		f.runFails--
		return false, domain.Errorf(domain.KindUnavailable, "table storage timed out")
	}
	return f.Store.RecordRunResult(ctx, run, r)
}

func (f *flakyRecorder) RecordRealtime(ctx context.Context, rs ...table.Result) error {
	if f.realtimeFails > 0 {
		f.realtimeFails--
		return domain.Errorf(domain.KindUnavailable, "table storage timed out")
	}
	return f.Store.RecordRealtime(ctx, rs...)
}

// concurrentEdit leaves product x changed on both sides since they last
// agreed: its price on the primary, its name on the fallback.
func concurrentEdit(t *testing.T, e *env) domain.Product {
	t.Helper()
	ctx := context.Background()
	x, err := e.primary.CreateProduct(ctx, domain.ProductChange{Name: ptr("X"), Description: ptr(""), Price: ptr(domain.Money(1_00))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: x.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.primary.UpdateProduct(ctx, x.ID, domain.ProductChange{Price: ptr(domain.Money(2_00))}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fallback.UpdateProduct(ctx, x.ID, domain.ProductChange{Name: ptr("Y")}); err != nil {
		t.Fatal(err)
	}
	return x
}

// conflictRecordFails starts a full run over a product changed on both
// sides (its real-time messages dropped) and delivers the run's one item
// message once; the merge writes both databases, recording its outcome
// fails.
func conflictRecordFails(t *testing.T) (*env, domain.Product, RunStatus, []delivered[Message]) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, Options{})
	x := concurrentEdit(t, e)
	flaky := &flakyRecorder{Store: e.rec, runFails: 1}
	e.eng = New(e.primary, e.fallback, e.items, e.plans, flaky, Options{})
	for _, msg := range receive[Message](t, e.items) {
		deleteDelivered(t, e.items, msg)
	}
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	msgs := receive[Message](t, e.items)
	if len(msgs) != 1 {
		t.Fatalf("run messages %+v, want 1", msgs)
	}
	if err := e.eng.SyncDelivered(ctx, msgs[0].m, Delivery{DequeueCount: 1}); err == nil {
		t.Fatal("the first attempt's record did not fail")
	}
	return e, x, st, msgs
}

// Issue 25 item 5: the merge writes both databases, then recording its
// outcome fails; the redelivered message finds both sides equal. The
// recorded outcome must still be the conflict that changed the data, and
// the run's counts exact.
func TestRecordedOutcomeSurvivesARecordingFailure(t *testing.T) {
	ctx := context.Background()
	t.Run("run", func(t *testing.T) {
		e, x, st, msgs := conflictRecordFails(t)
		bothProducts(t, e, x.ID) // the merge wrote both before the record failed
		if err := e.eng.SyncDelivered(ctx, msgs[0].m, Delivery{DequeueCount: 2}); err != nil {
			t.Fatal(err)
		}
		deleteDelivered(t, e.items, msgs[0])
		got, err := e.eng.Status(ctx, st.InstanceID)
		if err != nil || got.RuntimeStatus != RunCompleted {
			t.Fatalf("run %+v, %v", got, err)
		}
		if c := got.CustomStatus.Counts; c[StatusConflict] != 1 || c[StatusUnchanged] != 0 || got.CustomStatus.Total != 1 {
			t.Fatalf("counts %v total %d; want the one conflict", c, got.CustomStatus.Total)
		}
		rs := e.outcomes(t, domain.EntityProduct, x.ID)
		if len(rs) == 0 || rs[len(rs)-1].Status != StatusConflict || !strings.Contains(rs[len(rs)-1].Detail, `"merged"`) {
			t.Fatalf("outcomes %+v; want the conflict with its detail", rs)
		}
	})
	// Issue 28 finding 3: before the redelivery, a later write of the item
	// synced in real time: both databases hold a descendant of the vector
	// the conflict was merged at. The run still counts the conflict.
	t.Run("run, a later write synced before the redelivery", func(t *testing.T) {
		e, x, st, msgs := conflictRecordFails(t)
		if _, err := e.primary.UpdateProduct(ctx, x.ID, domain.ProductChange{Description: ptr("later")}); err != nil {
			t.Fatal(err)
		}
		if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: x.ID}); err != nil {
			t.Fatal(err)
		}
		if err := e.eng.SyncDelivered(ctx, msgs[0].m, Delivery{DequeueCount: 2}); err != nil {
			t.Fatal(err)
		}
		deleteDelivered(t, e.items, msgs[0])
		got, err := e.eng.Status(ctx, st.InstanceID)
		if err != nil || got.RuntimeStatus != RunCompleted {
			t.Fatalf("run %+v, %v", got, err)
		}
		if c := got.CustomStatus.Counts; c[StatusConflict] != 1 || c[StatusUnchanged] != 0 {
			t.Fatalf("counts %v; want the one conflict", c)
		}
	})
	t.Run("real time", func(t *testing.T) {
		e := newEnv(t, Options{})
		x := concurrentEdit(t, e)
		flaky := &flakyRecorder{Store: e.rec, realtimeFails: 1}
		e.eng = New(e.primary, e.fallback, e.items, e.plans, flaky, Options{})
		m := Message{Entity: domain.EntityProduct, ID: x.ID}
		if err := e.eng.SyncDelivered(ctx, m, Delivery{DequeueCount: 1}); err == nil {
			t.Fatal("the first attempt's record did not fail")
		}
		if err := e.eng.SyncDelivered(ctx, m, Delivery{DequeueCount: 2}); err != nil {
			t.Fatal(err)
		}
		var conflict bool
		for _, r := range realtime(t, e, domain.EntityProduct, x.ID) {
			conflict = conflict || r.Status == StatusConflict
		}
		if !conflict {
			t.Fatalf("real-time outcomes %+v; want the conflict", realtime(t, e, domain.EntityProduct, x.ID))
		}
		if p, _ := bothProducts(t, e, x.ID); p.Name != "Y" || p.Price != 2_00 {
			t.Fatalf("X = %+v", p)
		}
	})
}

// A restored database that nobody writes: only the comparison of the two
// databases as wholes at start-up finds what it lost, and the repair run it
// starts brings it back. Databases in step start nothing.
func TestCheckDatabasesStartsARepairRun(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var logs logBuffer
	fo := e.restart(t, slog.New(slog.NewJSONHandler(&logs, nil)))
	x, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("X"), Description: ptr(""), Price: ptr(domain.Money(1_00))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	if err := e.eng.CheckDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	if runs, err := e.rec.ListRuns(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("databases in step started runs %+v (%v)", runs, err)
	}
	backup := testenv.TakeBackup(t, e.primaryURL)
	if err := fo.DeleteProduct(ctx, x.ID); err != nil {
		t.Fatal(err)
	}
	b, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr("B"), Description: ptr(""), Price: ptr(domain.Money(2_00))})
	if err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	backup.Restore(t, e.primaryURL)
	e.restart(t, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err := e.eng.CheckDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	runs, err := e.rec.ListRuns(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].Trigger != TriggerRepair || runs[1].Trigger != TriggerRepair || runs[0].Entity == runs[1].Entity {
		t.Fatalf("runs %+v (%v); want a repair run of each entity\n%s", runs, err, logs.String())
	}
	if recs := logs.records(t, event.DatabaseRegressed); len(recs) != 1 || recs[0]["database"] != "primary" {
		t.Fatalf("regression records %v", recs)
	}
	drainPlans(t, e)
	e.syncAll(t)
	if p, _ := bothProducts(t, e, x.ID); !p.Deleted() {
		t.Fatalf("X = %+v; the restore undid its delete", p)
	}
	if p, _ := bothProducts(t, e, b.ID); p.Name != "B" {
		t.Fatalf("B = %+v", p)
	}
	// A second check (another instance starting) starts no second run;
	// the repair runs having completed, it ends the regression, once.
	for range 2 {
		if err := e.eng.CheckDatabases(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if runs, _ := e.rec.ListRuns(ctx, 10); len(runs) != 2 {
		t.Fatalf("runs %+v; want still two", runs)
	}
	if recs := logs.records(t, event.DatabaseRepaired); len(recs) != 1 || recs[0]["database"] != "primary" {
		t.Fatalf("repaired records %v\n%s", recs, logs.String())
	}
	if p, err := e.fallback.Peer(ctx, store.RolePrimary); err != nil || p.Regressed() {
		t.Fatalf("the fallback's record of the primary: %+v (%v); want the regression ended", p, err)
	}
}
