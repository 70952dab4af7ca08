package httpapi

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"dualsync/internal/failover"
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
				"fallback": {Driver: "postgres", Reachable: true, OutboxDepth: 7},
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
			if got.Serving != "fallback" || got.Breaker != "open" || got.Databases["fallback"].OutboxDepth != 7 || got.Databases["primary"].Driver != "sqlserver" {
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
