package mssql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// fakeCred stands in for an azidentity credential: it counts GetToken calls,
// records the scopes and deadlines it was asked with, takes delay (or until
// its context ends), and returns a token valid for life, or fail.
type fakeCred struct {
	calls    atomic.Int32
	delay    time.Duration
	life     time.Duration
	fail     atomic.Pointer[error]
	mu       sync.Mutex
	scopes   []string
	deadline time.Time
	now      func() time.Time // the clock ExpiresOn counts from; nil: time.Now
}

func (f *fakeCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	n := f.calls.Add(1)
	f.mu.Lock()
	f.scopes = append(f.scopes, o.Scopes...)
	f.deadline, _ = ctx.Deadline()
	f.mu.Unlock()
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return azcore.AccessToken{}, ctx.Err()
	}
	if e := f.fail.Load(); e != nil {
		return azcore.AccessToken{}, *e
	}
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	return azcore.AccessToken{Token: "token-" + string(rune('0'+n)), ExpiresOn: now().Add(f.life)}, nil
}

func TestTokenSourceCachesOneTokenForAllConnections(t *testing.T) {
	cred := &fakeCred{delay: 20 * time.Millisecond, life: time.Hour}
	s := newTokenSource(cred, "https://database.windows.net/.default", time.Second)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s.now, cred.now = clock, clock
	// Many connections opening at once: one acquisition, one token for all.
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Go(func() {
			tok, err := s.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = tok
		})
	}
	wg.Wait()
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("GetToken called %d times for 20 connections, want 1", n)
	}
	for _, tok := range got {
		if tok != got[0] || tok == "" {
			t.Fatalf("connections got different tokens: %v", got)
		}
	}
	// Later connections reuse it until shortly before it expires.
	advance(time.Hour - tokenRefreshMargin - time.Minute)
	if _, err := s.Token(context.Background()); err != nil || cred.calls.Load() != 1 {
		t.Fatalf("reused token: err %v, calls %d", err, cred.calls.Load())
	}
	advance(2 * time.Minute) // within the refresh margin: the old token at once, a refresh behind it
	if tok, err := s.Token(context.Background()); err != nil || tok != got[0] {
		t.Fatalf("near expiry: token %q err %v, want the cached one at once", tok, err)
	}
	waitCalls(t, s, cred, 2)
	tok, err := s.Token(context.Background())
	if err != nil || tok == got[0] {
		t.Fatalf("after the background refresh: token %q err %v", tok, err)
	}
	// A failure is not cached: the next connection asks again.
	advance(2 * time.Hour)
	boom := errors.New("identity endpoint down")
	cred.fail.Store(&boom)
	if _, err := s.Token(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("failed acquisition: %v", err)
	}
	cred.fail.Store(nil)
	if _, err := s.Token(context.Background()); err != nil || cred.calls.Load() != 4 {
		t.Fatalf("after a failure: err %v calls %d, want a new acquisition", err, cred.calls.Load())
	}
	if cred.scopes[0] != "https://database.windows.net/.default" {
		t.Fatalf("scope %v", cred.scopes)
	}
}

// waitCalls waits until cred has been asked n times and the acquisition (a
// background refresh) has ended.
func waitCalls(t *testing.T, s *tokenSource, cred *fakeCred, n int32) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); cred.calls.Load() < n || len(s.sem) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GetToken called %d times, want %d (acquisition under way: %v)", cred.calls.Load(), n, len(s.sem) > 0)
		}
	}
}

