package mssql_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	mssqldb "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/azuread"
	"github.com/microsoft/go-mssqldb/msdsn"

	"dualsync/internal/domain"
	"dualsync/internal/mssql"
	"dualsync/internal/store"
	"dualsync/internal/store/storetest"
	"dualsync/internal/testenv"
)

// TestContract runs the store contract against a real SQL Server or Azure
// SQL Database: the one database MSSQL_URL names, which must be used for
// nothing else (its name must contain "test"). Each subtest starts from an
// empty schema: the suite opens one database at a time, so the set-up drops
// every table and sequence in dbo before handing it out. That needs neither
// CREATE DATABASE nor SINGLE_USER, which Azure SQL Database does not offer
// (or bills per database). The login needs to create and drop tables there.
func TestContract(t *testing.T) {
	raw := os.Getenv("MSSQL_URL")
	if raw == "" {
		t.Skip("MSSQL_URL not set: SQL Server contract tests not run (no SQL Server on this machine)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal("MSSQL_URL cannot be parsed")
	}
	if name := u.Query().Get("database"); !strings.Contains(strings.ToLower(name), "test") {
		t.Fatalf("MSSQL_URL names database %q: the contract suite empties the database it runs in, so use one whose name contains \"test\"", name)
	}
	inUse := false
	storetest.Run(t, func(t *testing.T, role store.Role) store.DB {
		if inUse {
			t.Fatal("the contract suite opened a second database while one is open; MSSQL_URL runs share one database and need them one at a time")
		}
		resetSchema(t, raw)
		db, err := mssql.Open(context.Background(), raw, role, mssql.Options{ConnectTimeout: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		inUse = true
		t.Cleanup(func() { db.Close(); inUse = false })
		return db
	})
}

// resetSchema drops every table and sequence in dbo of the test database.
func resetSchema(t *testing.T, raw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// azuread's connector also signs in with Entra (fedauth=...), as Azure
	// SQL Database with Entra-only authentication needs.
	connector, err := azuread.NewConnector(raw)
	if err != nil {
		t.Fatal("MSSQL_URL: ", err)
	}
	conn := sql.OpenDB(connector)
	defer conn.Close()
	// Names come from the catalog and are quoted with QUOTENAME.
	const drop = `DECLARE @sql NVARCHAR(MAX) = N'';
		SELECT @sql += N'DROP TABLE dbo.' + QUOTENAME(name) + N'; ' FROM sys.tables WHERE schema_id = SCHEMA_ID(N'dbo');
		SELECT @sql += N'DROP SEQUENCE dbo.' + QUOTENAME(name) + N'; ' FROM sys.sequences WHERE schema_id = SCHEMA_ID(N'dbo');
		EXEC sys.sp_executesql @sql;`
	if _, err := conn.ExecContext(ctx, drop); err != nil {
		t.Fatalf("reset the test database: %v", err)
	}
}

func TestConnectURL(t *testing.T) {
	tests := []struct {
		name, in string
		timeout  time.Duration
		want     map[string]string
	}{
		{"dial timeout added, no connection timeout", "sqlserver://sa:pw@db.example:1433?database=app", 0,
			map[string]string{"dial timeout": "2", "database": "app"}},
		{"rounded up to whole seconds", "sqlserver://sa:pw@db.example?database=app", 1500 * time.Millisecond,
			map[string]string{"dial timeout": "2", "database": "app"}},
		{"URL's own dial timeout kept", "sqlserver://sa:pw@db.example?dial+timeout=7", time.Second,
			map[string]string{"dial timeout": "7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := mssql.ConnectURL(tc.in, tc.timeout)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			for k, v := range tc.want {
				if got := q.Get(k); got != v {
					t.Errorf("%q = %q, want %q (URL %s)", k, got, v, u.Redacted())
				}
			}
			if len(q) != len(tc.want) {
				t.Errorf("unexpected parameters: %v", q)
			}
			if pw, _ := u.User.Password(); pw != "pw" || u.Host == "" {
				t.Errorf("credentials or host lost: %s", u.Redacted())
			}
			// What go-mssqldb makes of it: no whole-life socket timeout.
			cfg, err := msdsn.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnTimeout != 0 {
				t.Errorf("go-mssqldb connection timeout %v, want 0 (it would bound every read for the connection's life)", cfg.ConnTimeout)
			}
		})
	}
	// A URL's own "connection timeout" would bound every read: refused, by name.
	for _, in := range []string{"sqlserver://sa:Secr3t@db.example?connection+timeout=30", "sqlserver://sa:Secr3t@db.example?Connection%20Timeout=9"} {
		_, err := mssql.ConnectURL(in, 0)
		if err == nil || !strings.Contains(err.Error(), `"connection timeout"`) || strings.Contains(err.Error(), "Secr3t") {
			t.Errorf("%s: err = %v, want a refusal naming the parameter", in, err)
		}
	}
	for _, bad := range []string{"postgres://u:pw@h/db", "sqlserver://", "::not a url", "sqlserver://u:Secr3t@h:bad port/"} {
		_, err := mssql.ConnectURL(bad, 0)
		if err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), "Secr3t") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// silentServer accepts TCP connections and never answers: the pre-login read
// of go-mssqldb (which does not watch the context) waits on it forever
// unless the connect is bounded.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestConnectIsBounded(t *testing.T) {
	addr := silentServer(t)
	db, err := mssql.Open(context.Background(), "sqlserver://sa:pw@"+addr+"?database=x", store.RolePrimary,
		mssql.Options{ConnectTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The caller's own deadline is far away: the connect timeout must end
	// the attempt first, as an unavailable database that changed nothing.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = db.Ping(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Ping returned only when the caller's deadline passed: %v", err)
	}
	if !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, store.ErrUnreached) {
		t.Fatalf("Ping: %v, want unavailable and unreached", err)
	}
}

func TestPoolSize(t *testing.T) {
	ctx := context.Background()
	u := fmt.Sprintf("sqlserver://sa:pw@127.0.0.1:%d?database=x", testenv.FreePort(t))
	for _, tc := range []struct{ set, want int32 }{{0, mssql.DefaultMaxConns}, {3, 3}} {
		db, err := mssql.Open(ctx, u, store.RolePrimary, mssql.Options{MaxConns: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		if got := db.Stats().MaxOpenConnections; got != int(tc.want) {
			t.Errorf("MaxConns %d: pool caps at %d, want %d", tc.set, got, tc.want)
		}
		db.Close()
	}
}

func TestBatches(t *testing.T) {
	script := "CREATE TABLE a (x INT);\nGO\n  go  \nSELECT 1;\nSELECT 'GO';\nGO\n\nGOTO x;\n"
	got := mssql.Batches(script)
	want := []string{"CREATE TABLE a (x INT);", "SELECT 1;\nSELECT 'GO';", "GOTO x;"}
	if len(got) != len(want) {
		t.Fatalf("batches %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("batch %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestOpenIsLazy(t *testing.T) {
	ctx := context.Background()
	u := fmt.Sprintf("sqlserver://sa:pw@127.0.0.1:%d?database=x", testenv.FreePort(t))
	db, err := mssql.Open(ctx, u, store.RoleFallback, mssql.Options{ConnectTimeout: time.Second, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Role() != store.RoleFallback || db.Driver() != "sqlserver" {
		t.Fatalf("role %q driver %q", db.Role(), db.Driver())
	}
	// Nothing listens: every operation is unavailable, and nothing changed.
	name, price := "a", domain.Money(1)
	_, err = db.CreateProduct(ctx, domain.ProductChange{Name: &name, Description: &name, Price: &price})
	if !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, store.ErrUnreached) {
		t.Fatalf("create: %v, want unavailable and unreached", err)
	}
	if err := db.Migrate(ctx); !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("migrate: %v, want unavailable", err)
	}
	if _, err := mssql.Open(ctx, u, store.Role("other"), mssql.Options{}); err == nil {
		t.Fatal("unknown role: no error")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		unreached bool // passed in
		kind      domain.Kind
		wantUnr   bool
		wantBusy  bool
	}{
		{"email index", mssqldb.Error{Number: 2601, Message: "Cannot insert duplicate key row in object 'dbo.users' with unique index 'users_email_live'."}, true, domain.KindConflict, false, false},
		{"primary key", mssqldb.Error{Number: 2627, Message: "Violation of PRIMARY KEY constraint 'products_pk'."}, true, domain.KindConflict, false, false},
		{"truncation", mssqldb.Error{Number: 2628}, true, domain.KindInvalid, false, false},
		{"old truncation", mssqldb.Error{Number: 8152}, true, domain.KindInvalid, false, false},
		{"overflow", mssqldb.Error{Number: 8115}, true, domain.KindInvalid, false, false},
		{"login failed", mssqldb.Error{Number: 18456}, false, domain.KindUnavailable, true, false},
		{"azure database paused", mssqldb.Error{Number: 40613}, false, domain.KindUnavailable, false, false},
		{"azure database paused before sending", mssqldb.Error{Number: 40613}, true, domain.KindUnavailable, true, false},
		{"deadlock is ours to retry", mssqldb.Error{Number: 1205}, true, domain.KindInternal, false, false},
		{"app lock deadlock victim is ours to retry", mssqldb.Error{Number: 51205}, true, domain.KindInternal, false, false},
		// As PostgreSQL answers a lock it cannot get: 503, not 500.
		{"app lock timeout (THROW 50001)", mssqldb.Error{Number: 50001, Message: "sequence lock not granted in time"}, true, domain.KindUnavailable, true, false},
		{"app lock timeout at commit", mssqldb.Error{Number: 50001}, false, domain.KindUnavailable, false, false},
		// Azure SQL killed the session for tempdb, log or memory use: its
		// transaction was rolled back; unavailable, like PostgreSQL's 53xxx.
		{"azure session killed: tempdb", mssqldb.Error{Number: 40551}, true, domain.KindUnavailable, true, false},
		{"azure session killed: log", mssqldb.Error{Number: 40552}, true, domain.KindUnavailable, true, false},
		{"azure session killed: memory", mssqldb.Error{Number: 40553}, false, domain.KindUnavailable, false, false},
		{"request limit is busy, not down", mssqldb.Error{Number: 10928, Message: "Resource ID : 1. The request limit for the database is 30 and has been reached."}, true, domain.KindUnavailable, true, true},
		{"resource limit is busy, not down", mssqldb.Error{Number: 10929}, true, domain.KindUnavailable, true, true},
		{"busy at commit: may have applied", mssqldb.Error{Number: 10928}, false, domain.KindUnavailable, false, true},
		// Throttling is busy, not an outage: it must not open the breaker.
		{"service busy (40501) is busy", mssqldb.Error{Number: 40501, Message: "The service is currently busy."}, true, domain.KindUnavailable, true, true},
		// Microsoft.Data.SqlClient's transient errors of a server at its
		// limits: busy (503, the other database serves the call), never 500.
		{"no lock resources (1204)", mssqldb.Error{Number: 1204}, true, domain.KindUnavailable, true, true},
		{"out of memory (701)", mssqldb.Error{Number: 701}, true, domain.KindUnavailable, true, true},
		{"buffer pool memory (802)", mssqldb.Error{Number: 802}, false, domain.KindUnavailable, false, true},
		{"memory wait timeout (8645)", mssqldb.Error{Number: 8645}, true, domain.KindUnavailable, true, true},
		{"memory grant unavailable (8651)", mssqldb.Error{Number: 8651}, true, domain.KindUnavailable, true, true},
		{"transaction log full (9002)", mssqldb.Error{Number: 9002}, false, domain.KindUnavailable, false, true},
		// Connection not initialised: unavailable like a failover (40613).
		{"connection not initialised (40143)", mssqldb.Error{Number: 40143}, true, domain.KindUnavailable, true, false},
		{"connection not initialised at commit", mssqldb.Error{Number: 40143}, false, domain.KindUnavailable, false, false},
		// Entra token failures, as go-mssqldb's azuread token provider
		// returns them from the connect: the identity endpoint is down or
		// the identity cannot sign in, so the database is unusable.
		{"managed identity unavailable", azidentity.NewCredentialUnavailableError("ManagedIdentityCredential: no response from the IMDS endpoint"), false, domain.KindUnavailable, true, false},
		{"authentication failed", &azidentity.AuthenticationFailedError{}, false, domain.KindUnavailable, true, false},
		{"authentication required", &azidentity.AuthenticationRequiredError{}, false, domain.KindUnavailable, true, false},
		{"syntax", mssqldb.Error{Number: 102}, true, domain.KindInternal, false, false},
		{"dial refused", fmt.Errorf("unable to open tcp connection with host '127.0.0.1:1': %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), false, domain.KindUnavailable, false, false},
		{"dial refused before anything", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true, domain.KindUnavailable, true, false},
		{"bad connection (driver says nothing sent)", driver.ErrBadConn, false, domain.KindUnavailable, true, false},
		{"reset mid-commit", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, false, domain.KindUnavailable, false, false},
		{"deadline", context.DeadlineExceeded, false, domain.KindUnavailable, false, false},
		{"eof", fmt.Errorf("reading: %w", errors.New("EOF")), false, domain.KindInternal, false, false},
		{"other", errors.New("boom"), true, domain.KindInternal, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mssql.Classify(tc.err, tc.unreached)
			if got := domain.ErrorKind(err); got != tc.kind {
				t.Fatalf("kind %s, want %s (%v)", got, tc.kind, err)
			}
			if got := errors.Is(err, store.ErrUnreached); got != tc.wantUnr {
				t.Fatalf("unreached %v, want %v (%v)", got, tc.wantUnr, err)
			}
			if got := errors.Is(err, store.ErrBusy); got != tc.wantBusy {
				t.Fatalf("busy %v, want %v (%v)", got, tc.wantBusy, err)
			}
			// mssql.Error holds a slice, so errors.Is cannot compare it.
			var se mssqldb.Error
			if _, isSQL := tc.err.(mssqldb.Error); isSQL && !errors.As(err, &se) || !isSQL && !errors.Is(err, tc.err) {
				t.Fatalf("the cause is lost: %v", err)
			}
		})
	}
	var de *domain.Error
	if errors.As(mssql.Classify(tests[0].err, false), &de) && de.Message != "a user with this email already exists" {
		t.Fatalf("email conflict message %q", de.Message)
	}
}

// Entra sign-in (fedauth=...) is what Azure SQL with Entra-only
// authentication needs; Open must accept those URLs without contacting
// anything, and refuse a workflow it cannot run.
func TestOpenEntraURLs(t *testing.T) {
	ctx := context.Background()
	host := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"managed identity (Azure)", "sqlserver://" + host + "?database=d&encrypt=true&fedauth=ActiveDirectoryManagedIdentity&user%20id=00000000-0000-0000-0000-000000000001", true},
		{"default credential (a developer)", "sqlserver://" + host + "?database=d&fedauth=ActiveDirectoryDefault", true},
		{"password login", "sqlserver://sa:pw@" + host + "?database=d", true},
		{"unknown workflow", "sqlserver://" + host + "?database=d&fedauth=Telepathy", false},
		{"password workflow without its client id", "sqlserver://u:p@" + host + "?database=d&fedauth=ActiveDirectoryPassword", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := mssql.Open(ctx, tt.url, store.RolePrimary, mssql.Options{ConnectTimeout: time.Second})
			if (err == nil) != tt.ok {
				t.Fatalf("Open err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), host) {
					t.Errorf("the error echoes the URL: %v", err)
				}
				return
			}
			db.Close()
		})
	}
}
