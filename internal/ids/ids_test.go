package ids_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/ids"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

func open(t *testing.T, raw string, role store.Role) store.DB {
	t.Helper()
	db, err := database.Open(context.Background(), raw, role, database.Options{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func ptr[T any](v T) *T { return &v }

func product(name string) domain.ProductChange {
	return domain.ProductChange{Name: ptr(name), Description: ptr(""), Price: ptr(domain.Money(1))}
}

// copyTo writes p into db as sync would.
func copyTo(t *testing.T, db store.DB, p domain.Product) {
	t.Helper()
	if _, err := db.PutProduct(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
}

// A rebuilt primary (empty, its sequence back at the start) whose old rows
// the fallback still holds: its first create gets a new id, never one of
// those, even before sync has brought them back.
func TestRebuiltDatabaseNeverReusesAnID(t *testing.T) {
	ctx := context.Background()
	rawP := testenv.CreateDatabase(t)
	primary, fallback := open(t, rawP, store.RolePrimary), open(t, testenv.CreateDatabase(t), store.RoleFallback)
	var last domain.Product
	for _, name := range []string{"a", "b", "c"} {
		p, err := primary.CreateProduct(ctx, product(name))
		if err != nil {
			t.Fatal(err)
		}
		copyTo(t, fallback, p)
		last = p
	}
	u, err := primary.CreateUser(ctx, domain.UserChange{Name: ptr("u"), Email: ptr("u@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fallback.PutUser(ctx, u, nil); err != nil {
		t.Fatal(err)
	}
	testenv.Rebuild(t, rawP)

	g := ids.NewGuard(primary, fallback, ids.Options{})
	p, err := g.CreateProduct(ctx, product("new"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID <= last.ID || p.ID%2 != 1 {
		t.Fatalf("the rebuilt primary handed out id %d; the fallback holds %d", p.ID, last.ID)
	}
	nu, err := g.CreateUser(ctx, domain.UserChange{Name: ptr("v"), Email: ptr("v@example.com")})
	if err != nil || nu.ID <= u.ID {
		t.Fatalf("user created with id %d (%v); the fallback holds user %d", nu.ID, err, u.ID)
	}
	// Without the guard the rebuilt sequence would have handed out 1: the
	// check is what moved it.
	if !g.Checked() {
		t.Fatal("guard not checked after a create")
	}
}

// While the other database does not answer, creates are refused as
// unavailable (nothing written, the breaker left alone), updates pass; once
// it answers, the check runs and creates open.
func TestCreatesWaitForTheOtherDatabase(t *testing.T) {
	ctx := context.Background()
	rawF := testenv.CreateDatabase(t)
	open(t, rawF, store.RoleFallback)
	u, err := url.Parse(rawF)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	fallback := open(t, u.String(), store.RoleFallback)
	primary := open(t, testenv.CreateDatabase(t), store.RolePrimary)
	existing, err := primary.CreateProduct(ctx, product("old"))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	g := ids.NewGuard(primary, fallback, ids.Options{Retry: 10 * time.Millisecond})
	_, err = g.CreateProduct(ctx, product("refused"))
	if !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, ids.ErrUnchecked) || !errors.Is(err, store.ErrUnreached) || !errors.Is(err, store.ErrBusy) {
		t.Fatalf("create while the fallback is down: %v; want unavailable, unchecked, unreached and busy", err)
	}
	if rows, err := primary.ListProducts(ctx, store.Page{Limit: 10}); err != nil || len(rows) != 1 {
		t.Fatalf("a refused create wrote something: %+v, %v", rows, err)
	}
	if _, err := g.UpdateProduct(ctx, existing.ID, domain.ProductChange{Name: ptr("renamed")}); err != nil {
		t.Fatalf("updates need no check: %v", err)
	}
	proxy.Restore()
	time.Sleep(20 * time.Millisecond) // past Retry
	p, err := g.CreateProduct(ctx, product("later"))
	if err != nil || p.ID <= existing.ID {
		t.Fatalf("create once the fallback answers: %+v, %v", p, err)
	}
}
