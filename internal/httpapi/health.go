package httpapi

import "net/http"

// health answers 503 only when neither database answers, so the host's
// probes keep the app in rotation while it serves from the fallback.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	h := s.checker.Health(r.Context())
	status := http.StatusOK
	if h.Status == "down" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}
