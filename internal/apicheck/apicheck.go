// Package apicheck holds the API to its OpenAPI document: it checks real
// requests and answers against it with kin-openapi. Only tests import it,
// so the validator stays out of the handler binary.
package apicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Checker validates exchanges against one document.
type Checker struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]int // "GET /products/{id} 200" -> exchanges checked
}

// The dashboard's text answers are checked like text/plain: a string.
var registerText = sync.OnceFunc(func() {
	for _, ct := range []string{"text/html", "text/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
})

// New loads and validates doc (an OpenAPI 3.0 document, examples included).
func New(ctx context.Context, doc []byte) (*Checker, error) {
	registerText()
	d, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := d.Validate(ctx, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	if err := alsoAccepts(d); err != nil {
		return nil, err
	}
	// Route on paths alone: the servers name real hosts (localhost:7071,
	// <app>.azurewebsites.net), the tests call others.
	rd := *d
	rd.Servers = openapi3.Servers{{URL: basePath(d)}}
	r, err := gorillamux.NewRouter(&rd)
	if err != nil {
		return nil, fmt.Errorf("route the OpenAPI document: %w", err)
	}
	return &Checker{doc: d, router: r, seen: map[string]int{}}, nil
}

// alsoAccepts widens each component schema that carries x-also-accepts (a
// form the API accepts for compatibility but the document does not
// promote, e.g. a price as a JSON number) to anyOf [itself, that form], so
// the checker accepts what the document says the API accepts, while
// generators, which ignore the extension, see only the promoted form.
func alsoAccepts(d *openapi3.T) error {
	for name, ref := range d.Components.Schemas {
		s := ref.Value
		if s == nil || s.Extensions["x-also-accepts"] == nil {
			continue
		}
		raw, err := json.Marshal(s.Extensions["x-also-accepts"])
		if err != nil {
			return err
		}
		alt := &openapi3.Schema{}
		if err := json.Unmarshal(raw, alt); err != nil {
			return fmt.Errorf("components.schemas.%s.x-also-accepts: %w", name, err)
		}
		if err := alt.Validate(context.Background()); err != nil {
			return fmt.Errorf("components.schemas.%s.x-also-accepts: %w", name, err)
		}
		promoted := *s
		promoted.Extensions = nil
		// In place: every $ref to the component shares this *Schema.
		*s = openapi3.Schema{AnyOf: openapi3.SchemaRefs{{Value: &promoted}, {Value: alt}}}
	}
	return nil
}

// Doc is the loaded document.
func (c *Checker) Doc() *openapi3.T { return c.doc }

// Seen lists the operation and status pairs checked so far, with counts.
func (c *Checker) Seen() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.seen))
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}

// Exchange is one request and the answer it got.
type Exchange struct {
	Method    string
	Target    string // path and query, e.g. /api/products?limit=2
	ReqHeader http.Header
	ReqBody   []byte
	Status    int
	Header    http.Header
	Body      []byte
}

// invalidRequestStatuses are the answers a request the document calls
// invalid may get: rejected by validation, or an id that cannot exist.
var invalidRequestStatuses = []int{http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType}

// Check reports how ex departs from the document: an undocumented status,
// a body or header that does not match its schema, a 2xx answer to a
// request the document calls invalid (or the reverse: an invalid request
// that was not rejected), a 405 whose Allow differs from the documented
// methods, an unknown path that did not answer 404.
func (c *Checker) Check(ctx context.Context, ex Exchange) error {
	req, err := http.NewRequestWithContext(ctx, ex.Method, "http://api.test"+ex.Target, bytes.NewReader(ex.ReqBody))
	if err != nil {
		return err
	}
	if base := c.base(); !strings.HasPrefix(req.URL.Path, base+"/") {
		// Not the API the document describes (e.g. the host's readiness
		// probe at GET /).
		c.count("outside "+base, ex.Status)
		return nil
	}
	req.Header = ex.ReqHeader.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if ex.Method == http.MethodHead {
		return c.checkHead(req, ex)
	}
	route, params, err := c.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		c.count("unknown path", ex.Status)
		if ex.Status != http.StatusNotFound {
			return fmt.Errorf("a path the document does not list answered %d, want 404", ex.Status)
		}
		if len(ex.Body) == 0 && !c.underDocumentedPrefix(req.URL.Path) {
			// Outside every route prefix: the Functions host's own 404,
			// as the document's description says.
			return nil
		}
		return c.checkComponent(ctx, "NotFound", ex)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		c.count("other method", ex.Status)
		return c.checkMethodNotAllowed(ctx, req, ex)
	case err != nil:
		return fmt.Errorf("find the route: %w", err)
	}
	c.count(ex.Method+" "+route.Path, ex.Status)

	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	// The validator may have consumed the body; the response check reads
	// the request again.
	req.Body = io.NopCloser(bytes.NewReader(ex.ReqBody))
	var errs []error
	switch {
	case reqErr != nil && ex.Status < 300:
		errs = append(errs, fmt.Errorf("answered %d to a request the document calls invalid: %w", ex.Status, reqErr))
	case reqErr != nil && !slices.Contains(invalidRequestStatuses, ex.Status):
		errs = append(errs, fmt.Errorf("answered %d to a request the document calls invalid (want one of %v): %w", ex.Status, invalidRequestStatuses, reqErr))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.Status, Header: ex.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(ex.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("the answer departs from the document: %w", err))
	}
	return errors.Join(errs...)
}

