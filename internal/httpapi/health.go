package httpapi

import "net/http"

// health is the anonymous probe (function Health, /api/health): whether the
// app is up, nothing more. Drivers, breaker state, error texts and outbox
// depths help an attacker map the system, so they are served only by
// healthDetails, whose function needs a key. Both answer 503 only when
// neither database answers, so the host's probes keep the app in rotation
// while it serves from the fallback.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	h := s.checker.Health(r.Context())
	writeJSON(w, healthStatus(h.Status), map[string]string{"status": h.Status})
}

// healthDetails (function HealthDetails, /api/health/details, authLevel
// function) is the full report: which database serves, the breaker, each
// database's driver, reachability and outbox depth.
func (s *server) healthDetails(w http.ResponseWriter, r *http.Request) {
	h := s.checker.Health(r.Context())
	writeJSON(w, healthStatus(h.Status), h)
}

func healthStatus(status string) int {
	if status == "down" {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}
