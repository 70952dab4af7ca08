package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"dualsync/internal/domain"
	"dualsync/internal/invoke"
	"dualsync/internal/problem"
	"dualsync/internal/syncer"
)

// Syncer is what the sync routes and the queue/timer functions need from
// the sync engine.
type Syncer interface {
	Start(ctx context.Context, req syncer.StartRequest) (syncer.RunStatus, error)
	Status(ctx context.Context, id string) (syncer.RunStatus, error)
	Runs(ctx context.Context, limit int) ([]syncer.RunStatus, error)
	Results(ctx context.Context, partition, status string, limit int, token string) (syncer.ResultsPage, error)

	SyncDelivered(ctx context.Context, m syncer.Message, d syncer.Delivery) error
	ItemPoisoned(ctx context.Context, m syncer.Message) error
	Plan(ctx context.Context, m syncer.PlanMessage, d syncer.Delivery) error
	PlanPoisoned(ctx context.Context, m syncer.PlanMessage) error
	Nightly(ctx context.Context) error
	Relay(ctx context.Context) error

	FindRuns(ctx context.Context, q syncer.RunQuery) ([]syncer.RunStatus, error)
	RetryFailed(ctx context.Context, id string) (syncer.RetryStarted, error)
	Item(ctx context.Context, partition string, e domain.Entity, id int64) (syncer.ItemHistory, error)
	Retain(ctx context.Context) error
}

type syncRoutes struct {
	log  *slog.Logger
	sync Syncer
}

// startBody is the optional body of a start request.
type startBody struct {
	Entity domain.Entity `json:"entity"`
	Mode   string        `json:"mode"` // full (the default here), diff or verify
}

// start creates a run and answers 202 at once; the fan-out runs in the queue.
func (h syncRoutes) start(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		problem.New(w, r, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
		return
	}
	body = bytes.TrimSpace(body)
	name, ok := orchestrator(r.PathValue("orchestrator"))
	if !ok {
		problem.New(w, r, http.StatusNotFound, "no orchestrator named "+strconv.Quote(r.PathValue("orchestrator"))+": the one there is is "+defaultOrchestrator)
		return
	}
	req := syncer.StartRequest{Name: name, Trigger: "http"}
	// One rule with the other routes: a body is JSON, said so (an empty
	// body needs no Content-Type).
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); len(body) > 0 && (err != nil || mt != "application/json") {
		problem.New(w, r, http.StatusUnsupportedMediaType, "the request body must be sent as Content-Type: application/json")
		return
	}
	if len(body) > 0 {
		var sb startBody
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sb); err != nil {
			problem.Error(w, r, h.log, &domain.Error{Kind: domain.KindInvalid, Message: "the body must be empty or a JSON object such as {\"entity\":\"user\",\"mode\":\"diff\"}"})
			return
		}
		if sb.Entity != "" && !sb.Entity.Valid() {
			problem.Error(w, r, h.log, &domain.Error{Kind: domain.KindInvalid, Message: "invalid fields",
				Fields: map[string]string{"entity": "must be product or user"}})
			return
		}
		if sb.Mode != "" && !syncer.ValidMode(sb.Mode) {
			problem.Error(w, r, h.log, &domain.Error{Kind: domain.KindInvalid, Message: "invalid fields",
				Fields: map[string]string{"mode": "must be full, diff or verify"}})
			return
		}
		req.Entity, req.Input, req.Mode = sb.Entity, string(body), sb.Mode
	}
	st, err := h.sync.Start(r.Context(), req)
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", "/api/product-sync/"+st.InstanceID)
	writeJSON(w, http.StatusAccepted, map[string]any{
		"id":      st.InstanceID,
		"status":  st,
		"message": "Product sync orchestration started",
	})
}

// defaultOrchestrator is the original version's one orchestrator, and the
// name of a run started without one.
const defaultOrchestrator = "ProductSyncOrchestrator"

// orchestrator resolves the name in the start URL: empty or the known one.
// Any other name is a typo that must not start a run under that name.
func orchestrator(name string) (string, bool) {
	if name == "" || name == defaultOrchestrator {
		return defaultOrchestrator, true
	}
	return "", false
}

