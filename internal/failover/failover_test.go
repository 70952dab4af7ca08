package failover_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/failover"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

func open(t *testing.T, raw string, role store.Role, migrate bool) store.DB {
	t.Helper()
	db, err := database.Open(context.Background(), raw, role, database.Options{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if migrate {
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func ptr[T any](v T) *T { return &v }

func change(name string) domain.ProductChange {
	return domain.ProductChange{Name: ptr(name), Description: ptr(""), Price: ptr(domain.Money(100))}
}

func TestUnreachablePrimary(t *testing.T) {
	ctx := context.Background()
	primary := open(t, fmt.Sprintf("sqlserver://sa:x@127.0.0.1:%d?database=x", testenv.FreePort(t)), store.RolePrimary, false)
	fallback := open(t, testenv.CreateDatabase(t), store.RoleFallback, true)
	f := failover.New(primary, fallback, failover.Options{QueryTimeout: 5 * time.Second, Cooldown: time.Hour})

	p, err := f.CreateProduct(ctx, change("a"))
	if err != nil || p.ID%2 != 0 {
		t.Fatalf("create = %+v, %v", p, err)
	}
	if _, err := f.GetProduct(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if p2, err := f.UpdateProduct(ctx, p.ID, domain.ProductChange{Name: ptr("b")}); err != nil || p2.Name != "b" {
		t.Fatalf("update = %+v, %v", p2, err)
	}
	u, err := f.CreateUser(ctx, domain.UserChange{Name: ptr("u"), Email: ptr("u@example.com")})
	if err != nil || u.ID%2 != 0 {
		t.Fatalf("create user = %+v, %v", u, err)
	}
	if err := f.DeleteProduct(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.GetProduct(ctx, p.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	h := f.Health(ctx)
	if h.Serving != "fallback" || h.Status != "degraded" || h.Breaker != "open" ||
		h.Databases["primary"].Reachable || h.Databases["primary"].Error == "" || !h.Databases["fallback"].Reachable ||
		h.Databases["primary"].Driver != "sqlserver" {
		t.Fatalf("health = %+v", h)
	}
}

func TestCutAndFailback(t *testing.T) {
	ctx := context.Background()
	pgURL := testenv.CreateDatabase(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	// Migrate directly, then route the primary through the cuttable proxy.
	open(t, pgURL, store.RolePrimary, true)
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	primary := open(t, u.String(), store.RolePrimary, false)
	fallback := open(t, testenv.CreateDatabase(t), store.RoleFallback, true)
	logs := &testenv.Logs{}
	f := failover.New(primary, fallback, failover.Options{QueryTimeout: 3 * time.Second, Cooldown: 200 * time.Millisecond, Logger: logs.Logger()})

	p, err := f.CreateProduct(ctx, change("on primary"))
	if err != nil || p.ID%2 != 1 {
		t.Fatalf("create = %+v, %v", p, err)
	}
	if h := f.Health(ctx); h.Status != "ok" || h.Serving != "primary" || h.LastFailover != "" || h.LastFailback != "" {
		t.Fatalf("health = %+v", h)
	}

	proxy.Cut()
	var q domain.Product
	testenv.WaitFor(t, 30*time.Second, "a write to succeed on the fallback", func() bool {
		q, err = f.CreateProduct(ctx, change("on fallback"))
		return err == nil
	})
	if q.ID%2 != 0 {
		t.Fatalf("fallback id %d is odd", q.ID)
	}
	if got, err := f.GetProduct(ctx, q.ID); err != nil || got.Name != "on fallback" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if h := f.Health(ctx); h.Serving != "fallback" || h.Status != "degraded" || h.Databases["fallback"].OutboxDepth == nil || *h.Databases["fallback"].OutboxDepth == 0 || h.LastFailover == "" {
		t.Fatalf("health = %+v", h)
	}
	// One outage, one breaker_opened, however many calls failed over.
	if recs := logs.Events(event.BreakerOpened); len(recs) != 1 || recs[0]["database"] != "primary" || recs[0]["reason"] == nil {
		t.Fatalf("breaker_opened records = %v, want one naming the primary and why", recs)
	}
	// The fallback's oldest waiting change ages until sync acknowledges it.
	time.Sleep(1100 * time.Millisecond)
	if h := f.Health(ctx); h.Databases["fallback"].OutboxOldestAgeSeconds < 1 || h.Databases["primary"].OutboxOldestAgeSeconds != 0 {
		t.Fatalf("outbox ages = %+v, want the fallback's >= 1 s", h.Databases)
	}

	proxy.Restore()
	// Primary answers but the fallback's outbox is not drained: keep serving from it.
	testenv.WaitFor(t, 30*time.Second, "the breaker to drain", func() bool {
		_, _ = f.ListProducts(ctx, store.Page{Limit: 10})
		return f.State() == failover.BreakerDraining
	})
	if _, err := f.GetProduct(ctx, q.ID); err != nil {
		t.Fatalf("still serving from fallback: %v", err)
	}

	// No sync engine yet: acknowledge the fallback's outbox by hand.
	pending, err := fallback.PendingOutbox(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour), 100)
	if err != nil || len(pending) == 0 {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	for _, e := range pending {
		if err := fallback.AckOutbox(ctx, e.Entity, []store.OutboxMark{{ID: e.ID, UpTo: e.Counter}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 30*time.Second, "failback to the primary", func() bool {
		_, _ = f.ListProducts(ctx, store.Page{Limit: 10})
		return f.State() == failover.BreakerClosed
	})
	r, err := f.CreateProduct(ctx, change("back on primary"))
	if err != nil || r.ID%2 != 1 {
		t.Fatalf("create after failback = %+v, %v", r, err)
	}
	h := f.Health(ctx)
	if h.Status != "ok" || h.Serving != "primary" || h.LastFailback == "" || h.LastFailback < h.LastFailover ||
		h.Databases["fallback"].OutboxOldestAgeSeconds != 0 {
		t.Fatalf("health = %+v", h)
	}
	if recs := logs.Events(event.FailbackDone); len(recs) != 1 || recs[0]["outageSeconds"] == nil {
		t.Fatalf("failback_done records = %v, want one with the outage's length", recs)
	}
	if n := len(logs.Events(event.BreakerOpened)); n != 1 {
		t.Fatalf("%d breaker_opened records, want 1", n)
	}
}

// proxied opens a migrated database reachable only through a cuttable proxy.
func proxied(t *testing.T, role store.Role) (store.DB, *testenv.Proxy) {
	t.Helper()
	raw := testenv.CreateDatabase(t)
	open(t, raw, role, true)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	return open(t, u.String(), role, false), proxy
}

// While the breaker is open or draining, a fallback that goes down too must
// not take the API down when the primary answers again.
func TestFallbackDownWhileDraining(t *testing.T) {
	ctx := context.Background()
	primary, pp := proxied(t, store.RolePrimary)
	fallback, fp := proxied(t, store.RoleFallback)
	type changed struct {
		role store.Role
		id   int64
	}
	var changes []changed
	f := failover.New(primary, fallback, failover.Options{
		QueryTimeout: 3 * time.Second, Cooldown: 100 * time.Millisecond,
		OnChange: func(_ context.Context, db store.DB, _ domain.Entity, id int64, _ int64) {
			changes = append(changes, changed{db.Role(), id})
		},
	})
	pp.Cut()
	onFallback, err := f.CreateProduct(ctx, change("during the outage"))
	if err != nil || onFallback.ID%2 != 0 {
		t.Fatalf("create on the fallback = %+v, %v", onFallback, err)
	}
	pp.Restore()
	testenv.WaitFor(t, 30*time.Second, "the breaker to drain", func() bool {
		_, _ = f.ListProducts(ctx, store.Page{Limit: 1})
		return f.State() == failover.BreakerDraining
	})
	fp.Cut()
	onPrimary, err := f.CreateProduct(ctx, change("fallback down too"))
	if err != nil || onPrimary.ID%2 != 1 {
		t.Fatalf("create with the fallback down = %+v, %v; want it on the primary", onPrimary, err)
	}
	if _, err := f.GetProduct(ctx, onPrimary.ID); err != nil {
		t.Errorf("read with the fallback down: %v", err)
	}
	want := []changed{{store.RoleFallback, onFallback.ID}, {store.RolePrimary, onPrimary.ID}}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Errorf("OnChange calls = %v, want %v", changes, want)
	}
}

// A primary at its connection limit is busy, not down: PostgreSQL refuses a
// role over its CONNECTION LIMIT with 53300 (too_many_connections), as Azure
// SQL refuses work over its limits with 10928. The call is served by the
// fallback, but the breaker stays closed: load alone never fails over.
func TestBusyPrimaryKeepsBreakerClosed(t *testing.T) {
	ctx := context.Background()
	pgURL := testenv.CreateDatabase(t)
	admin, err := pgx.Connect(ctx, testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := "dualsync_busy_" + testenv.RandomHex(4)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	primary := open(t, u.String(), store.RolePrimary, false)
	fallback := open(t, testenv.CreateDatabase(t), store.RoleFallback, true)
	f := failover.New(primary, fallback, failover.Options{QueryTimeout: 5 * time.Second, Cooldown: time.Hour})

	if err := primary.Ping(ctx); !errors.Is(err, store.ErrBusy) || !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("primary over its connection limit: %v, want unavailable and busy", err)
	}
	p, err := f.CreateProduct(ctx, change("a"))
	if err != nil || p.ID%2 != 0 {
		t.Fatalf("create = %+v, %v; want it on the fallback (even id)", p, err)
	}
	if s := f.State(); s != failover.BreakerClosed {
		t.Fatalf("breaker %s after a busy primary, want closed", s)
	}
}

// A primary that answers but holds a row lock past QueryTimeout is slow, not
// down: the write fails (503) and is not redone on the fallback, and the
// breaker stays closed (issue 15: a lock wait counted as "unreached" split
// writes between the databases).
func TestLockWaitIsNotAnOutage(t *testing.T) {
	ctx := context.Background()
	raw := testenv.CreateDatabase(t)
	primary := open(t, raw, store.RolePrimary, true)
	fallback := open(t, testenv.CreateDatabase(t), store.RoleFallback, true)
	var changes int
	f := failover.New(primary, fallback, failover.Options{QueryTimeout: 500 * time.Millisecond, Cooldown: time.Hour,
		OnChange: func(context.Context, store.DB, domain.Entity, int64, int64) { changes++ }})
	p, err := f.CreateProduct(ctx, change("a"))
	if err != nil {
		t.Fatal(err)
	}
	// Another session holds the row's lock.
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT 1 FROM products WHERE id = $1 FOR UPDATE", p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.UpdateProduct(ctx, p.ID, domain.ProductChange{Name: ptr("b")})
	if !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("update under a held lock: %v, want unavailable", err)
	}
	if st := f.State(); st != failover.BreakerClosed {
		t.Errorf("breaker %s after a lock wait, want closed", st)
	}
	if d, _ := fallback.OutboxDepth(ctx); d != 0 || changes != 1 {
		t.Errorf("fallback outbox depth %d, changes %d: the write was redone elsewhere", d, changes)
	}
	if ids, _ := fallback.IDs(ctx, domain.EntityProduct, 0, 10); len(ids) != 0 {
		t.Errorf("fallback holds %v", ids)
	}
}

// gatedDB is a real database whose CreateProduct waits for a signal before
// it starts, to hold a write in flight at a chosen moment.
type gatedDB struct {
	store.DB
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedDB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.DB.CreateProduct(ctx, c)
}

// The failback probe must not close the breaker while a write it admitted
// to the fallback is still in flight: that write's outbox entry would be
// missed and reads on the primary would not see it (issue 15, item 1).
func TestProbeWaitsForFallbackWrites(t *testing.T) {
	ctx := context.Background()
	primary, pp := proxied(t, store.RolePrimary)
	fb := &gatedDB{DB: open(t, testenv.CreateDatabase(t), store.RoleFallback, true), entered: make(chan struct{}), gate: make(chan struct{})}
	f := failover.New(primary, fb, failover.Options{QueryTimeout: 3 * time.Second, Cooldown: 50 * time.Millisecond})
	pp.Cut()
	if _, err := f.ListProducts(ctx, store.Page{}); err != nil {
		t.Fatal(err) // opens the breaker, served by the fallback
	}
	if f.State() != failover.BreakerOpen {
		t.Fatalf("breaker %s, want open", f.State())
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.CreateProduct(ctx, change("in flight"))
		done <- err
	}()
	<-fb.entered // the write is admitted to the fallback, not yet committed
	pp.Restore()
	time.Sleep(100 * time.Millisecond) // past Cooldown: the next call probes
	if _, err := f.ListProducts(ctx, store.Page{}); err != nil {
		t.Fatal(err)
	}
	if st := f.State(); st == failover.BreakerClosed {
		t.Fatalf("the probe closed the breaker with a fallback write in flight")
	}
	close(fb.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the next probe to see the write in the outbox", func() bool {
		_, _ = f.ListProducts(ctx, store.Page{})
		st := f.State()
		if st == failover.BreakerClosed {
			t.Fatalf("breaker closed with the write in the fallback's outbox")
		}
		return st == failover.BreakerDraining
	})
}

// Failback never waits for API traffic: with no request at all, a watched
// breaker closes once the primary answers again, and so does one whose
// health alone is polled (the dashboard's only call). While the primary is
// down its outbox depth is unknown (null), not 0.
func TestFailbackWithoutTraffic(t *testing.T) {
	for _, tc := range []struct {
		name string
		poke func(ctx context.Context, f *failover.Failover) // what happens besides waiting
	}{
		{"background watch", func(context.Context, *failover.Failover) {}},
		{"health polled", func(ctx context.Context, f *failover.Failover) { f.Health(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			primary, pp := proxied(t, store.RolePrimary)
			fallback := open(t, testenv.CreateDatabase(t), store.RoleFallback, true)
			f := failover.New(primary, fallback, failover.Options{QueryTimeout: 2 * time.Second, Cooldown: 100 * time.Millisecond})
			pp.Cut()
			h := f.Health(ctx) // opens the breaker
			if h.Breaker != failover.BreakerOpen || h.Databases["primary"].OutboxDepth != nil || h.Databases["fallback"].OutboxDepth == nil {
				t.Fatalf("health with the primary down = %+v, want an open breaker and the primary's depth unknown", h)
			}
			if js, _ := json.Marshal(h.Databases["primary"]); !strings.Contains(string(js), `"outboxDepth":null`) {
				t.Errorf("primary health JSON %s, want outboxDepth null", js)
			}
			if tc.name == "background watch" {
				go f.Watch(ctx)
			}
			pp.Restore()
			testenv.WaitFor(t, 15*time.Second, "failback with no API request", func() bool {
				tc.poke(ctx, f)
				return f.State() == failover.BreakerClosed
			})
		})
	}
}
