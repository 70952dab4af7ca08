// Package mssql is the SQL Server adapter of store.DB (microsoft/go-mssqldb
// through database/sql, T-SQL), with its schema migrations embedded.
package mssql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	mssqldb "github.com/microsoft/go-mssqldb"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Options tune the connection pool; zero values take defaults.
type Options struct {
	ConnectTimeout time.Duration // per connection attempt; default 2s
	Clock          domain.Clock  // default time.Now
	MaxConns       int32         // open (and idle) connections; default DefaultMaxConns
	// TokenTimeout bounds getting an Entra token (fedauth=... URLs) when
	// none is cached, apart from ConnectTimeout; default DefaultTokenTimeout.
	TokenTimeout time.Duration
	// Credential replaces the credential the URL's fedauth names (tests).
	Credential azcore.TokenCredential
}

// DefaultConnectTimeout bounds a connection attempt: go-mssqldb otherwise
// dials for 15 s and logs in without a limit, which would stall failover.
const DefaultConnectTimeout = 2 * time.Second

// DefaultMaxConns caps the pool: database/sql's default is no cap, and above
// the database's limits (Azure SQL Basic: 30 concurrent requests) the server
// refuses work with error 10928.
const DefaultMaxConns = 10

// DB is one SQL Server database in one role.
type DB struct {
	db   *sql.DB
	role store.Role
	now  domain.Clock
	// floor is the least value this process gives its own vector entry at
	// a row's first API write (domain.Vector.Next): its start time.
	floor int64
}

var _ store.DB = (*DB)(nil)

// Open configures a connection pool; it does not connect (database/sql dials
// lazily), so it returns at once even when the server is down.
func Open(ctx context.Context, rawURL string, role store.Role, o Options) (*DB, error) {
	if role != store.RolePrimary && role != store.RoleFallback {
		return nil, domain.Errorf(domain.KindInternal, "sqlserver: unknown role %q", role)
	}
	dsn, err := ConnectURL(rawURL, o.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, domain.Errorf(domain.KindInternal, "sqlserver: invalid database URL")
	}
	// With fedauth= in the URL (ActiveDirectoryManagedIdentity in Azure,
	// ActiveDirectoryDefault from a developer's machine) the login presents
	// an Entra token from the DB's one cached credential (token.go).
	cred, err := entraCredential(u)
	if err != nil {
		return nil, err
	}
	if cred != nil && o.Credential != nil {
		cred = o.Credential
	}
	var (
		conn   *mssqldb.Connector
		tokens *tokenSource
	)
	if cred != nil {
		tokens = newTokenSource(cred, entraScope(u.Hostname()), o.TokenTimeout)
		conn, err = mssqldb.NewConnectorWithAccessTokenProvider(dsn, tokens.Token)
	} else {
		conn, err = mssqldb.NewConnector(dsn)
	}
	if err != nil {
		return nil, domain.Errorf(domain.KindInternal, "sqlserver: invalid database URL: %s", redact(err.Error(), rawURL))
	}
	db := sql.OpenDB(bound(conn, o.ConnectTimeout, tokens))
	maxConns := int(o.MaxConns)
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	// Idle = open: database/sql keeps only 2 idle connections by default, so
	// a burst would open and close connections, each a TLS handshake and an
	// Entra login.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	// Connections broken by a failover or a restart are dropped rather than
	// kept forever.
	db.SetConnMaxIdleTime(5 * time.Minute)
	now := o.Clock
	if now == nil {
		now = time.Now
	}
	return &DB{db: db, role: role, now: now, floor: domain.Floor(now())}, nil
}

func hasKey(q url.Values, key string) bool {
	for k := range q {
		if strings.EqualFold(strings.TrimSpace(k), key) {
			return true
		}
	}
	return false
}

// redact removes rawURL's password from msg.
func redact(msg, rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
			msg = strings.ReplaceAll(msg, url.QueryEscape(pw), "xxxxx")
		}
	}
	return msg
}

func (db *DB) Role() store.Role { return db.role }
func (db *DB) Driver() string   { return "sqlserver" }
func (db *DB) Close()           { _ = db.db.Close() }

// Ping checks the server answers a trivial query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return classify(err, "ping", true)
	}
	return nil
}

func (db *DB) clock() time.Time { return domain.Millis(db.now()) }

