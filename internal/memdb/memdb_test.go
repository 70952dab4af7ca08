package memdb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/memdb"
	"dualsync/internal/store"
	"dualsync/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, role store.Role) store.DB {
		db := memdb.New(role).Open(time.Now)
		t.Cleanup(db.Close)
		return db
	})
}

func ptr[T any](v T) *T { return &v }

// clock is a fake clock: each reading is 1 ms after the last.
func clock(start time.Time) func() time.Time {
	t := start
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

func change(name string) domain.ProductChange {
	return domain.ProductChange{Name: ptr(name), Description: ptr(""), Price: ptr(domain.Money(1))}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	d := memdb.New(store.RolePrimary)
	db := d.Open(clock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	if _, err := db.ListProducts(ctx, store.Page{}); !domain.IsKind(err, domain.KindInternal) {
		t.Fatalf("list before Migrate: %v, want internal", err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var ops []string
	d.Fail = func(op string) error { ops = append(ops, op); return memdb.Unreached(op) }
	_, err := db.CreateProduct(ctx, change("a"))
	if !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, store.ErrUnreached) || len(ops) != 1 || ops[0] != "CreateProduct" {
		t.Fatalf("create while down: %v (ops %v)", err, ops)
	}
	d.Fail = nil
	if n, _ := db.OutboxDepth(ctx); n != 0 {
		t.Fatalf("a refused create wrote %d outbox rows", n)
	}
	p, err := db.CreateProduct(ctx, change("a"))
	if err != nil || p.ID != 1 {
		t.Fatalf("create after the fault: %+v %v, want id 1 (the sequence untouched)", p, err)
	}
	// FailAfter: the change is made, its answer lost.
	d.SetFaults(nil, memdb.Uncertain)
	_, err = db.UpdateProduct(ctx, p.ID, domain.ProductChange{Name: ptr("b")})
	if !domain.IsKind(err, domain.KindUnavailable) || errors.Is(err, store.ErrUnreached) {
		t.Fatalf("update with a lost answer: %v", err)
	}
	d.SetFaults(nil, nil)
	if got, _ := db.GetProduct(ctx, p.ID); got.Name != "b" {
		t.Fatalf("the update whose answer was lost did not apply: %+v", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Ping(cctx); !errors.Is(err, store.ErrUnreached) {
		t.Fatalf("ping with a done context: %v", err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := memdb.New(store.RoleFallback)
	db := d.Open(clock(t0))
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := db.CreateProduct(ctx, change("a"))
	backup := d.Snapshot()
	for range 3 {
		q, _ := db.UpdateProduct(ctx, p.ID, domain.ProductChange{Name: ptr("later")})
		p2, _ := db.CreateProduct(ctx, change("b"))
		_ = q
		_ = p2
	}
	d.Restore(backup)
	if got := backup.Products(); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("the snapshot changed: %+v", got)
	}
	if got, _ := db.ListProducts(ctx, store.Page{}); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("after restore: %+v", got)
	}
	if n, _ := db.OutboxDepth(ctx); n != 1 {
		t.Fatalf("outbox after restore: %d entries, want the create's", n)
	}
	// The sequence went back too: the next id is the one after the backup's.
	if q, _ := db.CreateProduct(ctx, change("c")); q.ID != p.ID+2 {
		t.Fatalf("create after restore: id %d, want %d", q.ID, p.ID+2)
	}
	// A process started after the restore jumps the row's entry to its floor.
	later := d.Open(clock(t0.Add(time.Hour)))
	u, err := later.UpdateProduct(ctx, p.ID, domain.ProductChange{Name: ptr("x")})
	if err != nil || u.Jump.From != p.Ver.F || u.Ver.F != domain.Floor(t0.Add(time.Hour+time.Millisecond)) {
		t.Fatalf("first write of a new process: %+v %v", u, err)
	}
	// Another role's backup: Migrate refuses its sequences.
	other := memdb.New(store.RolePrimary)
	if err := other.Open(nil).Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	d.Restore(other.Snapshot())
	if err := db.Migrate(ctx); !domain.IsKind(err, domain.KindInternal) {
		t.Fatalf("Migrate over the other role's sequences: %v", err)
	}
}

// TestPostgresDetails pins behaviours of PostgreSQL that the suite does not:
// varchar cuts excess trailing spaces, a failed insert still spends its id,
// and a joint put may chain email moves but not take a non-member's email.
func TestPostgresDetails(t *testing.T) {
	ctx := context.Background()
	d := memdb.New(store.RolePrimary)
	db := d.Open(clock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 255)
	p, err := db.CreateProduct(ctx, change(long+"   "))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetProduct(ctx, p.ID); got.Name != long {
		t.Fatalf("stored name has %d characters, want the 255 before the spaces", len(got.Name))
	}
	if _, err := db.CreateProduct(ctx, change(long+"x")); !domain.IsKind(err, domain.KindInvalid) {
		t.Fatalf("create with a name too long: %v", err)
	}
	if q, _ := db.CreateProduct(ctx, change("q")); q.ID != p.ID+4 {
		t.Fatalf("id after a failed create = %d, want %d (the failed one spent %d)", q.ID, p.ID+4, p.ID+2)
	}

	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	user := func(id int64, email string) domain.User {
		return domain.User{ID: id, Name: "u", Email: email, CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0}
	}
	for _, u := range []domain.User{user(10, "a@x"), user(12, "b@x"), user(14, "c@x")} {
		if _, err := db.PutUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	v := domain.Vector{}
	// 10 takes 12's email (12 moves on to a new one), 14 takes 10's old one.
	res, err := db.PutUsers(ctx, []store.UserPut{{User: user(10, "B@x"), Expect: &v}, {User: user(12, "d@x"), Expect: &v}, {User: user(14, "a@x"), Expect: &v}})
	if err != nil || len(res) != 3 {
		t.Fatalf("chained moves: %v %v", res, err)
	}
	// 10 cannot take 14's email while 14, outside the batch, keeps it.
	_, err = db.PutUsers(ctx, []store.UserPut{{User: user(10, "a@x"), Expect: &v}, {User: user(12, "e@x"), Expect: &v}})
	if !domain.IsKind(err, domain.KindConflict) {
		t.Fatalf("taking a non-member's email: %v, want Conflict", err)
	}
	for id, want := range map[int64]string{10: "B@x", 12: "d@x", 14: "a@x"} {
		if u, _, _ := db.LoadUser(ctx, id); u.Email != want {
			t.Fatalf("user %d has %q, want %q", id, u.Email, want)
		}
	}
}
