package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLogRequestsLevels(t *testing.T) {
	tests := []struct {
		name   string
		level  slog.Level // the logger's
		status int
		want   string // "" = no line
	}{
		{"2xx hidden at info", slog.LevelInfo, http.StatusOK, ""},
		{"4xx hidden at info", slog.LevelInfo, http.StatusNotFound, ""},
		{"2xx shown at debug", slog.LevelDebug, http.StatusOK, "level=DEBUG"},
		{"5xx shown at info as a warning", slog.LevelInfo, http.StatusServiceUnavailable, "level=WARN"},
		{"5xx hidden at error", slog.LevelError, http.StatusInternalServerError, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			h := logRequests(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) }))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/products/7", nil))
			got := buf.String()
			if tc.want == "" {
				if got != "" {
					t.Fatalf("logged %q, want nothing", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) || !strings.Contains(got, "path=/api/products/7") {
				t.Fatalf("logged %q, want a %s line with the path", got, tc.want)
			}
		})
	}
}