// inTx runs fn in a transaction and commits, once more if SQL Server chose
// it as a deadlock victim (the server has rolled it back whole, so running it
// again is safe). fn must be safe to run twice. Failures before COMMIT was
// sent changed nothing (SQL Server rolls back an open transaction whose
// connection drops), so they are reported as unreached.
func (db *DB) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return retryDeadlock(ctx, func() error { return db.tryTx(ctx, what, fn) })
}

func (db *DB) tryTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err, what, true)
	}
	// XACT_ABORT: any error, a cancelled statement (attention) included,
	// rolls the whole transaction back on the server at once, instead of
	// leaving it open with its locks until the client's ROLLBACK arrives.
	if _, err := tx.ExecContext(ctx, "SET XACT_ABORT ON"); err != nil {
		_ = tx.Rollback()
		return classify(err, what, true)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		var de *domain.Error
		if errors.As(err, &de) {
			return err
		}
		return classify(err, what, true)
	}
	if err := tx.Commit(); err != nil {
		return classify(err, what, false) // the COMMIT may have been applied
	}
	return nil
}

// retryDeadlock runs op, and once more if it failed as a deadlock victim
// (1205) while ctx still allows.
func retryDeadlock(ctx context.Context, op func() error) error {
	err := op()
	if isDeadlock(err) && ctx.Err() == nil {
		err = op()
	}
	return err
}

// isDeadlock reports a transaction SQL Server rolled back to break a
// deadlock: error 1205, or an application lock request chosen as the victim
// (sp_getapplock returns -3; our batches raise 51205 for it, and XACT_ABORT
// rolls the transaction back whole, as 1205 does).
func isDeadlock(err error) bool {
	var se mssqldb.Error
	return errors.As(err, &se) && (se.Number == errDeadlock || se.Number == errAppLockDeadlock) ||
		errors.Is(err, errMigrateLockDeadlock)
}

// errMigrateLockDeadlock: Migrate's sp_getapplock returned -3.
var errMigrateLockDeadlock = errors.New("sqlserver: migration lock request chosen as deadlock victim")

// SQL Server error numbers the classification knows.
const (
	errUniqueIndex      = 2601  // duplicate key in a unique index
	errUniqueConstraint = 2627  // duplicate key in a unique constraint
	errNotNull          = 515   // NULL into a NOT NULL column
	errCheck            = 547   // CHECK / FOREIGN KEY constraint
	errOverflow         = 8115  // arithmetic overflow (e.g. DECIMAL(10,2))
	errTruncated        = 8152  // string or binary data would be truncated
	errTruncatedNew     = 2628  // the same, SQL Server 2019+
	errLogin            = 18456 // login failed
	errOpenDatabase     = 4060  // cannot open the database of the login
	errDeadlock         = 1205  // chosen as deadlock victim: the transaction was rolled back
	errRequestLimit     = 10928 // Azure SQL: the database's request, worker or session limit is reached
	errResourceLimit    = 10929 // Azure SQL: minimum guarantee not met, limits lowered for now
	errAppLockTimeout   = 50001 // ours (THROW): an application lock was not granted in time
	errAppLockDeadlock  = 51205 // ours (THROW): an application lock request was chosen as deadlock victim
)

// busyNumbers are server errors of a server that answers but is at its
// limits: the call is served by the other database, the breaker stays
// closed (store.ErrBusy). From Microsoft.Data.SqlClient's transient list
// and https://learn.microsoft.com/azure/azure-sql/database/troubleshoot-common-errors-issues.
var busyNumbers = map[int32]bool{
	errRequestLimit: true, errResourceLimit: true,
	40501: true, // the service is busy: throttling, not an outage
	1204:  true, // no lock resources left
	701:   true, // not enough memory to run the query
	802:   true, // not enough memory in the buffer pool
	8645:  true, // timed out waiting for memory to run the query
	8651:  true, // the memory grant was not available
	9002:  true, // the transaction log is full until it is backed up or grows
}

