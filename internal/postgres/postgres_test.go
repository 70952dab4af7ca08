package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"dualsync/internal/domain"
	"dualsync/internal/postgres"
	"dualsync/internal/store"
	"dualsync/internal/store/storetest"
	"dualsync/internal/testenv"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, role store.Role) store.DB {
		db, err := postgres.Open(context.Background(), testenv.CreateDatabase(t), role, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	})
}

// urlVia returns dbURL with its host replaced by addr.
func urlVia(t *testing.T, dbURL, addr string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

func wantUnavailable(t *testing.T, what string, err error, unreached bool) {
	t.Helper()
	if !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("%s: %v (kind %s), want unavailable", what, err, domain.ErrorKind(err))
	}
	if got := errors.Is(err, store.ErrUnreached); got != unreached {
		t.Fatalf("%s: errors.Is(err, ErrUnreached) = %v, want %v (%v)", what, got, unreached, err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.CreateDatabase(t)

	t.Run("closed port", func(t *testing.T) {
		// Open does not touch the network; every operation then fails as
		// unavailable and unreached, so failover may redo writes elsewhere.
		db, err := postgres.Open(ctx, urlVia(t, dbURL, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))), store.RolePrimary, postgres.Options{ConnectTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		wantUnavailable(t, "ping", db.Ping(ctx), true)
		_, err = db.CreateProduct(ctx, domain.ProductChange{Name: ptr("a"), Description: ptr(""), Price: ptr(domain.Money(1))})
		wantUnavailable(t, "create", err, true)
		_, err = db.ListUsers(ctx, store.Page{})
		wantUnavailable(t, "list", err, true)
		_, err = db.PutProduct(ctx, domain.Product{ID: 1, Name: "a", Price: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}, nil)
		wantUnavailable(t, "put", err, true)
		wantUnavailable(t, "migrate", db.Migrate(ctx), true)
	})

	t.Run("cut and restored", func(t *testing.T) {
		target, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		proxy := testenv.NewProxy(t, target.Host)
		db, err := postgres.Open(ctx, urlVia(t, dbURL, proxy.Addr()), store.RoleFallback, postgres.Options{ConnectTimeout: time.Second, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := db.CreateProduct(ctx, domain.ProductChange{Name: ptr("a"), Description: ptr(""), Price: ptr(domain.Money(1))})
		if err != nil {
			t.Fatal(err)
		}
		proxy.Cut()
		_, err = db.GetProduct(ctx, p.ID)
		if !domain.IsKind(err, domain.KindUnavailable) {
			t.Fatalf("get while cut: %v, want unavailable", err)
		}
		_, err = db.UpdateProduct(ctx, p.ID, domain.ProductChange{Name: ptr("b")})
		wantUnavailable(t, "update while cut", err, true)
		proxy.Restore()
		testenv.WaitFor(t, 10*time.Second, "the database through the restored proxy", func() bool { return db.Ping(ctx) == nil })
		got, err := db.GetProduct(ctx, p.ID)
		if err != nil || got.Name != "a" {
			t.Fatalf("after restore: %+v, %v (the failed update must not have applied)", got, err)
		}
	})
}

func TestMigrateRefusesOtherRole(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.CreateDatabase(t)
	prim, err := postgres.Open(ctx, dbURL, store.RolePrimary, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer prim.Close()
	if err := prim.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fb, err := postgres.Open(ctx, dbURL, store.RoleFallback, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	err = fb.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "other role") {
		t.Fatalf("migrating a primary database as fallback: %v, want a role error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		url  string
		role store.Role
	}{
		{"bad role", "postgres://u@127.0.0.1/db", store.Role("tertiary")},
		{"unparseable URL keeps the password out", "postgres://user:s3cret-pw@127.0.0.1:notaport/db", store.RolePrimary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := postgres.Open(context.Background(), tc.url, tc.role, postgres.Options{})
			if err == nil {
				db.Close()
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		kind      domain.Kind
		unreached bool
	}{
		{"email unique violation", &pgconn.PgError{Code: "23505", ConstraintName: "users_email_live"}, domain.KindConflict, false},
		{"string too long", &pgconn.PgError{Code: "22001"}, domain.KindInvalid, false},
		{"numeric overflow", &pgconn.PgError{Code: "22003"}, domain.KindInvalid, false},
		{"bad encoding", &pgconn.PgError{Code: "22021"}, domain.KindInvalid, false},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, domain.KindUnavailable, false},
		{"syntax error is ours", &pgconn.PgError{Code: "42601"}, domain.KindInternal, false},
		{"deadline", context.DeadlineExceeded, domain.KindUnavailable, false},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, domain.KindUnavailable, false},
		{"other", errors.New("boom"), domain.KindInternal, false},
		{"too many connections is busy", &pgconn.PgError{Code: "53300"}, domain.KindUnavailable, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := postgres.Classify(tc.err, false)
			if got := domain.ErrorKind(err); got != tc.kind {
				t.Fatalf("kind %s, want %s (%v)", got, tc.kind, err)
			}
			if errors.Is(err, store.ErrUnreached) != tc.unreached {
				t.Fatalf("unreached = %v, want %v", !tc.unreached, tc.unreached)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("the cause is lost: %v", err)
			}
			if pe, ok := tc.err.(*pgconn.PgError); errors.Is(err, store.ErrBusy) != (ok && pe.Code == "53300") {
				t.Fatalf("busy = %v: only 53300 (too_many_connections) is busy", errors.Is(err, store.ErrBusy))
			}
			if tc.kind == domain.KindUnavailable && !errors.Is(postgres.Classify(tc.err, true), store.ErrUnreached) {
				t.Fatal("a connection failure known to have changed nothing is not marked unreached")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// A database migrated before version vectors (001 only, with rows and
// pending outbox entries) gets them on Migrate: vectors 0/0 (1 on this
// side's entry for a row with a waiting change), every field changed at
// updated_at, email keys computed in Go, the outbox keyed by counter (the
// waiting entries 1), and the sequence past its own ids even when it
// was rewound (a restore from an older backup).
func TestMigrateExistingData(t *testing.T) {
	ctx := context.Background()
	raw := testenv.CreateDatabase(t)
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	body, err := os.ReadFile("migrations/001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	for _, sql := range []string{
		strings.ReplaceAll(string(body), "{{id_start}}", "1"),
		`CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
		 INSERT INTO schema_migrations (version) VALUES ('001_init')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO products (id, name, description, price, created_at, updated_at) VALUES (7, 'Old', 'd', 1.50, $1, $1)", []any{stamp}},
		{"INSERT INTO users (id, name, email, created_at, updated_at) VALUES (9, 'Ann', 'ＡＮＮ@Example.com', $1, $1)", []any{stamp}},
		{"INSERT INTO products (id, name, description, price, created_at, updated_at) VALUES (5, 'Synced', 'd', 2.50, $1, $1)", []any{stamp}},
		{"INSERT INTO outbox (entity, entity_id, version, created_at) VALUES ('product', 7, $1, $1)", []any{stamp}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db, err := postgres.Open(ctx, raw, store.RolePrimary, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Product 7's change still waited in the outbox: this side's entry
	// starts at 1, so that the other side's next write cannot dominate it.
	// Product 5 had nothing waiting: 0/0.
	if q, ok, err := db.LoadProduct(ctx, 5); err != nil || !ok || q.Ver != (domain.Vector{}) {
		t.Fatalf("migrated product without a waiting change %+v, %v %v", q, ok, err)
	}
	p, ok, err := db.LoadProduct(ctx, 7)
	if err != nil || !ok || p.Ver != (domain.Vector{P: 1}) || !p.NameAt.Equal(stamp) || !p.DescriptionAt.Equal(stamp) || !p.PriceAt.Equal(stamp) || p.Price != 150 {
		t.Fatalf("migrated product %+v, %v %v", p, ok, err)
	}
	u, _, err := db.LoadUser(ctx, 9)
	if err != nil || !u.EmailAt.Equal(stamp) || u.Email != "ＡＮＮ@Example.com" {
		t.Fatalf("migrated user %+v, %v", u, err)
	}
	if _, err := db.CreateUser(ctx, domain.UserChange{Name: ptr("B"), Email: ptr("ann@example.com")}); !domain.IsKind(err, domain.KindConflict) {
		t.Fatalf("the migrated email's key does not hold: %v", err)
	}
	pending, err := db.PendingOutbox(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour), 10)
	if err != nil || len(pending) != 1 || pending[0].Counter != 1 {
		t.Fatalf("migrated outbox %+v, %v", pending, err)
	}
	// The sequence never handed out 7 (the row was inserted directly), so
	// Migrate moved it past 7.
	n, err := db.CreateProduct(ctx, domain.ProductChange{Name: ptr("n"), Description: ptr(""), Price: ptr(domain.Money(1))})
	if err != nil || n.ID != 9 {
		t.Fatalf("create after migrating: %+v, %v; want id 9", n, err)
	}
	// A restore rewinds the sequence; Migrate (at start-up) moves it again.
	if _, err := conn.Exec(ctx, "ALTER SEQUENCE products_id_seq RESTART WITH 1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	n, err = db.CreateProduct(ctx, domain.ProductChange{Name: ptr("m"), Description: ptr(""), Price: ptr(domain.Money(1))})
	if err != nil || n.ID != 11 {
		t.Fatalf("create after a rewind and Migrate: %+v, %v; want id 11", n, err)
	}
}
