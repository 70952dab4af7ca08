package database_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

func TestOpenPostgres(t *testing.T) {
	ctx := context.Background()
	pgURL := testenv.CreateDatabase(t)
	for _, u := range []string{pgURL, strings.Replace(pgURL, "postgres://", "postgresql://", 1)} {
		db, err := database.Open(ctx, u, store.RoleFallback, database.Options{})
		if err != nil {
			t.Fatalf("open %s: %v", strings.SplitN(u, ":", 2)[0], err)
		}
		if db.Driver() != "postgres" || db.Role() != store.RoleFallback {
			t.Fatalf("driver %q role %q", db.Driver(), db.Role())
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		name, price := "a", domain.Money(150)
		p, err := db.CreateProduct(ctx, domain.ProductChange{Name: &name, Description: &name, Price: &price})
		if err != nil || p.ID%2 != 0 {
			t.Fatalf("create: %+v, %v", p, err)
		}
		db.Close()
	}
}

func TestOpenSQLServerClosedPort(t *testing.T) {
	ctx := context.Background()
	u := fmt.Sprintf("sqlserver://sa:Secr3t-pw@127.0.0.1:%d?database=dualsync", testenv.FreePort(t))
	db, err := database.Open(ctx, u, store.RolePrimary, database.Options{})
	if err != nil {
		t.Fatalf("open must not touch the network: %v", err)
	}
	defer db.Close()
	if db.Driver() != "sqlserver" || db.Role() != store.RolePrimary {
		t.Fatalf("driver %q role %q", db.Driver(), db.Role())
	}
	err = db.Ping(ctx)
	if !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, store.ErrUnreached) {
		t.Fatalf("ping a closed port: %v, want unavailable and unreached", err)
	}
	if strings.Contains(err.Error(), "Secr3t") {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = db.ListProducts(ctx, store.Page{})
	if !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("list: %v, want unavailable", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"unknown scheme", "mysql://root:Secr3t-pw@127.0.0.1/db", `"mysql"`},
		{"no scheme", "Secr3t-pw@127.0.0.1/db", "no scheme"},
		{"empty", "", "no scheme"},
		{"unparseable", "postgres://u:Secr3t-pw@127.0.0.1:port/db\x7f", "cannot be parsed"},
		{"sqlserver without host", "sqlserver://", "sqlserver"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := database.Open(context.Background(), tc.url, store.RolePrimary, database.Options{})
			if err == nil {
				db.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Secr3t") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}
