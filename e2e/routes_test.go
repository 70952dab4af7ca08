package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// What a client gets for routes and methods the API does not have, through
// the host: every path under a function's route prefix reaches the handler
// (all methods), which answers problem+json 404 or 405 with an Allow whose
// every method works; a path under no prefix gets the host's own empty 404,
// as the Azure host answers it. Each exchange is also held to the document.
func TestUnknownRoutesAndMethodsThroughHost(t *testing.T) {
	s := startStack(t, nil)
	api := checkedClient(t, openAPIChecker(t, s.url))
	noRedirect := &http.Client{Transport: api.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(c *http.Client, method, path, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	runs := func() int {
		var list []json.RawMessage
		getJSON(t, api, s.url+"/api/product-sync?limit=100", &list)
		return len(list)
	}
	before := runs()
	if resp, b := send(api, "POST", "/api/products", `{"name":"p","price":"1.00"}`); resp.StatusCode != 201 || resp.Header.Get("Location") != "/api/products/1" {
		t.Fatalf("create product 1: %d %s", resp.StatusCode, b)
	}

	tests := []struct {
		method, path string
		status       int
		problem      bool   // application/problem+json (else an empty body, or the answer's own type)
		allow        string // for 405
	}{
		{"GET", "/api/nope", 404, false, ""},
		{"POST", "/api/nope/deeper", 404, false, ""},
		{"HEAD", "/api/nope", 404, false, ""},
		{"GET", "/api/health/x", 404, true, ""},
		{"GET", "/api/openapi.json/x", 404, true, ""},
		{"GET", "/api/products/1/extra", 404, true, ""},
		{"GET", "/api/users/1/extra/more", 404, true, ""},
		{"POST", "/api/health", 405, true, "GET, HEAD"},
		{"DELETE", "/api/health/details", 405, true, "GET, HEAD"},
		{"GET", "/api/start-product-sync", 405, true, "POST"},
		{"PUT", "/api/start-product-sync/ProductSyncOrchestrator", 405, true, "POST"},
		{"OPTIONS", "/api/products", 405, true, "GET, HEAD, POST"},
		{"OPTIONS", "/api/products/999999", 405, true, "DELETE, GET, HEAD, PATCH, PUT"},
		{"DELETE", "/api/openapi.json", 405, true, "GET, HEAD"},
		{"POST", "/api/product-sync", 405, true, "GET, HEAD"},
		{"POST", "/api/start-product-sync/ProductSyncOrchestrater", 404, true, ""},
		{"POST", "/api/start-product-sync/ProductSyncOrchestrator/x", 404, true, ""},
		{"HEAD", "/api/products", 200, false, ""},
		{"HEAD", "/api/products/1", 200, false, ""},
		{"HEAD", "/api/health", 200, false, ""},
		{"HEAD", "/api/products/999999", 404, false, ""},
		{"GET", "/api/dashboard/", 301, false, ""},
	}
	for _, tc := range tests {
		resp, b := send(noRedirect, tc.method, tc.path, "")
		ct := resp.Header.Get("Content-Type")
		switch {
		case resp.StatusCode != tc.status:
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
		case tc.problem && ct != "application/problem+json":
			t.Errorf("%s %s: Content-Type %q, want application/problem+json", tc.method, tc.path, ct)
		case !tc.problem && tc.status == 404 && tc.method != "HEAD" && len(b) != 0:
			t.Errorf("%s %s: the host's 404 has a body: %q", tc.method, tc.path, b)
		case tc.method == "HEAD" && len(b) != 0:
			t.Errorf("HEAD %s answered a body", tc.path)
		}
		if tc.problem && resp.StatusCode == tc.status {
			var p struct{ Status int }
			if err := json.Unmarshal(b, &p); err != nil || p.Status != tc.status {
				t.Errorf("%s %s: problem body %s", tc.method, tc.path, b)
			}
		}
		if tc.allow == "" {
			continue
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			continue
		}
		// An honest Allow: each method it names is served (it may still
		// refuse this empty request, or not know the id, but never as an
		// unknown route or a method not allowed).
		for _, m := range strings.Split(tc.allow, ", ") {
			if m == "POST" && strings.HasPrefix(tc.path, "/api/start-product-sync") {
				continue // would start a run; POST is exercised by the other tests
			}
			probe := m
			if m == "HEAD" { // no body to tell why: HEAD must answer as GET does
				h, _ := send(noRedirect, "HEAD", tc.path, "")
				g, _ := send(noRedirect, "GET", tc.path, "")
				if h.StatusCode != g.StatusCode {
					t.Errorf("%s: HEAD answers %d, GET %d", tc.path, h.StatusCode, g.StatusCode)
				}
				probe = "GET"
			}
			r, b := send(noRedirect, probe, tc.path, "")
			if r.StatusCode == 405 || r.StatusCode == 404 && (len(b) == 0 || strings.Contains(string(b), "no such route")) {
				t.Errorf("%s %s: Allow names %s, which answers %d %s", tc.method, tc.path, m, r.StatusCode, b)
			}
		}
	}

	// The typo started nothing.
	if after := runs(); after != before {
		t.Errorf("runs %d -> %d: an unknown orchestrator name started a run", before, after)
	}
	// /api/dashboard/ leads to the page.
	resp, b := send(api, "GET", "/api/dashboard/", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "dashboard/app.js") {
		t.Errorf("GET /api/dashboard/ followed: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Request.URL.Path != "/api/dashboard" {
		t.Errorf("GET /api/dashboard/ ended at %s", resp.Request.URL.Path)
	}
}