// A refresh that fails while the cached token still has minutes left costs
// no connection anything: the login uses the cached token, and the refresh
// is tried again only after tokenRetryAfter. A token with less than
// tokenMinLife left is not used: the acquisition must succeed.
func TestTokenRefreshFailureUsesTheCachedToken(t *testing.T) {
	boom := errors.New("identity endpoint down")
	tests := []struct {
		name      string
		left      time.Duration // the cached token's remaining life
		fail      bool
		delay     time.Duration
		wantToken string // "" : an error
		wantCalls int32  // GetToken calls once settled
	}{
		{"fresh: no refresh", time.Hour, true, 0, "cached", 0},
		{"in the margin, refresh fails: cached token", 4 * time.Minute, true, 0, "cached", 1},
		{"in the margin, refresh slow: cached token at once", 4 * time.Minute, false, 200 * time.Millisecond, "cached", 1},
		{"in the margin, refresh works: cached now, new next", 4 * time.Minute, false, 0, "cached", 1},
		{"nearly expired, refresh fails: error", 30 * time.Second, true, 0, "", 1},
		{"nearly expired, refresh works: the new token", 30 * time.Second, false, 0, "token-1", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred := &fakeCred{life: time.Hour, delay: tc.delay}
			if tc.fail {
				cred.fail.Store(&boom)
			}
			s := newTokenSource(cred, "scope", time.Second)
			now := time.Now()
			s.now = func() time.Time { return now }
			s.tok = azcore.AccessToken{Token: "cached", ExpiresOn: now.Add(tc.left)}
			start := time.Now()
			tok, err := s.Token(context.Background())
			if tc.wantToken == "" {
				if err == nil || !errors.Is(err, boom) {
					t.Fatalf("token %q err %v, want %v", tok, err, boom)
				}
			} else if err != nil || tok != tc.wantToken {
				t.Fatalf("token %q err %v, want %q", tok, err, tc.wantToken)
			}
			if tc.delay > 0 && time.Since(start) >= tc.delay {
				t.Fatalf("the connect waited %v for a refresh while a usable token was cached", time.Since(start))
			}
			if tc.wantCalls > 0 {
				waitCalls(t, s, cred, tc.wantCalls)
			} else {
				time.Sleep(20 * time.Millisecond)
			}
			if n := cred.calls.Load(); n != tc.wantCalls {
				t.Fatalf("GetToken called %d times, want %d", n, tc.wantCalls)
			}
			if tc.wantToken != "cached" || tc.left == time.Hour {
				return
			}
			// Next connect: a failed refresh is not retried within tokenRetryAfter; a
			// successful one is in use.
			tok, err = s.Token(context.Background())
			switch {
			case tc.fail && (err != nil || tok != "cached"):
				t.Fatalf("after a failed refresh: token %q err %v, want the cached one", tok, err)
			case !tc.fail && (err != nil || tok != "token-1"):
				t.Fatalf("after the refresh: token %q err %v, want token-1", tok, err)
			}
			time.Sleep(20 * time.Millisecond)
			if n := cred.calls.Load(); n != tc.wantCalls {
				t.Fatalf("GetToken called %d times on the next connect, want still %d", n, tc.wantCalls)
			}
			if tc.fail {
				now = now.Add(tokenRetryAfter + time.Second) // the retry is due; the token still usable
				if tok, err := s.Token(context.Background()); err != nil || tok != "cached" {
					t.Fatalf("retry due: token %q err %v", tok, err)
				}
				waitCalls(t, s, cred, tc.wantCalls+1)
			}
		})
	}
}

// The token has a budget of its own: a credential that never answers fails
// the acquisition when the budget is spent, even when the caller (handler
// migrate) set no deadline, as an unavailable database that changed nothing.
func TestTokenBudget(t *testing.T) {
	cred := &fakeCred{delay: time.Hour, life: time.Hour}
	s := newTokenSource(cred, "scope", 100*time.Millisecond)
	start := time.Now()
	_, err := s.Token(context.Background())
	if took := time.Since(start); err == nil || took < 100*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Token: %v after %v, want a failure after the 100ms budget", err, took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the budget's deadline", err)
	}
	c := Classify(err, false)
	if !domain.IsKind(c, domain.KindUnavailable) || !errors.Is(c, store.ErrUnreached) {
		t.Fatalf("classified %v, want unavailable and unreached", c)
	}
	// A caller's nearer deadline (an API request's) wins over the budget.
	s = newTokenSource(cred, "scope", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := s.Token(ctx); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("caller deadline: %v after %v", err, time.Since(start))
	}
}

// The connect timeout starts once the token is there: a token slower than
// DB_CONNECT_TIMEOUT does not eat the connect's time, and the network
// connect still gets exactly its timeout.
func TestTokenIsNotCountedAgainstConnectTimeout(t *testing.T) {
	cred := &fakeCred{delay: 250 * time.Millisecond, life: time.Hour}
	tokens := newTokenSource(cred, "scope", 10*time.Second)
	const timeout = 100 * time.Millisecond
	var (
		gotDeadline time.Time
		startedAt   time.Time
		ctxErr      error
	)
	bc := &boundedConnector{timeout: timeout, tokens: tokens, inner: connectorFunc(func(ctx context.Context) (driver.Conn, error) {
		startedAt = time.Now()
		gotDeadline, _ = ctx.Deadline()
		ctxErr = ctx.Err()
		// As go-mssqldb does during the login: the provider finds the token cached.
		if _, err := tokens.Token(ctx); err != nil {
			return nil, err
		}
		return nil, nil
	})}
	begin := time.Now()
	if _, err := bc.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ctxErr != nil || startedAt.Sub(begin) < 250*time.Millisecond {
		t.Fatalf("connect started %v after the call (ctx err %v), want after the 250ms token", startedAt.Sub(begin), ctxErr)
	}
	// The deadline was set once the 250ms token was there: at least
	// 250ms + timeout after the call, never less.
	if total := gotDeadline.Sub(begin); total < 250*time.Millisecond+timeout {
		t.Fatalf("connect deadline %v after the call, want at least the token's 250ms + the %v timeout", total, timeout)
	}
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("GetToken called %d times, want 1", n)
	}
	// The token's own deadline was its budget, not the connect timeout.
	if budget := cred.deadline.Sub(begin); budget < 9*time.Second {
		t.Fatalf("token acquisition had %v, want its 10s budget", budget)
	}
}