// status answers 202 while the run is pending or running, 200 once final.
func (h syncRoutes) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.sync.Status(r.Context(), r.PathValue("run"))
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	code := http.StatusAccepted
	if st.Final() {
		code = http.StatusOK
	} else {
		w.Header().Set("Location", r.URL.Path)
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, st)
}

func (h syncRoutes) list(w http.ResponseWriter, r *http.Request) {
	q, ok := runQuery(w, r)
	if !ok {
		return
	}
	runs, err := h.sync.FindRuns(r.Context(), q)
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, runs)
}

// results pages through a run's outcomes (or a real-time partition's,
// realtime-YYYYMMDD) with a continuation token.
func (h syncRoutes) results(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryLimit(w, r, 100, 1000)
	if !ok {
		return
	}
	q := r.URL.Query()
	page, err := h.sync.Results(r.Context(), r.PathValue("run"), q.Get("status"), limit, q.Get("continuation"))
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	if page.Next != "" {
		next := url.Values{"continuation": {page.Next}, "limit": {strconv.Itoa(limit)}}
		if s := q.Get("status"); s != "" {
			next.Set("status", s)
		}
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+">; rel=\"next\"")
	}
	writeJSON(w, http.StatusOK, page)
}

func queryLimit(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		problem.New(w, r, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(max))
		return 0, false
	}
	return n, true
}

// Queue- and timer-triggered functions. The host posts an invocation
// envelope; an error answers 500, which makes the host retry a queue message.

// syncProduct hands the engine the delivery: a redelivered item may find
// its earlier attempt's work done and its record lost (syncer.SyncDelivered).
func (h syncRoutes) syncProduct() http.Handler {
	return deliveredFunc(h.log, h.sync.SyncDelivered)
}

func (h syncRoutes) syncProductPoison() http.Handler {
	return queueFunc(h.log, h.sync.ItemPoisoned)
}

// planProductSync hands the planner the queue message's id: a page belongs
// to the message that recorded it (runs.go).
func (h syncRoutes) planProductSync() http.Handler {
	return deliveredFunc(h.log, h.sync.Plan)
}

func (h syncRoutes) planProductSyncPoison() http.Handler {
	return queueFunc(h.log, h.sync.PlanPoisoned)
}

// nightly starts the nightly runs, then deletes what retention says has
// expired. Retention has no timer of its own: on Flex Consumption every
// non-HTTP function is a scale group of its own, and each group's instances
// hold database connections (docs/scale.md).
func (h syncRoutes) nightly() http.Handler {
	return timerFunc(h.log, func(ctx context.Context) error {
		return errors.Join(h.sync.Nightly(ctx), h.sync.Retain(ctx))
	})
}

func (h syncRoutes) relay() http.Handler {
	return timerFunc(h.log, h.sync.Relay)
}

// queueBinding is the binding name of every queue trigger's message in
// function.json.
const queueBinding = "msg"

func queueFunc[M any](log *slog.Logger, fn func(context.Context, M) error) http.Handler {
	return deliveredFunc(log, func(ctx context.Context, m M, _ syncer.Delivery) error { return fn(ctx, m) })
}

// deliveredFunc is queueFunc for consumers that need the delivery: the
// message's id and how often the queue has handed it out.
func deliveredFunc[M any](log *slog.Logger, fn func(context.Context, M, syncer.Delivery) error) http.Handler {
	return invoke.Handler(log, func(ctx context.Context, req invoke.Request) (invoke.Response, error) {
		var m M
		if err := req.Bind(queueBinding, &m); err != nil {
			// A message that cannot be decoded never will be: drop it
			// (with a log line) rather than retry it into the poison queue.
			log.ErrorContext(ctx, "dropping an undecodable queue message", "err", err, "id", req.MetaString("Id"))
			return invoke.Response{Logs: []string{"undecodable message dropped"}}, nil
		}
		n, _ := strconv.Atoi(req.MetaString("DequeueCount"))
		return invoke.Response{}, fn(ctx, m, syncer.Delivery{MessageID: req.MetaString("Id"), DequeueCount: n})
	})
}

func timerFunc(log *slog.Logger, fn func(context.Context) error) http.Handler {
	return invoke.Handler(log, func(ctx context.Context, req invoke.Request) (invoke.Response, error) {
		return invoke.Response{}, fn(ctx)
	})
}
