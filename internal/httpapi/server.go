// Package httpapi serves the REST API for products and users.
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
	"strconv"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/failover"
	"dualsync/internal/problem"
	"dualsync/internal/store"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// Store is the API subset of store.DB the handlers need.
type Store interface {
	ListProducts(ctx context.Context, p store.Page) ([]domain.Product, error)
	GetProduct(ctx context.Context, id int64) (domain.Product, error)
	CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error)
	UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error)
	DeleteProduct(ctx context.Context, id int64) error

	ListUsers(ctx context.Context, p store.Page) ([]domain.User, error)
	GetUser(ctx context.Context, id int64) (domain.User, error)
	CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error)
	UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error)
	DeleteUser(ctx context.Context, id int64) error
}

// HealthChecker reports the databases' health.
type HealthChecker interface {
	Health(ctx context.Context) failover.Health
}

type server struct {
	log      *slog.Logger
	checker  HealthChecker
	probe    *probeCache // the anonymous /api/health reuses recent checks
	products resource[domain.Product, domain.ProductChange]
	users    resource[domain.User, domain.UserChange]
	sync     syncRoutes
	docs     docs
	ops      ops // storage checks and the last nightly run, for health (ops.go)
}

// NewServer returns the API handler with problem+json errors and request logging.
func NewServer(log *slog.Logger, db Store, health HealthChecker, sync Syncer, opts ...Option) http.Handler {
	s := &server{log: log, checker: health, probe: newProbeCache(), sync: syncRoutes{log: log, sync: sync}}
	for _, o := range opts {
		o(s)
	}
	s.products = productResource(log, db)
	s.users = userResource(log, db)
	s.docs = newDocs()
	mux := http.NewServeMux()
	s.routes(mux)
	return logRequests(log, problemErrors(mux))
}

func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// resource is the CRUD handler set shared by products and users.
type resource[T jsonAppender, C any] struct {
	log    *slog.Logger
	path   string // e.g. /api/products
	decode func([]byte, domain.Mode) (C, error)
	id     func(T) int64
	dbList func(context.Context, store.Page) ([]T, error)
	dbGet  func(context.Context, int64) (T, error)
	dbNew  func(context.Context, C) (T, error)
	dbUpd  func(context.Context, int64, C) (T, error)
	dbDel  func(context.Context, int64) error
}

func (h *resource[T, C]) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			problem.New(w, r, http.StatusBadRequest, "limit must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			problem.New(w, r, http.StatusBadRequest, "after must be a non-negative integer id")
			return
		}
		after = n
	}
	// One extra row tells whether a next page exists.
	items, err := h.dbList(r.Context(), store.Page{After: after, Limit: limit + 1})
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	if len(items) > limit {
		items = items[:limit]
		last := h.id(items[len(items)-1])
		w.Header().Set("Link", "<"+h.path+"?after="+strconv.FormatInt(last, 10)+"&limit="+strconv.Itoa(limit)+">; rel=\"next\"")
	}
	writeList(w, items)
}

func (h *resource[T, C]) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	v, err := h.dbGet(r.Context(), id)
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *resource[T, C]) create(w http.ResponseWriter, r *http.Request) {
	c, ok := readChange(w, r, h.log, h.decode, domain.ModeCreate)
	if !ok {
		return
	}
	v, err := h.dbNew(r.Context(), c)
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	w.Header().Set("Location", h.path+"/"+strconv.FormatInt(h.id(v), 10))
	writeJSON(w, http.StatusCreated, v)
}

func (h *resource[T, C]) replace(w http.ResponseWriter, r *http.Request) {
	h.update(w, r, domain.ModeReplace)
}

func (h *resource[T, C]) patch(w http.ResponseWriter, r *http.Request) {
	h.update(w, r, domain.ModePatch)
}

func (h *resource[T, C]) update(w http.ResponseWriter, r *http.Request, mode domain.Mode) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	c, ok := readChange(w, r, h.log, h.decode, mode)
	if !ok {
		return
	}
	v, err := h.dbUpd(r.Context(), id, c)
	if err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *resource[T, C]) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := h.dbDel(r.Context(), id); err != nil {
		problem.Error(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pathID parses {id}: a positive 64-bit integer, else 400.
func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		problem.New(w, r, http.StatusBadRequest, "the id must be a positive integer below 2^63")
		return 0, false
	}
	return id, true
}

// readChange checks the content type, reads at most maxBody bytes and decodes.
func readChange[C any](w http.ResponseWriter, r *http.Request, log *slog.Logger, decode func([]byte, domain.Mode) (C, error), mode domain.Mode) (C, bool) {
	var zero C
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		problem.New(w, r, http.StatusUnsupportedMediaType, "the request body must be sent as Content-Type: application/json")
		return zero, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.New(w, r, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
		} else {
			problem.New(w, r, http.StatusBadRequest, "the request body could not be read")
		}
		return zero, false
	}
	c, err := decode(body, mode)
	if err != nil {
		if domain.ErrorKind(err) == domain.KindInternal {
			log.ErrorContext(r.Context(), "decode failed", "err", err)
		}
		problem.Error(w, r, log, err)
		return zero, false
	}
	return c, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Detail: "the response could not be encoded"})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// jsonAppender is a domain type that appends its own JSON (domain/json.go).
type jsonAppender interface {
	AppendJSON(b []byte) []byte
}

// writeList answers 200 with items as a JSON array. Each item appends its
// own encoding: json.Marshal would call every element's MarshalJSON and
// re-scan its output, which made lists about 3.5× slower to encode.
func writeList[T jsonAppender](w http.ResponseWriter, items []T) {
	b := make([]byte, 0, 2+len(items)*160)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = it.AppendJSON(b)
	}
	b = append(b, ']', '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// problemErrors turns the mux's own plain-text 404 and 405 replies into
// problem+json, keeping the Allow header it sets.
func problemErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&problemWriter{ResponseWriter: w, r: r}, r)
	})
}

type problemWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (p *problemWriter) WriteHeader(status int) {
	h := p.Header()
	if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) &&
		bytes.HasPrefix([]byte(h.Get("Content-Type")), []byte("text/plain")) {
		p.replaced = true
		h.Del("Content-Length")
		detail := "no such route: " + p.r.URL.Path
		if status == http.StatusMethodNotAllowed {
			detail = "method " + p.r.Method + " is not allowed here; allowed: " + h.Get("Allow")
		}
		problem.Write(p.ResponseWriter, problem.Details{Status: status, Detail: detail, Instance: p.r.URL.Path})
		return
	}
	p.ResponseWriter.WriteHeader(status)
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.replaced {
		return len(b), nil // drop the mux's plain-text body
	}
	return p.ResponseWriter.Write(b)
}

func (p *problemWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// logRequests logs method, path, status and duration of every request: at
// debug level, because the Functions host (and devhost) already logs every
// invocation with its outcome and duration, and a line per request costs a
// write on the hot path; 5xx answers are logged as warnings.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		if sw.status >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		if log.Enabled(r.Context(), level) {
			log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "duration", time.Since(start))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(status int) {
	if !s.wrote {
		s.status, s.wrote = status, true
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