// Through Open: a DB with Entra sign-in gets its token once for all its
// connections, with the endpoint's scope, before the connect's deadline.
// The server never answers (no SQL Server here), so every Ping fails as
// unavailable; the token is still got once and reused.
func TestOpenSharesOneCachedCredential(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cred := &fakeCred{delay: 300 * time.Millisecond, life: time.Hour}
	db, err := Open(context.Background(), "sqlserver://"+ln.Addr().String()+"?database=d&encrypt=true&fedauth=ActiveDirectoryDefault",
		store.RolePrimary, Options{ConnectTimeout: 200 * time.Millisecond, TokenTimeout: 5 * time.Second, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 3 {
		start := time.Now()
		err := db.Ping(context.Background())
		if !domain.IsKind(err, domain.KindUnavailable) {
			t.Fatalf("ping %d: %v", i, err)
		}
		if i == 0 && time.Since(start) < 450*time.Millisecond {
			t.Fatalf("first ping failed after %v: the 300ms token ate the 200ms connect timeout", time.Since(start))
		}
	}
	if n := cred.calls.Load(); n != 1 {
		t.Fatalf("GetToken called %d times for 3 connection attempts, want 1", n)
	}
	if len(cred.scopes) != 1 || cred.scopes[0] != "https://database.windows.net/.default" {
		t.Fatalf("scopes %v", cred.scopes)
	}
	// No token (identity endpoint down): unavailable, and certainly nothing
	// changed, so the failover wrapper may serve the call elsewhere.
	down := &fakeCred{life: time.Hour}
	boom := error(errors.New("ManagedIdentityCredential: no response from the IMDS endpoint"))
	down.fail.Store(&boom)
	db2, err := Open(context.Background(), "sqlserver://"+ln.Addr().String()+"?database=d&fedauth=ActiveDirectoryManagedIdentity",
		store.RolePrimary, Options{ConnectTimeout: 200 * time.Millisecond, Credential: down})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Ping(context.Background()); !domain.IsKind(err, domain.KindUnavailable) || !errors.Is(err, store.ErrUnreached) || !errors.Is(err, boom) {
		t.Fatalf("ping without a token: %v, want unavailable, unreached, with the cause", err)
	}
}

func TestEntraScope(t *testing.T) {
	for host, want := range map[string]string{
		"srv.database.windows.net":       "https://database.windows.net/.default",
		"SRV.DATABASE.USGOVCLOUDAPI.NET": "https://database.usgovcloudapi.net/.default",
		"srv.database.chinacloudapi.cn":  "https://database.chinacloudapi.cn/.default",
		"10.0.0.4":                       "https://database.windows.net/.default",
	} {
		if got := entraScope(host); got != want {
			t.Errorf("entraScope(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestEntraCredential(t *testing.T) {
	tests := []struct {
		name, url string
		want      string // credential type; "" none; "error"
	}{
		{"SQL login", "sqlserver://sa:pw@h?database=d", ""},
		{"managed identity by client id (the Bicep's URL)", "sqlserver://h?database=d&fedauth=ActiveDirectoryManagedIdentity&user%20id=00000000-0000-0000-0000-000000000001", "*azidentity.ManagedIdentityCredential"},
		{"MSI synonym, system-assigned", "sqlserver://h?fedauth=ActiveDirectoryMSI", "*azidentity.ManagedIdentityCredential"},
		{"workstation", "sqlserver://h?fedauth=activedirectorydefault", "*azidentity.DefaultAzureCredential"},
		{"az CLI", "sqlserver://h?fedauth=ActiveDirectoryAzCli", "*azidentity.AzureCLICredential"},
		{"service principal", "sqlserver://h?fedauth=ActiveDirectoryServicePrincipal&user%20id=11111111-1111-1111-1111-111111111111@22222222-2222-2222-2222-222222222222&password=Secr3t", "*azidentity.ClientSecretCredential"},
		{"service principal without tenant", "sqlserver://h?fedauth=ActiveDirectoryServicePrincipal&user%20id=11111111-1111-1111-1111-111111111111&password=Secr3t", "error"},
		{"password flow is not offered", "sqlserver://u:Secr3t@h?fedauth=ActiveDirectoryPassword&applicationclientid=x", "error"},
		{"unknown flow", "sqlserver://h?fedauth=Telepathy", "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			cred, err := entraCredential(u)
			switch {
			case tc.want == "error":
				if err == nil {
					t.Fatalf("no error, credential %T", cred)
				}
				if strings.Contains(err.Error(), "Secr3t") {
					t.Fatalf("error shows the secret: %v", err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "" && cred != nil:
				t.Fatalf("credential %T for a SQL login", cred)
			case tc.want != "" && typeName(cred) != tc.want:
				t.Fatalf("credential %s, want %s", typeName(cred), tc.want)
			}
		})
	}
}

func typeName(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%T", v)
}
