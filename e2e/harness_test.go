// Package e2e runs the real handler binary under devhost, on two fresh
// PostgreSQL databases (each behind a TCP proxy the test can cut) and a
// private Azurite the test can stop: the whole app as a user runs it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dualsync/devhost"
	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

var (
	buildOnce  sync.Once
	handlerBin string
	buildErr   error
)

// handlerBinary builds the handler once per test process.
func handlerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dualsync-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		handlerBin = filepath.Join(dir, "handler")
		cmd := exec.Command("go", "build", "-o", handlerBin, "./handler")
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./handler: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return handlerBin
}

// layOut copies the app into dir as the deploy package lays it out.
func layOut(t *testing.T, dir string) {
	t.Helper()
	root := testenv.RepoRoot(t)
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cp(filepath.Join(root, "host.json"), filepath.Join(dir, "host.json"))
	cp(filepath.Join(root, "local.settings.json"), filepath.Join(dir, "local.settings.json"))
	cp(handlerBinary(t), filepath.Join(dir, "handler"))
	fns, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if err != nil || len(fns) == 0 {
		t.Fatalf("no function.json files: %v", err)
	}
	for _, f := range fns {
		cp(f, filepath.Join(dir, filepath.Base(filepath.Dir(f)), "function.json"))
	}
}

// stack is one running app with the parts a test can break.
type stack struct {
	t                 *testing.T
	url               string // devhost's base URL
	primary, fallback store.DB
	primaryProxy      *testenv.Proxy
	fallbackProxy     *testenv.Proxy
	azurite           *testenv.Azurite
	log               *syncBuffer
	// primaryURL and fallbackURL reach the databases straight (backups,
	// restores); dir is the app's folder, whose handler devhost runs.
	primaryURL, fallbackURL string
	dir                     string
}

// settings a test may override; these defaults make retries and the relay
// fast enough for tests.
func defaultSettings() map[string]string {
	return map[string]string{
		"OutboxRelaySchedule": "*/1 * * * * *",
		"NightlySyncSchedule": "0 0 0 1 1 *",
		"OUTBOX_RESEND_AFTER": "3s",
		"BREAKER_COOLDOWN":    "1s",
		"DB_CONNECT_TIMEOUT":  "1s",
		"DB_QUERY_TIMEOUT":    "3s",
		"LOG_LEVEL":           "warn",
		"AzureFunctionsJobHost__extensions__queues__visibilityTimeout":  "00:00:01",
		"AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:00.500",
	}
}

func startStack(t *testing.T, overrides map[string]string) *stack {
	t.Helper()
	return startStackVia(t, overrides, nil)
}

// startStackVia is startStack with the app's storage connection string
// passed through via (e.g. to put a fault proxy in front of Azurite); each
// of hostOpts may change devhost's options (e.g. its queue lease).
func startStackVia(t *testing.T, overrides map[string]string, via func(conn string) string, hostOpts ...func(*devhost.Options)) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{t: t, log: &syncBuffer{}}
	s.azurite = testenv.StartAzurite(t)
	storage := s.azurite.ConnString()
	if via != nil {
		storage = via(storage)
	}

	openDB := func(role store.Role) (store.DB, *testenv.Proxy, string, string) {
		raw := testenv.CreateDatabase(t)
		if role == store.RolePrimary {
			s.primaryURL = raw
		} else {
			s.fallbackURL = raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		proxy := testenv.NewProxy(t, u.Host)
		u.Host = proxy.Addr()
		// The test's own connection goes straight to PostgreSQL, so it can
		// check a database while the app is cut off from it.
		db, err := database.Open(ctx, raw, role, database.Options{ConnectTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db, proxy, u.String(), raw
	}
	var primaryURL, fallbackURL string
	s.primary, s.primaryProxy, primaryURL, s.primaryURL = openDB(store.RolePrimary)
	s.fallback, s.fallbackProxy, fallbackURL, s.fallbackURL = openDB(store.RoleFallback)

	set := defaultSettings()
	set["PRIMARY_DATABASE_URL"] = primaryURL
	set["FALLBACK_DATABASE_URL"] = fallbackURL
	set["SyncStorage"] = storage
	set["AzureWebJobsStorage"] = storage
	for k, v := range overrides {
		set[k] = v
	}
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range set {
		environ = append(environ, k+"="+v)
	}

	dir := t.TempDir()
	s.dir = dir
	layOut(t, dir)
	opts := devhost.Options{ListenAddr: "127.0.0.1:0", Environ: environ, Stdout: s.log, Stderr: s.log}
	for _, f := range hostOpts {
		f(&opts)
	}
	host, err := devhost.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- host.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("devhost: %v", err)
		}
		if t.Failed() {
			t.Logf("devhost and handler output:\n%s", s.log.String())
		}
	})
	select {
	case <-host.Ready():
	case err := <-done:
		t.Fatalf("devhost stopped: %v\n%s", err, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("devhost not ready within 60s\n%s", s.log.String())
	}
	s.url = host.URL()
	return s
}

