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

// While the other database does not answer, nothing says which ids it
// holds: the first create moves this database's sequences past the ceiling,
// above any id it can have handed out, and goes on; updates pass as always.
// Once the other answers, the check runs and never moves a sequence back.
func TestCreatesGoPastTheCeilingWhileTheOtherIsDown(t *testing.T) {
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
	before := ids.Ceiling(time.Now())
	p, err := g.CreateProduct(ctx, product("past the ceiling"))
	if err != nil {
		t.Fatalf("create while the fallback is down: %v", err)
	}
	if p.ID <= before || p.ID%2 != 1 {
		t.Fatalf("created id %d; want an odd id past the ceiling %d", p.ID, before)
	}
	usr, err := g.CreateUser(ctx, domain.UserChange{Name: ptr("u"), Email: ptr("u@example.com")})
	if err != nil || usr.ID <= before {
		t.Fatalf("user %d (%v); want past the ceiling %d", usr.ID, err, before)
	}
	if g.Checked() {
		t.Fatal("checked against a database that does not answer")
	}
	if _, err := g.UpdateProduct(ctx, existing.ID, domain.ProductChange{Name: ptr("renamed")}); err != nil {
		t.Fatalf("updates need no check: %v", err)
	}
	proxy.Restore()
	if err := g.Ensure(ctx, true); err != nil || !g.Checked() {
		t.Fatalf("check once the fallback answers: %v, checked %v", err, g.Checked())
	}
	q, err := g.CreateProduct(ctx, product("later"))
	if err != nil || q.ID != p.ID+2 {
		t.Fatalf("create after the check: %+v, %v; want id %d (never back)", q, err, p.ID+2)
	}
}

// When neither database answers, a create is refused as unavailable with
// nothing written: busy, so that the failover wrapper tries the other
// database without opening its breaker.
func TestCreateRefusedWhenNothingAnswers(t *testing.T) {
	ctx := context.Background()
	raw := testenv.CreateDatabase(t)
	open(t, raw, store.RolePrimary)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	primary := open(t, u.String(), store.RolePrimary)
	fallback := open(t, testenv.CreateDatabase(t), store.RoleFallback)
	proxy.Cut()
	fallback.Close()
	g := ids.NewGuard(primary, fallback, ids.Options{})
	_, err = g.CreateProduct(ctx, product("refused"))
	if !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, ids.ErrUnchecked) || !errors.Is(err, store.ErrUnreached) || !errors.Is(err, store.ErrBusy) {
		t.Fatalf("create with nothing answering: %v; want unavailable, unchecked, unreached and busy", err)
	}
}

// The ceiling grows two ids a millisecond: above any id a day's creates at
// under 1,000 a second can reach.
func TestCeiling(t *testing.T) {
	a := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	if d := ids.Ceiling(a.Add(time.Second)) - ids.Ceiling(a); d != 2000 {
		t.Fatalf("ceiling grows %d a second, want 2000", d)
	}
	if c := ids.Ceiling(a); c < 1e11 || c > 1<<53 {
		t.Fatalf("ceiling %d out of range", c)
	}
}
