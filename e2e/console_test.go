package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// The console on call: what the dashboard polls (health, runs, results,
// its own page) writes no host Executing/Executed lines on success
// (host.json logging.logLevel, as in Azure), while the API's own functions
// still do, so a person reading `make run` sees what happened, not the
// dashboard's polling.
func TestPollingFunctionsQuiet(t *testing.T) {
	s := startStack(t, nil)
	for _, tc := range []struct {
		function, path string
		logged         bool
	}{
		{"Health", "/api/health", false},
		{"HealthDetails", "/api/health/details", false},
		{"ProductSyncStatus", "/api/product-sync?limit=20", false},
		{"Dashboard", "/api/dashboard", false},
		{"Products", "/api/products?limit=1", true},
	} {
		t.Run(tc.function, func(t *testing.T) {
			code, _, _, err := s.try("GET", tc.path, "")
			if err != nil || code != http.StatusOK {
				t.Fatalf("GET %s: %d %v", tc.path, code, err)
			}
			log := s.log.String()
			for _, line := range []string{"Executing 'Functions." + tc.function + "'", "Executed 'Functions." + tc.function + "' (Succeeded"} {
				got := strings.Contains(log, line)
				if tc.logged && strings.HasPrefix(line, "Executed") {
					continue // written once the response is out: it may come after this read
				}
				if got != tc.logged {
					t.Errorf("host log has %q: %v, want %v", line, got, tc.logged)
				}
			}
		})
	}
}
