package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"dualsync/internal/database"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// lockedBuffer collects the handler's log output from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// assertNoSecret fails if text holds the password marker in any form a
// logger or an error might print it (as is, URL-escaped, or quoted).
func assertNoSecret(t *testing.T, where, text, marker string) {
	t.Helper()
	for _, form := range []string{marker, url.QueryEscape(marker), fmt.Sprintf("%q", marker)[1 : len(marker)+1]} {
		if strings.Contains(text, form) {
			t.Errorf("%s shows the database password:\n%s", where, text)
			return
		}
	}
}

// A database URL's password never reaches a log line or an error when the
// handler cannot start: the error is what main prints to stderr.
func TestPasswordNeverLeaksAtStartUp(t *testing.T) {
	marker := "pw" + testenv.RandomHex(8)
	closed := testenv.FreePort(t)
	good := testenv.CreateDatabase(t) // a working database of this test's own
	tests := []struct {
		name, cmd, primary, fallback string
	}{
		{"postgres unreachable (migrate)", "migrate", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/db?sslmode=disable", marker, closed), good},
		{"fallback unreachable (seed)", "seed", good, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/db?sslmode=disable", marker, closed)},
		{"sqlserver unreachable (migrate)", "migrate", fmt.Sprintf("sqlserver://sa:%s@127.0.0.1:%d?database=dualsync", marker, closed), good},
		{"unparseable URL (serve)", "serve", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:port/db", marker), good},
		{"bad sslmode (serve)", "serve", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/db?sslmode=bogus", marker, closed), good},
		{"bad connect_timeout (migrate)", "migrate", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/db?connect_timeout=soon", marker, closed), good},
		{"unknown scheme (serve)", "serve", fmt.Sprintf("mysql://root:%s@127.0.0.1:%d/db", marker, closed), good},
		{"no scheme (serve)", "serve", fmt.Sprintf("root:%s@127.0.0.1:%d/db", marker, closed), good},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"PRIMARY_DATABASE_URL": tc.primary, "FALLBACK_DATABASE_URL": tc.fallback,
				"FUNCTIONS_CUSTOMHANDLER_PORT": fmt.Sprint(testenv.FreePort(t)),
				"SyncStorage":                  fmt.Sprintf("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1:%d", closed),
				"LOG_LEVEL":                    "debug",
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, logs lockedBuffer
			err := run(ctx, []string{tc.cmd}, func(k string) string { return env[k] }, &out, &logs)
			if err == nil {
				t.Fatalf("%s succeeded; want a start-up failure", tc.cmd)
			}
			assertNoSecret(t, "the error main prints", "error: "+err.Error(), marker)
			assertNoSecret(t, "stdout", out.String(), marker)
			assertNoSecret(t, "the log", logs.String(), marker)
		})
	}
}

// At run time, with the primary cut mid-way and the fallback never there,
// no answer and no log line shows either password, at any log level.
func TestPasswordNeverLeaksAtRunTime(t *testing.T) {
	marker := "pw" + testenv.RandomHex(8)
	raw := testenv.CreateDatabase(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := database.Open(ctx, raw, store.RolePrimary, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// The machine's PostgreSQL trusts local connections, so the password
	// is sent and ignored: the URL works and still carries the secret.
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	u.User = url.UserPassword("postgres", marker)
	port := testenv.FreePort(t)
	env := map[string]string{
		"PRIMARY_DATABASE_URL":         u.String(),
		"FALLBACK_DATABASE_URL":        fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/fallback?sslmode=disable", marker, testenv.FreePort(t)),
		"FUNCTIONS_CUSTOMHANDLER_PORT": fmt.Sprint(port),
		"SyncStorage":                  testenv.Storage(t),
		"LOG_LEVEL":                    "debug",
		"DB_CONNECT_TIMEOUT":           "500ms",
		"DB_QUERY_TIMEOUT":             "1s",
		"BREAKER_COOLDOWN":             "100ms",
	}
	runCtx, stop := context.WithCancel(ctx)
	var out, logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(runCtx, nil, func(k string) string { return env[k] }, &out, &logs) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitFor(t, 20*time.Second, "the handler to listen", func() bool {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	var answers strings.Builder
	call := func(method, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&answers, "%s %s -> %d %v\n%s\n", method, path, resp.StatusCode, resp.Header, b)
		return resp.StatusCode
	}
	envelope := `{"Data":{"msg":"{\"entity\":\"product\",\"id\":1}"},"Metadata":{"DequeueCount":"1"}}`
	round := func() {
		call("GET", "/api/health", "")
		call("GET", "/api/health/details", "")
		call("GET", "/api/products", "")
		call("POST", "/api/products", `{"name":"p","price":"1.00"}`)
		call("GET", "/api/products/1", "")
		call("POST", "/api/users", `{"name":"u","email":"u@example.com"}`)
		call("POST", "/api/start-product-sync", "")
		call("GET", "/api/product-sync", "")
		call("POST", "/SyncProduct", envelope)
		call("POST", "/OutboxRelay", `{"Data":{},"Metadata":{}}`)
	}
	round() // primary up, fallback down from the start
	if code := call("POST", "/api/products", `{"name":"q","price":"2.00"}`); code != http.StatusCreated {
		t.Fatalf("a write with the primary up answered %d; the test would prove nothing", code)
	}
	proxy.Cut() // now neither database answers
	round()
	if code := call("GET", "/api/health/details", ""); code != http.StatusServiceUnavailable {
		t.Errorf("health details with both databases down: %d, want 503", code)
	}
	stop()
	if err := <-done; err != nil {
		assertNoSecret(t, "run's error", err.Error(), marker)
	}
	if !strings.Contains(logs.String(), "fallback") {
		t.Errorf("the log never mentions the failing fallback; the test would prove nothing:\n%s", logs.String())
	}
	assertNoSecret(t, "the HTTP answers", answers.String(), marker)
	assertNoSecret(t, "the log", logs.String(), marker)
	assertNoSecret(t, "stdout", out.String(), marker)
	if t.Failed() {
		t.Logf("answers:\n%s", answers.String())
	}
}
