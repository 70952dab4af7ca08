package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"dualsync/internal/problem"
)

// openapiJSON is the API's one description: tests check it against the
// routes and function.json and validate the API tests' real requests and
// answers with it. OpenAPI 3.0.3, not 3.1: kin-openapi, the validator,
// supports 3.1 only in part.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the embedded OpenAPI document.
func OpenAPI() []byte { return bytes.Clone(openapiJSON) }

//go:embed dashboard
var dashboardFS embed.FS

// dashboardCSP allows the page only its own script, style sheet and API:
// no inline script or style, nothing from elsewhere.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded dashboard file with its validator.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// docs serves the OpenAPI document and the dashboard.
type docs struct {
	page   *template.Template
	assets map[string]asset
}

func newDocs() docs {
	d := docs{
		page:   template.Must(template.ParseFS(dashboardFS, "dashboard/index.html")),
		assets: map[string]asset{},
	}
	for name, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8", "oncall.js": "text/javascript; charset=utf-8"} {
		b, err := dashboardFS.ReadFile("dashboard/" + name)
		if err != nil {
			panic(err) // embedded at build time: only a renamed file gets here
		}
		sum := sha256.Sum256(b)
		d.assets[name] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return d
}

func (d docs) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(servedDocument(r))
}

// servedDocument is the document with its first server the one the request
// came to: the port `make run` was given (PORT=8080), or the app's own host
// name in Azure. The Azure template stays second. The embedded document
// (OpenAPI) keeps http://localhost:7071/api, the default.
func servedDocument(r *http.Request) []byte {
	host := r.Host
	if host == "" || strings.ContainsAny(host, "\"\\/ ") {
		return openapiJSON
	}
	start := bytes.Index(openapiJSON, []byte(`"servers": [`))
	if start < 0 {
		return openapiJSON
	}
	open := start + bytes.IndexByte(openapiJSON[start:], '{')
	end := open + bytes.Index(openapiJSON[open:], []byte("},"))
	if end < open {
		return openapiJSON
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	local := name == "localhost" || net.ParseIP(strings.Trim(name, "[]")) != nil && net.ParseIP(strings.Trim(name, "[]")).IsLoopback()
	scheme := "https"
	if local {
		scheme = "http"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	var orig struct{ URL, Description string }
	if err := json.Unmarshal(openapiJSON[open:end+1], &orig); err != nil {
		return openapiJSON
	}
	desc := orig.Description
	if !local {
		desc = "The server that served this document. In Azure every operation but GET /health needs a function key (x-functions-key header or ?code=)."
	}
	u, _ := json.Marshal(scheme + "://" + host + "/api")
	dj, _ := json.Marshal(desc)
	first := []byte("{\n      \"url\": " + string(u) + ",\n      \"description\": " + string(dj) + "\n    }")
	out := make([]byte, 0, len(openapiJSON)+64)
	out = append(out, openapiJSON[:open]...)
	out = append(out, first...)
	return append(out, openapiJSON[end+1:]...)
}

// dashboard serves the page. A function key in ?code= is written into the
// asset URLs (the browser cannot send a header with them); the script sends
// it on with every API call.
func (d docs) dashboard(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := d.page.Execute(&b, struct{ Code string }{r.URL.Query().Get("code")}); err != nil {
		problem.New(w, r, http.StatusInternalServerError, "the page could not be rendered")
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page may carry a key: no cache, no referrer.
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func (d docs) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := d.assets[r.PathValue("file")]
	if !ok {
		problem.New(w, r, http.StatusNotFound, "no such dashboard file: "+r.PathValue("file"))
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// dashboardSlash sends /api/dashboard/ to the page: served here, its
// relative asset URLs would miss (dashboard/dashboard/app.js).
func (d docs) dashboardSlash(w http.ResponseWriter, r *http.Request) {
	target := "../dashboard"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusMovedPermanently)
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
