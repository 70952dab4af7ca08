package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"dualsync/internal/domain"
)

// writeList must answer exactly what json.Marshal would, nil included.
func TestWriteListMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	p := domain.Product{ID: 1, Name: `A "quoted" <name>`, Description: "\u2028", Price: 1999, CreatedAt: at, UpdatedAt: at}
	tests := []struct {
		name  string
		items []domain.Product
		want  string
	}{
		{"nil", nil, "[]"},
		{"empty", []domain.Product{}, "[]"},
		{"one", []domain.Product{p}, ""},
		{"three", []domain.Product{p, p, p}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				b, err := json.Marshal(tc.items)
				if err != nil {
					t.Fatal(err)
				}
				want = string(b)
			}
			w := httptest.NewRecorder()
			writeList(w, tc.items)
			if got := w.Body.String(); got != want+"\n" {
				t.Fatalf("body %q, want %q", got, want+"\n")
			}
			if w.Code != 200 || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
			}
		})
	}
}
