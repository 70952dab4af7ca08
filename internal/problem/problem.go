// Package problem writes RFC 9457 problem+json error responses and is the one
// place where an error's kind becomes an HTTP status.
package problem

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"dualsync/internal/domain"
)

// Details is an RFC 9457 problem document; Errors holds per-field messages
// for validation failures.
type Details struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Errors   map[string]string `json:"errors,omitempty"`
}

// Status maps an error kind to its HTTP status.
func Status(k domain.Kind) int {
	switch k {
	case domain.KindInvalid:
		return http.StatusBadRequest
	case domain.KindNotFound:
		return http.StatusNotFound
	case domain.KindConflict:
		return http.StatusConflict
	case domain.KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error writes err as a problem. The client sees the message of a kinded
// error; internal errors are logged with their cause and shown generically.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	kind := domain.ErrorKind(err)
	status := Status(kind)
	d := Details{Status: status, Instance: r.URL.Path}
	var de *domain.Error
	if kind != domain.KindInternal && errors.As(err, &de) {
		d.Detail, d.Errors = de.Message, de.Fields
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		if kind == domain.KindInternal {
			d.Detail = "an unexpected error occurred; it has been logged"
		}
	}
	Write(w, d)
}

// Write sends d, filling Type and Title from the status when empty.
func Write(w http.ResponseWriter, d Details) {
	if d.Type == "" {
		d.Type = "about:blank"
	}
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

// New writes a problem with a status and a detail.
func New(w http.ResponseWriter, r *http.Request, status int, detail string) {
	Write(w, Details{Status: status, Detail: detail, Instance: r.URL.Path})
}
