package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"dualsync/internal/apicheck"
	"dualsync/internal/testenv"
)

// The whole app as a client sees it, held to the OpenAPI document it
// serves: the shapes the handler-level API tests cannot reach (a completed
// run with its output, results pages with a continuation, a real-time
// partition, 503s while no database answers) are checked here through the
// real handler under devhost.
func TestOpenAPIEndToEnd(t *testing.T) {
	s := startStack(t, nil)
	checker := openAPIChecker(t, s.url)
	api := checkedClient(t, checker)
	call := func(method, path, body string, want int) (http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := api.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return resp.Header, b
	}

	for i := range 3 {
		call("POST", "/api/products", fmt.Sprintf(`{"name":"P%d","description":null,"price":%d.5}`, i, i), 201)
	}
	call("POST", "/api/users", `{"name":"Ann","email":"ann@example.com"}`, 201)
	call("PUT", "/api/products/1", `{"name":"Lamp","price":"12.50","id":1}`, 200)
	call("PATCH", "/api/users/1", `{"name":"Anna"}`, 200)
	if h, _ := call("GET", "/api/products?limit=2", "", 200); h.Get("Link") == "" {
		t.Error("a first page of 2 of 3 products has no Link")
	}
	call("DELETE", "/api/products/5", "", 204)
	call("GET", "/api/products/5", "", 404)

	// A run to completion: 202 while it runs, then 200 with its output.
	_, b := call("POST", "/api/start-product-sync/ProductSyncOrchestrator", "", 202)
	var start struct{ ID string }
	if err := json.Unmarshal(b, &start); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "the run to complete", func() bool {
		resp, err := api.Get(s.url + "/api/product-sync/" + start.ID)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	_, b = call("GET", "/api/product-sync/"+start.ID, "", 200)
	var st runStatus
	if err := json.Unmarshal(b, &st); err != nil || st.RuntimeStatus != "Completed" || len(st.Output) != 3 {
		t.Fatalf("completed run: %s", b)
	}
	// Its results one at a time, following the continuation.
	pages, next := 0, "/api/product-sync/"+start.ID+"/results?limit=1"
	for next != "" && pages < 10 {
		h, b := call("GET", next, "", 200)
		var page struct {
			Items        []json.RawMessage `json:"items"`
			Continuation string            `json:"continuation"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		next = ""
		if page.Continuation != "" {
			link := h.Get("Link")
			if !strings.HasPrefix(link, "</api/product-sync/"+start.ID+"/results?") {
				t.Fatalf("page %d: continuation without a Link (%q)", pages, link)
			}
			next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	if pages < 3 {
		t.Errorf("3 outcomes in %d pages of 1", pages)
	}
	call("GET", "/api/product-sync/realtime-"+time.Now().UTC().Format("20060102")+"/results", "", 200)
	call("GET", "/api/product-sync?limit=5", "", 200)
	call("GET", "/api/health", "", 200)

	// Neither database answers: the API says 503 as documented.
	s.primaryProxy.Cut()
	s.fallbackProxy.Cut()
	call("GET", "/api/products", "", 503)
	// The anonymous probe may reuse a check from just before the cut.
	testenv.WaitFor(t, 15*time.Second, "health to answer 503", func() bool {
		resp, err := api.Get(s.url + "/api/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	s.primaryProxy.Restore()
	s.fallbackProxy.Restore()

	seen := checker.Seen()
	for _, want := range []string{"POST /products 201", "GET /product-sync/{run} 202", "GET /product-sync/{run} 200",
		"GET /product-sync/{run}/results 200", "GET /products 503", "GET /health 503", "DELETE /products/{id} 204"} {
		if seen[want] == 0 {
			t.Errorf("no %q exchange was checked; seen %v", want, seen)
		}
	}
}

// openAPIChecker loads the document the running app serves.
func openAPIChecker(t *testing.T, base string) *apicheck.Checker {
	t.Helper()
	resp, err := client.Get(base + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("openapi.json: %d %v", resp.StatusCode, err)
	}
	c, err := apicheck.New(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkedClient is an HTTP client whose exchanges that depart from the
// document fail the test.
func checkedClient(t *testing.T, c *apicheck.Checker) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &apicheck.Transport{Checker: c,
		Report: func(err error) { t.Errorf("openapi: %v", err) }}}
}

func getJSON(t *testing.T, c *http.Client, url string, out any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %d: %v", url, resp.StatusCode, err)
	}
}
