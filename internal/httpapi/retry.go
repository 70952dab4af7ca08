package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/problem"
	"dualsync/internal/syncer"
)

// The dashboard's API beyond the original's: retry a run's failed items,
// one item's outcome and attempt history, and the runs list's filters.

// retryFailed sends a finished run's failed items again and answers 202
// with the run's status URL; the retried items' outcomes replace the
// failed ones as they come in.
func (h syncRoutes) retryFailed(w http.ResponseWriter, r *http.Request) {
	res, err := h.sync.RetryFailed(r.Context(), r.PathValue("run"))
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/api/product-sync/"+res.ID)
	writeJSON(w, http.StatusAccepted, res)
}

// item answers one item's outcome in a run (or realtime-YYYYMMDD) and its
// failed attempts.
func (h syncRoutes) item(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		problem.New(w, r, http.StatusBadRequest, "the id must be a positive integer below 2^63")
		return
	}
	it, err := h.sync.Item(r.Context(), r.PathValue("run"), domain.Entity(r.PathValue("entity")), id)
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

// runQuery reads the runs list's query: limit, status, entity, from, to
// (RFC 3339 times or YYYY-MM-DD dates, UTC; from inclusive, to exclusive).
func runQuery(w http.ResponseWriter, r *http.Request) (syncer.RunQuery, bool) {
	limit, ok := queryLimit(w, r, 20, 100)
	if !ok {
		return syncer.RunQuery{}, false
	}
	q := r.URL.Query()
	rq := syncer.RunQuery{Limit: limit, Status: q.Get("status"), Entity: domain.Entity(q.Get("entity"))}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &rq.From}, {"to", &rq.To}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t, err = time.Parse(time.DateOnly, v)
		}
		if err != nil {
			problem.Error(w, r, nil, &domain.Error{Kind: domain.KindInvalid, Message: "invalid time filter",
				Fields: map[string]string{p.name: "must be an RFC 3339 time (2026-12-03T10:00:00Z) or a date (2026-12-03)"}})
			return syncer.RunQuery{}, false
		}
		*p.dst = t
	}
	if !rq.From.IsZero() && !rq.To.IsZero() && !rq.From.Before(rq.To) {
		problem.Error(w, r, nil, &domain.Error{Kind: domain.KindInvalid, Message: "invalid time filter",
			Fields: map[string]string{"to": "must be after from"}})
		return syncer.RunQuery{}, false
	}
	return rq, true
}
