package problem

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"dualsync/internal/domain"
)

func TestError(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.5:1433: password=hunter2")
	tests := []struct {
		name       string
		err        error
		status     int
		detail     string
		fields     map[string]string
		logged     bool
		hideDetail bool
	}{
		{"invalid with fields", &domain.Error{Kind: domain.KindInvalid, Message: "invalid fields", Fields: map[string]string{"price": "must be >= 0"}},
			400, "invalid fields", map[string]string{"price": "must be >= 0"}, false, false},
		{"not found", domain.Errorf(domain.KindNotFound, "product 9 not found"), 404, "product 9 not found", nil, false, false},
		{"conflict", domain.Errorf(domain.KindConflict, "email taken"), 409, "email taken", nil, false, false},
		{"unavailable keeps its safe message, hides the cause", domain.Wrap(domain.KindUnavailable, secret, "the database is unavailable"),
			503, "the database is unavailable", nil, true, false},
		{"internal hides everything", domain.Wrap(domain.KindInternal, secret, "scan failed"), 500, "", nil, true, true},
		{"plain error is internal", secret, 500, "", nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			w := httptest.NewRecorder()
			Error(w, httptest.NewRequest("GET", "/api/x", nil), log, tt.err)
			if w.Code != tt.status || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, type %q", w.Code, w.Header().Get("Content-Type"))
			}
			var d Details
			if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			if d.Status != tt.status || d.Title != http.StatusText(tt.status) || d.Instance != "/api/x" {
				t.Errorf("details %+v", d)
			}
			if !tt.hideDetail && d.Detail != tt.detail {
				t.Errorf("detail %q, want %q", d.Detail, tt.detail)
			}
			if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "10.0.0.5") {
				t.Errorf("the cause reached the client: %s", w.Body.String())
			}
			if len(tt.fields) != len(d.Errors) || (tt.fields != nil && d.Errors["price"] != tt.fields["price"]) {
				t.Errorf("errors %v, want %v", d.Errors, tt.fields)
			}
			if got := strings.Contains(logs.String(), "hunter2"); got != tt.logged {
				t.Errorf("cause logged = %v, want %v", got, tt.logged)
			}
		})
	}
}
