package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"dualsync/internal/failover"
	"dualsync/internal/syncer"
)

type fixedHealth failover.Health

func (f fixedHealth) Health(context.Context) failover.Health { return failover.Health(f) }

// The anonymous probe tells only whether the app is up; the detail is on
// the keyed route.
func TestHealthAnonymousAndDetails(t *testing.T) {
	for _, tc := range []struct {
		status string
		code   int
	}{{"ok", 200}, {"degraded", 200}, {"down", 503}} {
		t.Run(tc.status, func(t *testing.T) {
			h := failover.Health{Status: tc.status, Serving: "fallback", Breaker: "open", Databases: map[string]failover.DBHealth{
				"primary":  {Driver: "sqlserver", Error: "unavailable: database did not answer"},
				"fallback": {Driver: "postgres", Reachable: true, OutboxDepth: new(int64(7))},
			}}
			s := &server{checker: fixedHealth(h)}

			rec := httptest.NewRecorder()
			s.health(rec, httptest.NewRequest("GET", "/api/health", nil))
			var anon map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &anon); err != nil || rec.Code != tc.code {
				t.Fatalf("/api/health: %d %s (%v), want %d", rec.Code, rec.Body, err, tc.code)
			}
			if len(anon) != 1 || anon["status"] != tc.status {
				t.Errorf("/api/health body %s, want only {\"status\":%q}", rec.Body, tc.status)
			}

			rec = httptest.NewRecorder()
			s.healthDetails(rec, httptest.NewRequest("GET", "/api/health/details", nil))
			var got failover.Health
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != tc.code {
				t.Fatalf("/api/health/details: %d %s (%v), want %d", rec.Code, rec.Body, err, tc.code)
			}
			if got.Serving != "fallback" || got.Breaker != "open" || got.Databases["fallback"].OutboxDepth == nil || *got.Databases["fallback"].OutboxDepth != 7 || got.Databases["primary"].OutboxDepth != nil || got.Databases["primary"].Driver != "sqlserver" {
				t.Errorf("/api/health/details body %s lacks the detail", rec.Body)
			}
		})
	}
}

type countingHealth struct {
	mu sync.Mutex
	n  int
}

func (c *countingHealth) Health(context.Context) failover.Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return failover.Health{Status: "ok"}
}

func (c *countingHealth) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Anonymous probes reuse a recent check, so a flood of them does not become
// database load; the keyed details are always fresh.
func TestAnonymousHealthReusesRecentCheck(t *testing.T) {
	checker := &countingHealth{}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	probe := newProbeCache()
	probe.now = func() time.Time { return now }
	s := &server{checker: checker, probe: probe}
	anon := func() {
		rec := httptest.NewRecorder()
		s.health(rec, httptest.NewRequest("GET", "/api/health", nil))
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(anon)
	}
	wg.Wait()
	if n := checker.calls(); n != 1 {
		t.Fatalf("50 probes within the TTL ran %d checks, want 1", n)
	}
	now = now.Add(probeTTL)
	anon()
	if n := checker.calls(); n != 2 {
		t.Fatalf("a probe after the TTL ran %d checks in all, want 2", n)
	}
	s.healthDetails(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/health/details", nil))
	s.healthDetails(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/health/details", nil))
	if n := checker.calls(); n != 4 {
		t.Fatalf("two detail calls ran %d checks in all, want 4 (never cached)", n)
	}
}

// Storage and the last nightly run in health: a storage service that fails
// its check lowers ok to degraded (never to down: the API still serves),
// and the details say which one and why, without the SDK's text.
func TestHealthStorageAndNightly(t *testing.T) {
	down := errors.New("dial tcp 127.0.0.1:1: connect: connection refused (https://acct.queue.core.windows.net)")
	nightly := syncer.NightlyRun{ID: "r1", Entity: "product", Status: "Completed", FinishedTime: "2026-01-02T00:01:00.000Z",
		Total: 3, Counts: map[string]int64{"created": 2, "failed": 1}}
	for _, tc := range []struct {
		name       string
		db         string
		queueErr   error
		wantStatus string
		wantCode   int
	}{
		{"all up", "ok", nil, "ok", 200},
		{"queue down", "ok", down, "degraded", 200},
		{"queue down, databases degraded", "degraded", down, "degraded", 200},
		{"queue down, databases down", "down", down, "down", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := failover.Health{Status: tc.db, Serving: "primary", Breaker: "closed", LastFailover: "2026-01-01T00:00:00.000Z",
				Databases: map[string]failover.DBHealth{"primary": {Reachable: true, OutboxOldestAgeSeconds: 42}}}
			s := &server{checker: fixedHealth(h)}
			WithStorage(
				StorageCheck{Name: "queue", Check: func(context.Context) error { return tc.queueErr }},
				StorageCheck{Name: "table", Check: func(context.Context) error { return nil }})(s)
			WithNightly(func(context.Context) (syncer.NightlyRun, bool, error) { return nightly, true, nil })(s)

			rec := httptest.NewRecorder()
			s.health(rec, httptest.NewRequest("GET", "/api/health", nil))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), `"status":"`+tc.wantStatus+`"`) {
				t.Fatalf("/api/health: %d %s, want %d %s", rec.Code, rec.Body, tc.wantCode, tc.wantStatus)
			}
			rec = httptest.NewRecorder()
			s.healthDetails(rec, httptest.NewRequest("GET", "/api/health/details", nil))
			var got Details
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != tc.wantCode || got.Status != tc.wantStatus {
				t.Fatalf("/api/health/details: %d %s (%v)", rec.Code, rec.Body, err)
			}
			q := got.Storage["queue"]
			if tc.queueErr == nil && (q.Status != "ok" || q.Reason != "") {
				t.Errorf("queue = %+v, want ok", q)
			}
			if tc.queueErr != nil && (q.Status != "down" || q.Reason != "Queue Storage is unreachable") {
				t.Errorf("queue = %+v, want down, unreachable, nothing of the SDK's text", q)
			}
			if got.Storage["table"].Status != "ok" {
				t.Errorf("table = %+v", got.Storage["table"])
			}
			if got.LastNightlyRun == nil || got.LastNightlyRun.ID != "r1" || got.LastNightlyRun.Counts["failed"] != 1 || got.LastNightlyRun.FinishedTime == "" {
				t.Errorf("lastNightlyRun = %+v", got.LastNightlyRun)
			}
			if got.LastFailover == "" || got.Databases["primary"].OutboxOldestAgeSeconds != 42 {
				t.Errorf("details lost the databases' part: %s", rec.Body)
			}
		})
	}
}