// unavailableNumbers are server errors that mean "not now": Azure SQL
// transient errors (database paused, resuming, failing over).
var unavailableNumbers = map[int32]bool{
	errLogin: true, errOpenDatabase: true, 18452: true, // authentication
	40613: true, 40197: true, 40540: true, 40544: true, 40549: true, 40550: true,
	40143: true, // the connection could not be initialised: retry

	49918: true, 49919: true, 49920: true, 4221: true, 615: true, 926: true,
	// The session was killed for using too much tempdb, transaction log or
	// memory (https://learn.microsoft.com/azure/azure-sql/database/troubleshoot-common-errors-issues):
	// its transaction is rolled back; a retry later may succeed.
	40551: true, 40552: true, 40553: true,
	// An application lock not granted in time: the database is too busy for
	// this now, as PostgreSQL's lock timeout is (503, not 500).
	errAppLockTimeout: true,
}

// Classify gives err a domain kind; exported for tests of the mapping.
// unreached says the operation certainly changed nothing if it failed for
// connection reasons; driver.ErrBadConn (go-mssqldb's RetryableError) says
// the same on its own.
func Classify(err error, unreached bool) error { return classify(err, "operation", unreached) }

func classify(err error, what string, unreached bool) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if isTokenError(err) {
		// No Entra token (identity endpoint down, identity not assigned or
		// not yet propagated): the connect stopped before login, so nothing
		// changed, and the database is as unusable as an unreachable one.
		return unavailable(err, true)
	}
	var serverErr mssqldb.ServerError
	if errors.As(err, &serverErr) {
		// A fatal server error severs the connection; whether a write
		// applied is unknown.
		return unavailable(err, false)
	}
	var se mssqldb.Error
	if errors.As(err, &se) {
		switch n := se.Number; {
		case n == errUniqueIndex || n == errUniqueConstraint:
			if strings.Contains(se.Message, "users_email_live") {
				return domain.Wrap(domain.KindConflict, err, "a user with this email already exists")
			}
			return domain.Wrap(domain.KindConflict, err, "the row conflicts with an existing one")
		case busyNumbers[n]:
			// The server is up but at its limits: busy, not down (see
			// store.ErrBusy); the statement was refused or rolled back.
			return unavailable(fmt.Errorf("%w: %w", store.ErrBusy, err), unreached)
		case n == errNotNull, n == errCheck, n == errOverflow, n == errTruncated, n == errTruncatedNew:
			// Something a client sent: never a 500.
			return domain.Wrap(domain.KindInvalid, err, rejected(n, se.Message))
		case unavailableNumbers[n]:
			// Refused at login or before the statement ran: nothing changed.
			return unavailable(err, unreached || n == errLogin || n == errOpenDatabase || n == 18452)
		}
		return domain.Wrap(domain.KindInternal, err, "sqlserver: "+what+" failed")
	}
	if isConnectionError(err) {
		return unavailable(err, unreached || errors.Is(err, driver.ErrBadConn))
	}
	return domain.Wrap(domain.KindInternal, err, "sqlserver: "+what+" failed")
}

func unavailable(err error, unreached bool) error {
	if unreached {
		err = fmt.Errorf("%w: %w", store.ErrUnreached, err)
	}
	return domain.Wrap(domain.KindUnavailable, err, "the database is unavailable")
}

// isTokenError reports a failure to get an Entra token for the login:
// azidentity's AuthenticationFailedError and AuthenticationRequiredError, and
// its "credential unavailable" errors, which are unexported but, like every
// azidentity error, carry the SDK's NonRetriable marker (go-mssqldb's azuread
// package returns them unwrapped from the token provider, and the connect
// returns them as they are).
func isTokenError(err error) bool {
	var te *tokenError
	if errors.As(err, &te) {
		return true
	}
	var failed *azidentity.AuthenticationFailedError
	var required *azidentity.AuthenticationRequiredError
	var nonRetriable interface{ NonRetriable() }
	return errors.As(err, &failed) || errors.As(err, &required) || errors.As(err, &nonRetriable)
}

// isConnectionError reports failures of reaching or talking to the server,
// as opposed to errors the server returned.
func isConnectionError(err error) bool {
	var ne net.Error
	var stream mssqldb.StreamError
	switch {
	case errors.As(err, &ne), errors.As(err, &stream),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return true
	}
	// go-mssqldb reports some connect failures as plain text.
	msg := err.Error()
	return strings.Contains(msg, "unable to open tcp connection") || strings.Contains(msg, "login error") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}

// Stats reports the connection pool's statistics.
func (db *DB) Stats() sql.DBStats { return db.db.Stats() }
