package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"dualsync/internal/failover"
)

// probeTTL is how long the anonymous probe reuses a health check. Anyone may
// call /api/health, and each check pings both databases and counts their
// outboxes: without reuse, an anonymous flood would become database load.
const probeTTL = 2 * time.Second

// health is the anonymous probe (function Health, /api/health): whether the
// app is up, nothing more. Drivers, breaker state, error texts and outbox
// depths help an attacker map the system, so they are served only by
// healthDetails, whose function needs a key. Both answer 503 only when
// neither database answers, so the host's probes keep the app in rotation
// while it serves from the fallback.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	var h failover.Health
	if s.probe != nil {
		h = s.probe.get(r.Context(), s.check)
	} else {
		h = s.check(r.Context())
	}
	writeJSON(w, healthStatus(h.Status), map[string]string{"status": h.Status})
}

// healthDetails (function HealthDetails, /api/health/details, authLevel
// function) is the full report, always fresh: which database serves, the
// breaker, each database's driver, reachability, outbox depth and oldest
// entry's age, storage, the last nightly run, the last failover and failback.
func (s *server) healthDetails(w http.ResponseWriter, r *http.Request) {
	d := s.details(r.Context())
	writeJSON(w, healthStatus(d.Status), d)
}

func healthStatus(status string) int {
	if status == "down" {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// probeCache reuses one health check for probeTTL. Concurrent callers wait
// for the check in flight instead of starting their own.
type probeCache struct {
	now func() time.Time

	mu   sync.Mutex
	at   time.Time
	last failover.Health
	ok   bool
}

func newProbeCache() *probeCache { return &probeCache{now: time.Now} }

func (c *probeCache) get(ctx context.Context, check func(context.Context) failover.Health) failover.Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && c.now().Sub(c.at) < probeTTL {
		return c.last
	}
	// The check outlives a caller that gives up: its result serves the next.
	c.last = check(context.WithoutCancel(ctx))
	c.at, c.ok = c.now(), true
	return c.last
}
