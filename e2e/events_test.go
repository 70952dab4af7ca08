package e2e

import (
	"net/http"
	"testing"
	"time"

	"dualsync/internal/event"
	"dualsync/internal/testenv"
)

// events returns the records of event name in the devhost console (the
// handler's stderr as devhost prints it, as under `make run`).
func (s *stack) events(name string) []map[string]any {
	var l testenv.Logs
	_, _ = l.Write([]byte(s.log.String()))
	return l.Events(name)
}

// An outage of the primary, through devhost and the real handler: the
// console shows breaker_opened once, then failback_done once the relay and
// sync have drained the fallback's outbox, and health details tell when.
func TestOperatorEventsInConsoleAndHealth(t *testing.T) {
	s := startStack(t, map[string]string{"LOG_LEVEL": "info"})
	type details struct {
		Status       string `json:"status"`
		Serving      string `json:"serving"`
		Breaker      string `json:"breaker"`
		LastFailover string `json:"lastFailover"`
		LastFailback string `json:"lastFailback"`
		Storage      map[string]struct {
			Status string `json:"status"`
		} `json:"storage"`
		Databases map[string]struct {
			OutboxDepth            int64 `json:"outboxDepth"`
			OutboxOldestAgeSeconds int64 `json:"outboxOldestAgeSeconds"`
		} `json:"databases"`
	}
	var d details
	if code, _ := s.call("GET", "/api/health/details", "", &d); code != http.StatusOK || d.Status != "ok" ||
		d.Storage["queue"].Status != "ok" || d.Storage["table"].Status != "ok" || d.LastFailover != "" {
		t.Fatalf("health details at start: %d %+v", code, d)
	}

	s.primaryProxy.Cut()
	testenv.WaitFor(t, 30*time.Second, "a write to land on the fallback", func() bool {
		code, _, _, err := s.try("POST", "/api/products", `{"name":"during the outage","price":"2.50"}`)
		return err == nil && code == http.StatusCreated
	})
	testenv.WaitFor(t, 10*time.Second, "breaker_opened in the console", func() bool { return len(s.events(event.BreakerOpened)) > 0 })
	if code, _ := s.call("GET", "/api/health/details", "", &d); code != http.StatusOK || d.Serving != "fallback" || d.LastFailover == "" || d.Status != "degraded" {
		t.Fatalf("health details during the outage: %d %+v", code, d)
	}

	s.primaryProxy.Restore()
	testenv.WaitFor(t, 60*time.Second, "failback_done in the console", func() bool {
		_, _, _, _ = s.try("GET", "/api/products?limit=1", "")
		return len(s.events(event.FailbackDone)) > 0
	})
	if code, _ := s.call("GET", "/api/health/details", "", &d); code != http.StatusOK || d.Breaker != "closed" || d.LastFailback == "" || d.LastFailback < d.LastFailover {
		t.Fatalf("health details after failback: %d %+v", code, d)
	}
	if n := len(s.events(event.BreakerOpened)); n != 1 {
		t.Errorf("%d breaker_opened records for one outage, want 1", n)
	}
	fb := s.events(event.FailbackDone)
	if len(fb) != 1 || fb[0]["database"] != "primary" || fb[0]["outageSeconds"] == nil {
		t.Errorf("failback_done records = %v, want one naming the primary and the outage's length", fb)
	}
}
