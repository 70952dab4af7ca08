package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

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
			if tc.kind == domain.KindUnavailable && !errors.Is(postgres.Classify(tc.err, true), store.ErrUnreached) {
				t.Fatal("a connection failure known to have changed nothing is not marked unreached")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
