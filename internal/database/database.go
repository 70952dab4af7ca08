// Package database opens the store.DB adapter a URL's scheme names:
// postgres:// or postgresql:// (pgx) and sqlserver:// (go-mssqldb).
package database

import (
	"context"
	"net/url"
	"strings"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/mssql"
	"dualsync/internal/postgres"
	"dualsync/internal/store"
)

// Options tune the connection pool of either adapter; zero values take the
// adapter's defaults (connect timeout 2s, time.Now).
type Options struct {
	ConnectTimeout time.Duration
	Clock          domain.Clock
	MaxConns       int32
}

// Open returns the adapter for rawURL's scheme. It does not connect, so it
// returns at once even when the database is down; the first operation (or
// Ping) reports an unreachable database as KindUnavailable. Errors never
// contain the URL's password.
func Open(ctx context.Context, rawURL string, role store.Role, o Options) (store.DB, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, domain.Errorf(domain.KindInternal,
			"database URL has no scheme: expected postgres://, postgresql:// or sqlserver://")
	}
	if _, err := url.Parse(rawURL); err != nil {
		// url.Error would quote the whole URL, password included.
		return nil, domain.Errorf(domain.KindInternal, "database URL (%s://...) cannot be parsed", safeScheme(scheme))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		db, err := postgres.Open(ctx, rawURL, role, postgres.Options{ConnectTimeout: o.ConnectTimeout, Clock: o.Clock, MaxConns: o.MaxConns})
		if err != nil {
			return nil, err
		}
		return db, nil
	case "sqlserver":
		db, err := mssql.Open(ctx, rawURL, role, mssql.Options{ConnectTimeout: o.ConnectTimeout, Clock: o.Clock, MaxConns: o.MaxConns})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	return nil, domain.Errorf(domain.KindInternal,
		"database URL scheme %q is not supported: use postgres://, postgresql:// or sqlserver://", safeScheme(scheme))
}

// safeScheme keeps a garbled "scheme" (say, a URL without one whose text
// before "://" holds a password) out of error messages.
func safeScheme(s string) string {
	if len(s) > 20 || strings.ContainsAny(s, "@:/?#") {
		return "(unrecognised)"
	}
	return s
}