// syncBuffer collects output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends a request and decodes a JSON answer into out (if non-nil).
func (s *stack) call(method, path, body string, out any) (int, http.Header) {
	s.t.Helper()
	status, h, b, err := s.try(method, path, body)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, status, b, err)
		}
	}
	return status, h
}

// try is call without failing the test, for drills that expect errors.
func (s *stack) try(method, path, body string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// apiProduct is a product as the API returns it.
type apiProduct struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       string `json:"price"`
	UpdatedAt   string `json:"updatedAt"`
}

// runStatus is the status body of a sync run.
type runStatus struct {
	InstanceID    string `json:"instanceId"`
	Name          string `json:"name"`
	RuntimeStatus string `json:"runtimeStatus"`
	CustomStatus  struct {
		Total  int64            `json:"total"`
		Done   int64            `json:"done"`
		Counts map[string]int64 `json:"counts"`
		Reason string           `json:"reason"`
		// Retrying counts items waiting for their next attempt.
		Retrying int64 `json:"retrying"`
	} `json:"customStatus"`
	Output []struct {
		Status string `json:"status"`
		ID     int64  `json:"id"`
		Reason string `json:"reason"`
	} `json:"output"`
}

// startRun starts a product or user run and returns its id.
func (s *stack) startRun(body string) string {
	s.t.Helper()
	var start struct {
		ID     string    `json:"id"`
		Status runStatus `json:"status"`
	}
	status, h := s.call("POST", "/api/start-product-sync/ProductSyncOrchestrator", body, &start)
	if status != http.StatusAccepted || start.ID == "" || h.Get("Location") != "/api/product-sync/"+start.ID {
		s.t.Fatalf("start: %d %+v Location %q", status, start, h.Get("Location"))
	}
	return start.ID
}

// waitRun polls a run's status until it is final.
func (s *stack) waitRun(id string, timeout time.Duration) runStatus {
	s.t.Helper()
	var st runStatus
	testenv.WaitFor(s.t, timeout, "run "+id+" to finish", func() bool {
		code, _ := s.call("GET", "/api/product-sync/"+id, "", &st)
		switch st.RuntimeStatus {
		case "Completed", "Failed":
			if code != http.StatusOK {
				s.t.Fatalf("final status answered %d", code)
			}
			return true
		default:
			if code != http.StatusAccepted {
				s.t.Fatalf("running status answered %d", code)
			}
			return false
		}
	})
	return st
}

// snapshot is every row of one database, tombstones included, by entity and id.
type snapshot map[string]string

func takeSnapshot(t *testing.T, db store.DB) snapshot {
	t.Helper()
	ctx := context.Background()
	snap := snapshot{}
	for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		for after := int64(0); ; {
			ids, err := db.IDs(ctx, e, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) == 0 {
				break
			}
			for _, id := range ids {
				var row any
				var ok bool
				if e == domain.EntityProduct {
					row, ok, err = db.LoadProduct(ctx, id)
				} else {
					row, ok, err = db.LoadUser(ctx, id)
				}
				if err != nil || !ok {
					t.Fatalf("load %s %d: %v %v", e, id, ok, err)
				}
				snap[fmt.Sprintf("%s %d", e, id)] = fmt.Sprintf("%+v", deref(row))
			}
			after = ids[len(ids)-1]
		}
	}
	return snap
}

// deref prints tombstone times by value rather than as pointers, and
// leaves out the jump: local to each database (domain.Product.Jump).
func deref(row any) any {
	switch r := row.(type) {
	case domain.Product:
		r.Jump = domain.Jump{}
		return struct {
			P       domain.Product
			Deleted string
		}{withoutDeleted(r), timeString(r.DeletedAt)}
	case domain.User:
		u := r
		u.Jump = domain.Jump{}
		d := timeString(u.DeletedAt)
		u.DeletedAt = nil
		return struct {
			U       domain.User
			Deleted string
		}{u, d}
	}
	return row
}

func withoutDeleted(p domain.Product) domain.Product { p.DeletedAt = nil; return p }

func timeString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return domain.FormatTime(*t)
}

// differing lists the keys whose rows differ between two snapshots.
func differing(a, b snapshot) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}
