package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"dualsync/internal/apicheck"
	"dualsync/internal/syncer"
	"dualsync/internal/testenv"
)

// checked wraps the API so that every request a test makes, and the answer
// it gets, is checked against the OpenAPI document; what departs from it
// fails the test.
func checked(t *testing.T, h http.Handler) http.Handler {
	t.Helper()
	c, err := apicheck.New(context.Background(), openapiJSON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if testing.Verbose() {
			t.Logf("checked against openapi.json: %v", c.Seen())
		}
	})
	return c.Handler(h, func(err error) { t.Errorf("openapi: %v", err) })
}

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	c, err := apicheck.New(context.Background(), openapiJSON)
	if err != nil {
		t.Fatal(err)
	}
	return c.Doc()
}

// patterns records what routes registers.
type patterns []string

func (p *patterns) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }
func (p *patterns) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*p = append(*p, pattern)
}

// routeServer is a server to read the routes of, never to serve: its
// handlers need method values, not working parts.
func routeServer() *server {
	return &server{sync: syncRoutes{log: slog.New(slog.DiscardHandler), sync: &syncer.Engine{}}, docs: newDocs()}
}

// docOperations lists "METHOD /api/path" for every operation in the document.
func docOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" /api"+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// The document and routes.go describe the same API: every /api route is
// documented, every documented operation is routed (to that very pattern),
// and everything else routes.go serves is the Functions host's contract.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	var ps patterns
	routeServer().routes(&ps)
	var api, host []string
	for _, p := range ps {
		if _, path, _ := strings.Cut(p, " "); strings.HasPrefix(path, "/api/") {
			api = append(api, strings.TrimSuffix(p, "{$}")) // "/api/dashboard/{$}" is the path /api/dashboard/
		} else {
			host = append(host, p)
		}
	}
	slices.Sort(api)
	documented := docOperations(doc)
	for _, p := range api {
		if !slices.Contains(documented, p) {
			t.Errorf("routes.go serves %q, the OpenAPI document does not describe it", p)
		}
	}
	for _, op := range documented {
		if !slices.Contains(api, op) {
			t.Errorf("the OpenAPI document describes %q, routes.go does not serve it", op)
		}
	}

	// Outside /api: the readiness probe and one POST /<Function> per
	// queue- or timer-triggered function folder; nothing for clients.
	want := []string{"GET /{$}"}
	for name, f := range functionFolders(t) {
		if !f.http {
			want = append(want, "POST /"+name)
		}
	}
	slices.Sort(want)
	slices.Sort(host)
	if !slices.Equal(host, want) {
		t.Errorf("routes outside /api = %v, want %v (readiness and the non-HTTP functions)", host, want)
	}

	// A concrete request for each operation reaches its pattern.
	mux := http.NewServeMux()
	routeServer().routes(mux)
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		r := httptest.NewRequest(method, samplePath(t, doc, strings.TrimPrefix(path, "/api")), nil)
		if _, got := mux.Handler(r); strings.TrimSuffix(got, "{$}") != op {
			t.Errorf("%s %s routes to %q, want %q", method, r.URL.Path, got, op)
		}
	}
}

// samplePath fills the path parameters of a documented path with values
// its schema accepts and returns the full request path.
func samplePath(t *testing.T, doc *openapi3.T, path string) string {
	t.Helper()
	item := doc.Paths.Value(path)
	params := append(openapi3.Parameters{}, item.Parameters...)
	for _, op := range item.Operations() {
		params = append(params, op.Parameters...)
	}
	for _, p := range params {
		if p.Value.In != openapi3.ParameterInPath {
			continue
		}
		s := p.Value.Schema.Value
		v := "1"
		switch {
		case len(s.Enum) > 0:
			v = s.Enum[0].(string)
		case s.Example != nil:
			v = strings.Trim(string(must(json.Marshal(s.Example))), `"`)
		}
		path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", v)
	}
	if strings.Contains(path, "{") {
		t.Fatalf("unfilled parameter in %s", path)
	}
	return "/api" + path
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// function is what a function.json says about HTTP access.
type function struct {
	http      bool
	authLevel string
	methods   []string
	route     *regexp.Regexp // matches the path after /api/
}

func functionFolders(t *testing.T) map[string]function {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "functions", "*", "function.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no function.json files: %v", err)
	}
	out := map[string]function{}
	for _, f := range files {
		var fj struct {
			Bindings []struct {
				Type, AuthLevel, Route string
				Methods                []string
			}
		}
		if err := json.Unmarshal(must(os.ReadFile(f)), &fj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fn := function{}
		for _, b := range fj.Bindings {
			if b.Type == "httpTrigger" {
				fn.http, fn.authLevel, fn.route = true, b.AuthLevel, routeRegexp(b.Route)
				for _, m := range b.Methods {
					fn.methods = append(fn.methods, strings.ToUpper(m))
				}
				if len(b.Methods) == 0 { // omitted: every method
					fn.methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
				}
			}
		}
		out[filepath.Base(filepath.Dir(f))] = fn
	}
	return out
}

