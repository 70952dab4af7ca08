package syncer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/failover"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// Issue 28 finding 1: Y was created on the fallback during an outage
// (its primary entry 0) and synced; the primary was backed up; Y's price
// was PATCHed on the primary and synced; the primary was restored and the
// app restarted; Y's name PATCHed on it. The synced price must survive.
func TestRestoredPrimaryWhereTheRowsEntryWasZero(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	logs, log := capture()
	fo := e.restart(t, log)
	e.outage(t, fo)
	y := create(t, fo, "Y", "y", 1_00)
	if y.ID%2 != 0 {
		t.Fatalf("created on the fallback: %+v", y)
	}
	e.primaryProxy.Restore()
	fo = e.restart(t, log)
	e.syncAll(t)
	// Another row written on the primary: the databases' highest primary
	// entries agree, as the flow has it.
	create(t, fo, "Z", "", 5_00)
	e.syncAll(t)
	backup := testenv.TakeBackup(t, e.primaryURL)
	if _, err := fo.UpdateProduct(ctx, y.ID, domain.ProductChange{Price: ptr(domain.Money(42_00))}); err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	backup.Restore(t, e.primaryURL)
	fo = e.restart(t, log)
	if _, err := fo.UpdateProduct(ctx, y.ID, domain.ProductChange{Name: ptr("Y renamed")}); err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	p, _ := bothProducts(t, e, y.ID)
	if p.Price != 42_00 || p.Name != "Y renamed" {
		t.Fatalf("Y = %+v; want the synced price 42.00 and the new name", p)
	}
	wantRegressions(t, logs, store.RolePrimary)
}

// Issue 28 finding 2: one restore, two instances restarted after it, each
// PATCHing X before real-time sync ran. X's synced price must survive.
func TestRestoredPrimaryTwoInstances(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	logs, log := capture()
	fo := e.restart(t, log)
	x := create(t, fo, "X", "x", 1_00)
	e.syncAll(t)
	backup := testenv.TakeBackup(t, e.primaryURL)
	if _, err := fo.UpdateProduct(ctx, x.ID, domain.ProductChange{Price: ptr(domain.Money(42_00))}); err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	backup.Restore(t, e.primaryURL)
	fo1 := e.restart(t, log)
	fo2 := e.restart(t, log) // a second instance: a later start, a higher floor
	if _, err := fo1.UpdateProduct(ctx, x.ID, domain.ProductChange{Name: ptr("X by 1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := fo2.UpdateProduct(ctx, x.ID, domain.ProductChange{Description: ptr("by 2")}); err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	p, _ := bothProducts(t, e, x.ID)
	if p.Price != 42_00 || p.Name != "X by 1" || p.Description != "by 2" {
		t.Fatalf("X = %+v; want the synced price 42.00 and both instances' PATCHes", p)
	}
	wantRegressions(t, logs, store.RolePrimary)
}

// Issue 28 findings 4 and 5: neither a tombstone purged from one database
// only (a retention pass stopped half-way) nor a row edited by SQL behind
// the API is a restore: no database_regressed, no repair run. The edit is
// reported as a conflict that says the row changed outside the API.
func TestNoRestoreNoRegression(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	logs, log := capture()
	fo := e.restart(t, log)
	gone := create(t, fo, "gone", "", 1_00)
	edited := create(t, fo, "edited", "", 2_00)
	e.syncAll(t)
	if err := fo.DeleteProduct(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	e.syncAll(t)
	tomb, _ := bothProducts(t, e, gone.ID)
	purged, err := e.fallback.PurgeTombstones(ctx, domain.EntityProduct, []store.Tombstone{{ID: gone.ID, Ver: tomb.Ver}}, tomb.DeletedAt.Add(time.Second))
	if err != nil || len(purged) != 1 {
		t.Fatalf("purge on the fallback only: %v, %v", purged, err)
	}
	conn, err := pgx.Connect(ctx, e.fallbackURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE products SET name = 'edited by SQL' WHERE id = $1`, edited.ID); err != nil {
		t.Fatal(err)
	}

	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Mode: ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	runDiff(t, e)
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil || done.RuntimeStatus != RunCompleted {
		t.Fatalf("diff run %+v, %v", done, err)
	}
	if err := e.eng.CheckDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	wantRegressions(t, logs) // nothing was restored
	runs, err := e.rec.ListRuns(ctx, 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %+v (%v); want the diff run only, no repair run", runs, err)
	}
	var drift bool
	for _, r := range e.outcomes(t, domain.EntityProduct, edited.ID) {
		drift = drift || r.Status == StatusConflict && strings.Contains(r.Reason, "changed outside the API")
	}
	if !drift {
		t.Fatalf("outcomes of the edited row %+v; want a conflict saying it changed outside the API", e.outcomes(t, domain.EntityProduct, edited.ID))
	}
	for _, r := range e.outcomes(t, domain.EntityProduct, gone.ID) {
		if strings.Contains(r.Reason, "went back in time") {
			t.Fatalf("the half-purged tombstone's outcome %+v says a database went back in time", r)
		}
	}
	for _, db := range []store.DB{e.primary, e.fallback} {
		other := store.RolePrimary
		if db.Role() == store.RolePrimary {
			other = store.RoleFallback
		}
		if p, err := db.Peer(ctx, other); err != nil || p.Regressed() {
			t.Fatalf("the %s's record of the %s: %+v (%v); nothing regressed", db.Role(), other, p, err)
		}
	}
}

// capture returns a logger whose JSON records the buffer keeps.
func capture() (*logBuffer, *slog.Logger) {
	var logs logBuffer
	return &logs, slog.New(slog.NewJSONHandler(&logs, nil))
}

// create creates a product through fo.
func create(t *testing.T, fo *failover.Failover, name, desc string, price domain.Money) domain.Product {
	t.Helper()
	p, err := fo.CreateProduct(context.Background(), domain.ProductChange{Name: ptr(name), Description: ptr(desc), Price: ptr(price)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantRegressions checks the database_regressed records name exactly dbs,
// once each, at ERROR.
func wantRegressions(t *testing.T, logs *logBuffer, dbs ...store.Role) {
	t.Helper()
	recs := logs.records(t, event.DatabaseRegressed)
	var got []store.Role
	for _, r := range recs {
		if r["level"] != "ERROR" {
			t.Errorf("regression record at %v: %v", r["level"], r)
		}
		got = append(got, store.Role(fmt.Sprint(r["database"])))
	}
	if !slices.Equal(got, dbs) {
		t.Fatalf("regression records %v; want one for each of %v", recs, dbs)
	}
}