// checkHead: HEAD is served wherever GET is (the document says so once,
// in info.description): a status GET documents, and no body.
func (c *Checker) checkHead(req *http.Request, ex Exchange) error {
	get := req.Clone(req.Context())
	get.Method = http.MethodGet
	route, _, err := c.router.FindRoute(get)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		c.count("HEAD unknown path", ex.Status)
		if ex.Status != http.StatusNotFound {
			return fmt.Errorf("HEAD of a path the document does not list answered %d, want 404", ex.Status)
		}
		return nil
	case errors.Is(err, routers.ErrMethodNotAllowed):
		c.count("HEAD other method", ex.Status)
		return c.checkMethodNotAllowed(req.Context(), req, ex)
	case err != nil:
		return fmt.Errorf("find the route: %w", err)
	}
	c.count("HEAD "+route.Path, ex.Status)
	if route.Operation.Responses.Status(ex.Status) == nil && route.Operation.Responses.Default() == nil {
		return fmt.Errorf("HEAD answered %d, which GET %s does not document", ex.Status, route.Path)
	}
	if len(ex.Body) > 0 {
		return fmt.Errorf("HEAD answered a body of %d bytes", len(ex.Body))
	}
	return nil
}

// checkMethodNotAllowed: the Allow header must list the documented methods
// of the path (plus HEAD where GET is documented, as net/http serves it).
func (c *Checker) checkMethodNotAllowed(ctx context.Context, req *http.Request, ex Exchange) error {
	if ex.Status != http.StatusMethodNotAllowed {
		return fmt.Errorf("a method the path does not document answered %d, want 405", ex.Status)
	}
	var want []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r := req.Clone(ctx)
		r.Method = m
		if _, _, err := c.router.FindRoute(r); err == nil {
			want = append(want, m)
			if m == http.MethodGet {
				want = append(want, http.MethodHead)
			}
		}
	}
	slices.Sort(want)
	var got []string
	for _, m := range strings.Split(ex.Header.Get("Allow"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			got = append(got, m)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("405 Allow %v, but the document lists %v for this path", got, want)
	}
	return c.checkProblem(ex)
}

// checkProblem validates a problem+json answer that belongs to no
// operation (a 405) against components.schemas.Problem.
func (c *Checker) checkProblem(ex Exchange) error {
	if ct := ex.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("%d answered Content-Type %q, want application/problem+json", ex.Status, ct)
	}
	ref := c.doc.Components.Schemas["Problem"]
	if ref == nil || ref.Value == nil {
		return errors.New("the document has no components.schemas.Problem")
	}
	var v any
	if err := json.Unmarshal(ex.Body, &v); err != nil {
		return fmt.Errorf("%d body is not JSON: %w", ex.Status, err)
	}
	if err := ref.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("%d body departs from Problem: %w", ex.Status, err)
	}
	return nil
}

// underDocumentedPrefix reports whether path's first segment under the
// base is the first segment of a documented path (so a function's route
// covers it and the app, not the host, answers).
func (c *Checker) underDocumentedPrefix(path string) bool {
	rest := strings.TrimPrefix(path, c.base()+"/")
	first, _, _ := strings.Cut(rest, "/")
	for p := range c.doc.Paths.Map() {
		f, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if strings.EqualFold(f, first) {
			return true
		}
	}
	return false
}

// checkComponent validates an answer that belongs to no operation against
// a response of components.responses.
func (c *Checker) checkComponent(_ context.Context, name string, ex Exchange) error {
	ref := c.doc.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the document has no components.responses.%s", name)
	}
	resp := ref.Value
	for h, hr := range resp.Headers {
		if hr.Value != nil && hr.Value.Required && ex.Header.Get(h) == "" {
			return fmt.Errorf("%d without the required %s header", ex.Status, h)
		}
	}
	ct := ex.Header.Get("Content-Type")
	mt := resp.Content.Get(ct)
	if mt == nil {
		return fmt.Errorf("%d answered Content-Type %q; %s documents %v", ex.Status, ct, name, slices.Collect(maps.Keys(resp.Content)))
	}
	var v any
	if err := json.Unmarshal(ex.Body, &v); err != nil {
		return fmt.Errorf("%d body is not JSON: %w", ex.Status, err)
	}
	if err := mt.Schema.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("%d body departs from %s: %w", ex.Status, name, err)
	}
	return nil
}

// base is the path of the document's first server, e.g. /api.
func (c *Checker) base() string { return basePath(c.doc) }

func basePath(d *openapi3.T) string {
	if len(d.Servers) == 0 {
		return ""
	}
	u, err := url.Parse(d.Servers[0].URL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

func (c *Checker) count(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[fmt.Sprintf("%s %d", op, status)]++
}

// Handler serves next and checks each exchange, passing what departs from
// the document to report (for a test, t.Error).
func (c *Checker) Handler(next http.Handler, report func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			report(fmt.Errorf("%s %s: read the request: %w", r.Method, r.URL.RequestURI(), err))
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		reqHeader := r.Header.Clone()
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		ex := Exchange{Method: r.Method, Target: r.URL.RequestURI(), ReqHeader: reqHeader, ReqBody: body,
			Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		if err := c.Check(r.Context(), ex); err != nil {
			report(fmt.Errorf("%s %s -> %d: %w", r.Method, r.URL.RequestURI(), rec.Code, err))
		}
	})
}

// Transport is an http.RoundTripper that checks each exchange it carries,
// for tests that call a running server (e.g. the handler under devhost).
type Transport struct {
	Checker *Checker
	Base    http.RoundTripper // http.DefaultTransport if nil
	Report  func(error)
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	ex := Exchange{Method: req.Method, Target: req.URL.RequestURI(), ReqHeader: req.Header, ReqBody: body,
		Status: resp.StatusCode, Header: resp.Header, Body: rb}
	if err := t.Checker.Check(req.Context(), ex); err != nil {
		t.Report(fmt.Errorf("%s %s -> %d: %w", req.Method, req.URL.RequestURI(), resp.StatusCode, err))
	}
	return resp, nil
}
