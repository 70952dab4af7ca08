package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The runs list's filters: what parses, and a clear 400 for what does not.
func TestRunQuery(t *testing.T) {
	for _, c := range []struct {
		query      string
		ok         bool
		from, to   string
		status     string
		wantLimit  int
		wantEntity string
	}{
		{"", true, "", "", "", 20, ""},
		{"?limit=5&status=Completed&entity=user", true, "", "", "Completed", 5, "user"},
		{"?from=2026-12-03&to=2026-12-04T10:00:00Z", true, "2026-12-03T00:00:00Z", "2026-12-04T10:00:00Z", "", 20, ""},
		{"?from=2026-12-03T10:00:00%2B01:00", true, "2026-12-03T09:00:00Z", "", "", 20, ""},
		{"?from=yesterday", false, "", "", "", 0, ""},
		{"?to=2026-13-01", false, "", "", "", 0, ""},
		{"?from=2026-12-04&to=2026-12-03", false, "", "", "", 0, ""},
		{"?limit=0", false, "", "", "", 0, ""},
	} {
		w := httptest.NewRecorder()
		q, ok := runQuery(w, httptest.NewRequest("GET", "/api/product-sync"+c.query, nil))
		if ok != c.ok {
			t.Errorf("%q: ok %v, want %v (%d %s)", c.query, ok, c.ok, w.Code, w.Body)
			continue
		}
		if !ok {
			if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%q: answered %d %s, want a 400 problem", c.query, w.Code, w.Header().Get("Content-Type"))
			}
			continue
		}
		str := func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		}
		if str(q.From) != c.from || str(q.To) != c.to || q.Status != c.status || q.Limit != c.wantLimit || string(q.Entity) != c.wantEntity {
			t.Errorf("%q: %+v", c.query, q)
		}
	}
}
