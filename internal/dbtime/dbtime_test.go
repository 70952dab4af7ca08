package dbtime_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"dualsync/internal/database"
	"dualsync/internal/dbtime"
	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T) store.DB {
	t.Helper()
	db, err := database.Open(context.Background(), testenv.CreateDatabase(t), store.RolePrimary, database.Options{ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// Against real PostgreSQL: with a threshold no call beats, every call is
// slow; one record per operation per interval, counting the calls between.
func TestSlowCallsLoggedOncePerInterval(t *testing.T) {
	ctx := context.Background()
	logs := &testenv.Logs{}
	now := time.Now()
	w := dbtime.Wrap(open(t), dbtime.Options{Threshold: time.Nanosecond, Every: time.Minute, Logger: logs.Logger(),
		Clock: func() time.Time { return now }})
	p, err := w.CreateProduct(ctx, domain.ProductChange{Name: new("cup"), Price: new(domain.Money(100))})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.GetProduct(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	recs := logs.Events(event.DBCallSlow)
	if len(recs) != 2 {
		t.Fatalf("%d db_call_slow records, want 2 (CreateProduct, GetProduct once):\n%s", len(recs), logs.String())
	}
	get := recs[1]
	for k, v := range map[string]any{"op": "GetProduct", "database": "primary", "driver": "postgres", "slowCalls": 1, "level": "WARN"} {
		if fmt.Sprint(get[k]) != fmt.Sprint(v) {
			t.Errorf("record %v: %s = %v, want %v", get, k, get[k], v)
		}
	}
	now = now.Add(time.Minute)
	if _, err := w.GetProduct(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	recs = logs.Events(event.DBCallSlow)
	if len(recs) != 3 || fmt.Sprint(recs[2]["slowCalls"]) != "3" {
		t.Fatalf("after the interval: %v, want a third record counting 3 slow calls (2 held back)", recs)
	}
}

// Calls under the threshold log nothing.
func TestFastCallsLogNothing(t *testing.T) {
	logs := &testenv.Logs{}
	w := dbtime.Wrap(open(t), dbtime.Options{Threshold: time.Hour, Logger: logs.Logger()})
	if _, err := w.ListProducts(context.Background(), store.Page{Limit: 10}); err != nil {
		t.Fatal(err)
	}
	if err := w.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs := logs.Events(event.DBCallSlow); len(recs) != 0 {
		t.Fatalf("fast calls logged %v", recs)
	}
}

// A database that cannot be reached is an outage (the breaker's event),
// not a slow database: however long the failed call took, nothing here.
func TestUnreachedCallsAreNotSlow(t *testing.T) {
	logs := &testenv.Logs{}
	raw := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable", testenv.FreePort(t))
	db, err := database.Open(context.Background(), raw, store.RolePrimary, database.Options{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	w := dbtime.Wrap(db, dbtime.Options{Threshold: time.Nanosecond, Logger: logs.Logger()})
	if _, err := w.GetProduct(context.Background(), 1); !errors.Is(err, store.ErrUnreached) {
		t.Fatalf("GetProduct on a closed port: %v, want ErrUnreached", err)
	}
	if recs := logs.Events(event.DBCallSlow); len(recs) != 0 {
		t.Fatalf("an unreached call logged %v", recs)
	}
}
