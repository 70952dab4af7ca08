// Package postgres is the PostgreSQL adapter of store.DB (pgx/v5, pgxpool),
// with its schema migrations embedded.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Options tune a connection pool; zero values take defaults.
type Options struct {
	ConnectTimeout time.Duration // per connection attempt; default 2s
	Clock          domain.Clock  // default time.Now
	MaxConns       int32         // default pgxpool's
}

// DefaultConnectTimeout bounds a connection attempt: without one pgx waits for
// the operating system (minutes), which would stall failover.
const DefaultConnectTimeout = 2 * time.Second

// DB is one PostgreSQL database in one role.
type DB struct {
	pool *pgxpool.Pool
	role store.Role
	now  domain.Clock
	// floor is the least value this process gives its own vector entry at
	// a row's first API write (domain.Vector.Next): its start time.
	floor int64
}

var _ store.DB = (*DB)(nil)

// Open configures a pool; it does not connect (pgxpool dials lazily), so it
// returns at once even when the database is down.
func Open(ctx context.Context, url string, role store.Role, o Options) (*DB, error) {
	if role != store.RolePrimary && role != store.RoleFallback {
		return nil, domain.Errorf(domain.KindInternal, "postgres: unknown role %q", role)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts passwords in parse errors only on a best-effort basis:
		// keep the cause (and the URL in it) out of the error.
		return nil, domain.Errorf(domain.KindInternal, "postgres: invalid database URL")
	}
	switch {
	case o.ConnectTimeout > 0:
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	case cfg.ConnConfig.ConnectTimeout == 0:
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, err, "postgres: configure pool")
	}
	now := o.Clock
	if now == nil {
		now = time.Now
	}
	return &DB{pool: pool, role: role, now: now, floor: domain.Floor(now())}, nil
}

func (db *DB) Role() store.Role { return db.role }
func (db *DB) Driver() string   { return "postgres" }
func (db *DB) Close()           { db.pool.Close() }

// Ping checks the database answers a trivial query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return classify(err, "ping", true)
	}
	return nil
}

func (db *DB) clock() time.Time { return domain.Millis(db.now()) }

// inTx runs fn in a transaction and commits. Failures before COMMIT was sent
// changed nothing (the server rolls back an unfinished transaction when the
// connection drops), so they are reported as unreached.
func (db *DB) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return classify(err, what, true)
	}
	if err := fn(tx); err != nil {
		// Roll back even if ctx is done, but never wait long on a dead link.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
		var de *domain.Error
		if errors.As(err, &de) {
			return err
		}
		return classify(err, what, true)
	}
	if err := tx.Commit(ctx); err != nil {
		// The COMMIT may or may not have reached the server.
		return classify(err, what, false)
	}
	return nil
}

// Classify gives err a domain kind; exported for tests of the mapping.
func Classify(err error, unreached bool) error { return classify(err, "operation", unreached) }

// classify gives err a domain kind. unreached says the operation certainly
// changed nothing if it failed for connection reasons; pgconn.SafeToRetry
// proves the same on its own.
func classify(err error, what string, unreached bool) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return classifyPg(pe, err, what, unreached)
	}
	if isConnectionError(err) {
		if unreached || pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", store.ErrUnreached, err)
		}
		return domain.Wrap(domain.KindUnavailable, err, "the database is unavailable")
	}
	return domain.Wrap(domain.KindInternal, err, "postgres: "+what+" failed")
}

func classifyPg(pe *pgconn.PgError, err error, what string, unreached bool) error {
	code := pe.Code
	switch {
	case code == "23505": // unique_violation: only users' email index can be hit by a client
		if pe.ConstraintName == "users_email_live" {
			return domain.Wrap(domain.KindConflict, err, "a user with this email already exists")
		}
		return domain.Wrap(domain.KindConflict, err, "the row conflicts with an existing one")
	case len(code) == 5 && code[:2] == "22", code == "23502", code == "23514":
		// data exceptions (too long, out of range, bad encoding) and
		// constraint checks: something a client sent, never a 500.
		return domain.Wrap(domain.KindInvalid, err, rejected(pe))
	case code == "53300": // too_many_connections: up, but at its connection limit
		if unreached || pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", store.ErrUnreached, err)
		}
		return domain.Wrap(domain.KindUnavailable, fmt.Errorf("%w: %w", store.ErrBusy, err), "the database is unavailable")
	case len(code) == 5 && (code[:2] == "08" || code[:2] == "53" || code[:2] == "57"):
		// connection exceptions, insufficient resources, shutdown,
		// cannot-connect-now, query canceled by timeout.
		if unreached || pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", store.ErrUnreached, err)
		}
		return domain.Wrap(domain.KindUnavailable, err, "the database is unavailable")
	}
	return domain.Wrap(domain.KindInternal, err, "postgres: "+what+" failed")
}

// isConnectionError reports failures of reaching or talking to the server,
// as opposed to errors the server returned.
func isConnectionError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, pgconn.ErrConnClosed),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	return false
}