// routeRegexp turns a Functions route template into a regexp: {x} is one
// segment, {x?} an optional last segment, {*x} the rest of the path.
func routeRegexp(route string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i, seg := range strings.Split(route, "/") {
		sep := "/"
		if i == 0 {
			sep = ""
		}
		switch {
		case strings.HasPrefix(seg, "{*"):
			b.WriteString("(" + sep + ".*)?")
		case strings.HasSuffix(seg, "?}"):
			b.WriteString("(" + sep + "[^/]+)?")
		case strings.HasPrefix(seg, "{"):
			b.WriteString(sep + "[^/]+")
		default:
			b.WriteString(regexp.QuoteMeta(sep + seg))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Each documented operation is served by exactly one HTTP function that
// allows its method, and its security matches that function's authLevel:
// none for anonymous, a function key (header or code) with a documented
// 401 otherwise.
func TestOpenAPISecurityMatchesFunctionJSON(t *testing.T) {
	doc := loadDoc(t)
	fns := functionFolders(t)
	keySchemes := []string{"functionKey", "functionKeyQuery"}
	for _, s := range keySchemes {
		if doc.Components.SecuritySchemes[s] == nil {
			t.Fatalf("components.securitySchemes.%s is missing", s)
		}
	}
	if h := doc.Components.SecuritySchemes["functionKey"].Value; h.In != "header" || h.Name != "x-functions-key" {
		t.Errorf("functionKey = %s %s, want header x-functions-key", h.In, h.Name)
	}
	if q := doc.Components.SecuritySchemes["functionKeyQuery"].Value; q.In != "query" || q.Name != "code" {
		t.Errorf("functionKeyQuery = %s %s, want query code", q.In, q.Name)
	}
	for path, item := range doc.Paths.Map() {
		sample := strings.TrimPrefix(samplePath(t, doc, path), "/api/")
		for method, op := range item.Operations() {
			var served []string
			var fn function
			for name, f := range fns {
				if f.http && f.route.MatchString(sample) && slices.Contains(f.methods, method) {
					served, fn = append(served, name), f
				}
			}
			if len(served) != 1 {
				t.Errorf("%s %s is served by the functions %v, want exactly one", method, path, served)
				continue
			}
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			var schemes []string
			for _, req := range sec {
				for name := range req {
					schemes = append(schemes, name)
				}
			}
			slices.Sort(schemes)
			_, has401 := op.Responses.Map()["401"]
			if fn.authLevel == "anonymous" {
				if len(schemes) != 0 || has401 {
					t.Errorf("%s %s: %s is anonymous, the document asks for %v (401 documented: %v)", method, path, served[0], schemes, has401)
				}
				continue
			}
			if !slices.Equal(schemes, keySchemes) || len(sec) != 2 || !has401 {
				t.Errorf("%s %s: %s is authLevel %q, the document asks for %v (401 documented: %v); want either of %v and a 401",
					method, path, served[0], fn.authLevel, schemes, has401, keySchemes)
			}
		}
	}
}

func TestOpenAPIAndDashboardServed(t *testing.T) {
	e := setup(t)
	resp, b := do(t, "GET", e.url+"/api/openapi.json", "", "")
	// The document as embedded, its first server the one asked.
	want := bytes.Replace(openapiJSON, []byte("http://localhost:7071/api"), []byte(e.url+"/api"), 1)
	if resp.StatusCode != 200 || string(b) != string(want) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}

	// The key in the page's URL reaches the asset URLs, escaped.
	resp, b = do(t, "GET", e.url+`/api/dashboard?code=k%22%3E%3Cx+1%26`, "", "")
	page := string(b)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("dashboard: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows more than the app itself", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("a page that may carry a key must not be stored or leak it: Cache-Control %q, Referrer-Policy %q",
			resp.Header.Get("Cache-Control"), resp.Header.Get("Referrer-Policy"))
	}
	if !strings.Contains(page, `src="dashboard/app.js?code=k%22%3e%3cx%201%26"`) ||
		!strings.Contains(page, `href="dashboard/app.css?code=k%22%3e%3cx%201%26"`) {
		t.Errorf("asset URLs do not carry the escaped key:\n%s", page)
	}
	// The CSP forbids inline script and style: the page must not need them.
	scripts := regexp.MustCompile(`<script(\s[^>]*)?>`).FindAllString(page, -1)
	if len(scripts) == 0 || slices.ContainsFunc(scripts, func(m string) bool { return !strings.Contains(m, "src=") }) {
		t.Errorf("scripts %q, want only external scripts (app.js, oncall.js)", scripts)
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	resp, b = do(t, "GET", e.url+"/api/dashboard", "", "")
	if !strings.Contains(string(b), `src="dashboard/app.js"`) || resp.StatusCode != 200 {
		t.Errorf("without a key the asset URLs must carry none")
	}

	for _, tc := range []struct{ file, ctype, contains string }{
		{"app.js", "text/javascript; charset=utf-8", "x-functions-key"},
		{"app.css", "text/css; charset=utf-8", "progress"},
		{"oncall.js", "text/javascript; charset=utf-8", "outboxOldestAgeSeconds"},
	} {
		resp, b := do(t, "GET", e.url+"/api/dashboard/"+tc.file, "", "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(string(b), tc.contains) ||
			resp.Header.Get("ETag") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q etag %q", tc.file, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
		}
		// Revalidation answers 304 without the body.
		req := must(http.NewRequest("GET", e.url+"/api/dashboard/"+tc.file, nil))
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		r2 := must(http.DefaultClient.Do(req))
		r2.Body.Close()
		if r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", tc.file, r2.StatusCode)
		}
	}
	resp, b = do(t, "GET", e.url+"/api/dashboard/secret.txt", "", "")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown dashboard file: %d %s", resp.StatusCode, b)
	}
	// With a trailing slash: to the page, the key kept.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r3 := must(noRedirect.Get(e.url + "/api/dashboard/?code=k"))
	r3.Body.Close()
	if loc := r3.Header.Get("Location"); r3.StatusCode != http.StatusMovedPermanently || loc != "../dashboard?code=k" {
		t.Errorf("/api/dashboard/: %d Location %q, want 301 ../dashboard?code=k", r3.StatusCode, loc)
	}
	resp, _ = do(t, "POST", e.url+"/api/dashboard", js, "{}")
	if resp.StatusCode != 405 {
		t.Errorf("POST dashboard: %d", resp.StatusCode)
	}
}

// The sync routes' success shapes, checked against the document by the
// wrapper: start (202 + Location), a pending run's status (202 +
// Location + Retry-After), the runs list, an empty results page.
func TestOpenAPISyncShapes(t *testing.T) {
	e := setup(t)
	resp, b := do(t, "POST", e.url+"/api/start-product-sync/ProductSyncOrchestrator", js, `{"entity":"user"}`)
	if resp.StatusCode != 202 {
		t.Fatalf("start: %d %s", resp.StatusCode, b)
	}
	var start struct{ ID string }
	if err := json.Unmarshal(b, &start); err != nil || start.ID == "" {
		t.Fatalf("start body %s", b)
	}
	if resp, b = do(t, "POST", e.url+"/api/start-product-sync", "", ""); resp.StatusCode != 202 {
		t.Fatalf("start without a body: %d %s", resp.StatusCode, b)
	}
	// A run started without a name is the one orchestrator's, never a run
	// with an empty name.
	for _, path := range []string{"/api/start-product-sync", "/api/start-product-sync/ProductSyncOrchestrator"} {
		resp, b = do(t, "POST", e.url+path, "", "")
		var st struct {
			Status  struct{ Name string }
			Message string
		}
		if err := json.Unmarshal(b, &st); err != nil || resp.StatusCode != 202 || st.Status.Name != "ProductSyncOrchestrator" {
			t.Errorf("POST %s: %d name %q (%s), want 202 ProductSyncOrchestrator", path, resp.StatusCode, st.Status.Name, b)
		}
	}
	if resp, b = do(t, "GET", e.url+"/api/product-sync/"+start.ID, "", ""); resp.StatusCode != 202 {
		t.Fatalf("status of a run nobody plans: %d %s", resp.StatusCode, b)
	}
	if resp, b = do(t, "GET", e.url+"/api/product-sync?limit=5", "", ""); resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	if resp, b = do(t, "GET", e.url+"/api/product-sync/"+start.ID+"/results?status=failed&limit=10", "", ""); resp.StatusCode != 200 {
		t.Fatalf("results: %d %s", resp.StatusCode, b)
	}
	if resp, b = do(t, "GET", e.url+"/api/product-sync/realtime-20260101/results", "", ""); resp.StatusCode != 200 {
		t.Fatalf("realtime results: %d %s", resp.StatusCode, b)
	}
}

// The checker itself must catch what departs from the document, or the
// tests above would pass on anything.
func TestCheckerCatchesDepartures(t *testing.T) {
	c, err := apicheck.New(context.Background(), openapiJSON)
	if err != nil {
		t.Fatal(err)
	}
	problemHdr := http.Header{"Content-Type": {"application/problem+json"}}
	jsonHdr := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	product := `{"id":1,"name":"a","description":"","price":"1.00","createdAt":"2026-01-01T00:00:00.000Z","updatedAt":"2026-01-01T00:00:00.000Z"}`
	tests := []struct {
		name string
		ex   apicheck.Exchange
		want string // "" = no departure
	}{
		{"a documented answer", apicheck.Exchange{Method: "GET", Target: "/api/products/1", Status: 200, Header: jsonHdr, Body: []byte(product)}, ""},
		{"an undocumented status", apicheck.Exchange{Method: "GET", Target: "/api/products/1", Status: 418, Header: problemHdr, Body: []byte(`{"type":"about:blank","title":"x","status":418}`)}, "status"},
		{"a body off its schema", apicheck.Exchange{Method: "GET", Target: "/api/products/1", Status: 200, Header: jsonHdr, Body: []byte(strings.Replace(product, `"1.00"`, `1`, 1))}, "price"},
		{"an undocumented field", apicheck.Exchange{Method: "GET", Target: "/api/products/1", Status: 200, Header: jsonHdr, Body: []byte(strings.Replace(product, `{`, `{"secret":1,`, 1))}, "secret"},
		{"2xx to an invalid body", apicheck.Exchange{Method: "POST", Target: "/api/products", ReqHeader: jsonHdr, ReqBody: []byte(`{"name":"","price":"1.00"}`),
			Status: 201, Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/api/products/1"}}, Body: []byte(product)}, "invalid"},
		{"an invalid body not rejected as such", apicheck.Exchange{Method: "POST", Target: "/api/products", ReqHeader: jsonHdr, ReqBody: []byte(`{"name":"a","price":"1.001"}`),
			Status: 503, Header: problemHdr, Body: []byte(`{"type":"about:blank","title":"x","status":503}`)}, "want one of"},
		{"201 without Location", apicheck.Exchange{Method: "POST", Target: "/api/products", ReqHeader: jsonHdr, ReqBody: []byte(`{"name":"a","price":1}`),
			Status: 201, Header: jsonHdr, Body: []byte(product)}, "Location"},
		{"a price as a string", apicheck.Exchange{Method: "POST", Target: "/api/products", ReqHeader: jsonHdr, ReqBody: []byte(`{"name":"a","price":"12345678.91"}`),
			Status: 201, Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/api/products/1"}}, Body: []byte(product)}, ""},
		{"a number price beyond x-also-accepts, accepted", apicheck.Exchange{Method: "POST", Target: "/api/products", ReqHeader: jsonHdr, ReqBody: []byte(`{"name":"a","price":100000000}`),
			Status: 201, Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/api/products/1"}}, Body: []byte(product)}, "invalid"},
		{"the host's empty 404 outside every prefix", apicheck.Exchange{Method: "GET", Target: "/api/nope", Status: 404, Header: http.Header{}}, ""},
		{"an empty 404 under a prefix the app answers", apicheck.Exchange{Method: "GET", Target: "/api/products/1/extra", Status: 404, Header: http.Header{}}, "Content-Type"},
		{"HEAD with a body", apicheck.Exchange{Method: "HEAD", Target: "/api/products/1", Status: 200, Header: jsonHdr, Body: []byte(product)}, "body"},
		{"unknown path not 404", apicheck.Exchange{Method: "GET", Target: "/api/nope", Status: 200, Header: jsonHdr, Body: []byte(`{}`)}, "404"},
		{"405 with a wrong Allow", apicheck.Exchange{Method: "DELETE", Target: "/api/products", Status: 405,
			Header: http.Header{"Content-Type": {"application/problem+json"}, "Allow": {"GET, HEAD"}}, Body: []byte(`{"type":"about:blank","title":"x","status":405}`)}, "Allow"},
		{"405 with the documented Allow", apicheck.Exchange{Method: "DELETE", Target: "/api/products", Status: 405,
			Header: http.Header{"Content-Type": {"application/problem+json"}, "Allow": {"GET, HEAD, POST"}}, Body: []byte(`{"type":"about:blank","title":"x","status":405}`)}, ""},
		{"a conflict's detail", apicheck.Exchange{Method: "GET", Target: "/api/product-sync/abc/results?status=conflict", Status: 200, Header: jsonHdr,
			Body: []byte(`{"items":[{"entity":"user","id":3,"status":"conflict","reason":"r","detail":{"primary":{"id":3},"fallback":{"id":3},"merged":{"id":3}},"at":"2026-01-01T00:00:00.000Z"}]}`)}, ""},
		{"an email conflict's detail: nothing merged", apicheck.Exchange{Method: "GET", Target: "/api/product-sync/abc/results", Status: 200, Header: jsonHdr,
			Body: []byte(`{"items":[{"entity":"user","id":3,"status":"conflict","detail":{"primary":{"id":3},"fallback":null,"merged":null},"at":"2026-01-01T00:00:00.000Z"}]}`)}, ""},
		{"a detail that is not an object", apicheck.Exchange{Method: "GET", Target: "/api/product-sync/abc/results", Status: 200, Header: jsonHdr,
			Body: []byte(`{"items":[{"entity":"user","id":3,"status":"conflict","detail":"both","at":"2026-01-01T00:00:00.000Z"}]}`)}, "detail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(context.Background(), tc.ex)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("departure reported: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no departure reported, want one about %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("departure %v, want one about %q", err, tc.want)
			}
		})
	}
}

// The served document's first server is the one the request came to; the
// embedded document keeps the default local one.
func TestOpenAPIServedServers(t *testing.T) {
	for _, c := range []struct{ host, proto, want string }{
		{"localhost:8080", "", "http://localhost:8080/api"},
		{"127.0.0.1:7071", "", "http://127.0.0.1:7071/api"},
		{"dualsync-abc.azurewebsites.net", "", "https://dualsync-abc.azurewebsites.net/api"},
		{"example.test:8443", "http", "http://example.test:8443/api"},
	} {
		r := httptest.NewRequest("GET", "/api/openapi.json", nil)
		r.Host = c.host
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		var doc struct {
			Servers []struct{ URL, Description string }
		}
		if err := json.Unmarshal(servedDocument(r), &doc); err != nil {
			t.Fatalf("%s: %v", c.host, err)
		}
		if len(doc.Servers) != 2 || doc.Servers[0].URL != c.want || doc.Servers[0].Description == "" ||
			doc.Servers[1].URL != "https://{appName}.azurewebsites.net/api" {
			t.Errorf("%s: servers %+v, want %s first, then the Azure template", c.host, doc.Servers, c.want)
		}
	}
	if !bytes.Contains(OpenAPI(), []byte(`"url": "http://localhost:7071/api"`)) {
		t.Error("the embedded document lost its default local server")
	}
}
