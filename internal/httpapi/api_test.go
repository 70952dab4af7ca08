package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/database"
	"dualsync/internal/failover"
	"dualsync/internal/queue"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

type env struct {
	url               string
	primary, fallback store.DB
}

// openPair creates, migrates and opens a primary and a fallback database.
func openPair(tb testing.TB) (primary, fallback store.DB) {
	tb.Helper()
	ctx := context.Background()
	open := func(role store.Role) store.DB {
		db, err := database.Open(ctx, testenv.CreateDatabase(tb), role, database.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(db.Close)
		if err := db.Migrate(ctx); err != nil {
			tb.Fatal(err)
		}
		return db
	}
	return open(store.RolePrimary), open(store.RoleFallback)
}

func setup(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	p, f := openPair(t)
	conn := testenv.Storage(t)
	qsvc, err := azqueue.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	tsvc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	suffix := testenv.RandomHex(4)
	items, plans := queue.New(qsvc, "api-items-"+suffix, true), queue.New(qsvc, "api-plans-"+suffix, true)
	t.Cleanup(func() {
		for _, q := range []*queue.Queue{items, plans} {
			_, _ = q.Client().Delete(context.Background(), nil)
		}
	})
	results := table.New(tsvc, &table.Options{Prefix: "t" + suffix})
	t.Cleanup(func() {
		for _, name := range []string{"t" + suffix + table.RunsTable, "t" + suffix + table.ResultsTable} {
			_, _ = tsvc.DeleteTable(context.Background(), name, nil)
		}
	})
	if err := results.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	eng := syncer.New(p, f, items, plans, results, syncer.Options{})
	fo := failover.New(p, f, failover.Options{QueryTimeout: 5 * time.Second, Cooldown: time.Second, OnChange: eng.Changed})
	srv := httptest.NewServer(checked(t, NewServer(slog.New(slog.DiscardHandler), fo, fo, eng)))
	t.Cleanup(srv.Close)
	return env{url: srv.URL, primary: p, fallback: f}
}

func do(t *testing.T, method, url, ctype, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const js = "application/json"

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestProductsCRUD(t *testing.T) {
	e := setup(t)
	resp, b := do(t, "POST", e.url+"/api/products", js, `{"name":"Lamp","description":"A lamp","price":"299.99"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p["price"] != "299.99" || p["name"] != "Lamp" || p["id"] != float64(1) {
		t.Fatalf("created = %s", b)
	}
	for _, k := range []string{"createdAt", "updatedAt"} {
		if s, _ := p[k].(string); !timeRE.MatchString(s) {
			t.Errorf("%s = %v", k, p[k])
		}
	}
	if loc := resp.Header.Get("Location"); loc != "/api/products/1" {
		t.Errorf("Location = %q", loc)
	}
	resp, b = do(t, "GET", e.url+"/api/products/1", "", "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"price":"299.99"`) {
		t.Fatalf("get: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "PATCH", e.url+"/api/products/1", "application/json; charset=utf-8", `{"price":"10.5"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"price":"10.50"`) || !strings.Contains(string(b), `"name":"Lamp"`) {
		t.Fatalf("patch: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "PUT", e.url+"/api/products/1", js, `{"name":"Desk","price":"1.00"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"name":"Desk"`) || !strings.Contains(string(b), `"description":""`) {
		t.Fatalf("put: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "DELETE", e.url+"/api/products/1", "", "")
	if resp.StatusCode != 204 || len(b) != 0 {
		t.Fatalf("delete: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", e.url+"/api/products/1", "", "")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("get deleted: %d %s", resp.StatusCode, b)
	}
}

func TestUsersCRUD(t *testing.T) {
	e := setup(t)
	resp, b := do(t, "POST", e.url+"/api/users", js, `{"name":"Ann","email":"ann@example.com"}`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != "/api/users/1" {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", e.url+"/api/users", "", "")
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil || resp.StatusCode != 200 || len(list) != 1 || list[0]["email"] != "ann@example.com" {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "PATCH", e.url+"/api/users/1", js, `{"name":"Anna"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"name":"Anna"`) {
		t.Fatalf("patch: %d %s", resp.StatusCode, b)
	}
	resp, _ = do(t, "DELETE", e.url+"/api/users/1", "", "")
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	resp, _ = do(t, "DELETE", e.url+"/api/users/1", "", "")
	if resp.StatusCode != 404 {
		t.Fatalf("delete again: %d", resp.StatusCode)
	}
}

func TestPaging(t *testing.T) {
	e := setup(t)
	for range 5 {
		if resp, b := do(t, "POST", e.url+"/api/products", js, `{"name":"P","price":"1.00"}`); resp.StatusCode != 201 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	tests := []struct {
		query string
		ids   []int64
		link  string
	}{
		{"?limit=2", []int64{1, 3}, `</api/products?after=3&limit=2>; rel="next"`},
		{"?limit=2&after=3", []int64{5, 7}, `</api/products?after=7&limit=2>; rel="next"`},
		{"?limit=2&after=7", []int64{9}, ""},
		{"", []int64{1, 3, 5, 7, 9}, ""},
		{"?limit=5", []int64{1, 3, 5, 7, 9}, ""},
	}
	for _, tc := range tests {
		resp, b := do(t, "GET", e.url+"/api/products"+tc.query, "", "")
		var got []struct{ ID int64 }
		if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.query, resp.StatusCode, b)
		}
		var ids []int64
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		if !equal(ids, tc.ids) {
			t.Errorf("%s: ids %v, want %v", tc.query, ids, tc.ids)
		}
		if l := resp.Header.Get("Link"); l != tc.link {
			t.Errorf("%s: Link %q, want %q", tc.query, l, tc.link)
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func counts(t *testing.T, e env) [4]int {
	t.Helper()
	ctx := context.Background()
	var c [4]int
	for i, db := range []store.DB{e.primary, e.fallback} {
		ps, err := db.ListProducts(ctx, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		us, err := db.ListUsers(ctx, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		c[2*i], c[2*i+1] = len(ps), len(us)
	}
	return c
}

func TestBadInput(t *testing.T) {
	e := setup(t)
	if resp, b := do(t, "POST", e.url+"/api/products", js, `{"name":"P","price":"1.00"}`); resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if resp, b := do(t, "POST", e.url+"/api/users", js, `{"name":"U","email":"u@example.com"}`); resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	before := counts(t, e)
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		allow                           string
	}{
		{"malformed json", "POST", "/api/products", js, `{"name":`, 400, ""},
		{"not an object", "POST", "/api/products", js, `[1]`, 400, ""},
		{"empty body", "POST", "/api/products", js, ``, 400, ""},
		{"wrong type name", "POST", "/api/products", js, `{"name":5,"price":"1.00"}`, 400, ""},
		{"price as number", "POST", "/api/products", js, `{"name":"a","price":true}`, 400, ""},
		{"missing price", "POST", "/api/products", js, `{"name":"a"}`, 400, ""},
		{"missing name", "POST", "/api/products", js, `{"price":"1.00"}`, 400, ""},
		{"negative price", "POST", "/api/products", js, `{"name":"a","price":"-1.00"}`, 400, ""},
		{"3-decimal price", "POST", "/api/products", js, `{"name":"a","price":"1.001"}`, 400, ""},
		{"huge price", "POST", "/api/products", js, `{"name":"a","price":"99999999999999999999999.00"}`, 400, ""},
		{"overlong name", "POST", "/api/products", js, `{"name":"` + long + `","price":"1.00"}`, 400, ""},
		{"unknown field", "POST", "/api/products", js, `{"name":"a","price":"1.00","x":1}`, 400, ""},
		{"empty patch", "PATCH", "/api/products/1", js, `{}`, 400, ""},
		{"invalid email", "POST", "/api/users", js, `{"name":"a","email":"nope"}`, 400, ""},
		{"overlong email", "POST", "/api/users", js, `{"name":"a","email":"` + long + `@x.com"}`, 400, ""},
		{"duplicate email", "POST", "/api/users", js, `{"name":"a","email":"u@example.com"}`, 409, ""},
		{"duplicate email case", "POST", "/api/users", js, `{"name":"a","email":"U@Example.COM"}`, 409, ""},
		{"non-numeric id", "GET", "/api/products/abc", "", "", 400, ""},
		{"overflowing id", "GET", "/api/products/99999999999999999999", "", "", 400, ""},
		{"zero id", "DELETE", "/api/users/0", "", "", 400, ""},
		{"negative id", "PUT", "/api/products/-1", js, `{"name":"a","price":"1.00"}`, 400, ""},
		{"unknown id", "GET", "/api/products/999", "", "", 404, ""},
		{"unknown id patch", "PATCH", "/api/users/999", js, `{"name":"x"}`, 404, ""},
		{"oversized body", "POST", "/api/products", js, `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"wrong content type", "POST", "/api/products", "text/plain", `{"name":"a","price":"1.00"}`, 415, ""},
		{"no content type", "PATCH", "/api/products/1", "", `{"name":"a"}`, 415, ""},
		{"unknown route", "GET", "/api/nope", "", "", 404, ""},
		{"wrong method", "DELETE", "/api/products", "", "", 405, "GET, HEAD, POST"},
		{"wrong method item", "POST", "/api/users/1", js, `{}`, 405, "DELETE, GET, HEAD, PATCH, PUT"},
		{"bad limit", "GET", "/api/products?limit=0", "", "", 400, ""},
		{"limit too big", "GET", "/api/products?limit=1001", "", "", 400, ""},
		{"bad after", "GET", "/api/users?after=x", "", "", 400, ""},
		{"sync: body not an object", "POST", "/api/start-product-sync/ProductSyncOrchestrator", js, `[1]`, 400, ""},
		{"sync: unknown orchestrator", "POST", "/api/start-product-sync/ProductSyncOrchestrater", "", "", 404, ""},
		{"sync: orchestrator in another case", "POST", "/api/start-product-sync/productsyncorchestrator", "", "", 404, ""},
		{"sync: orchestrator and more", "POST", "/api/start-product-sync/ProductSyncOrchestrator/x", "", "", 404, ""},
		{"sync: OPTIONS", "OPTIONS", "/api/start-product-sync", "", "", 405, "POST"},
		{"health: POST", "POST", "/api/health", js, `{}`, 405, "GET, HEAD"},
		{"unknown sub-route", "GET", "/api/products/1/extra", "", "", 404, ""},
		{"OPTIONS on a collection", "OPTIONS", "/api/users", "", "", 405, "GET, HEAD, POST"},
		{"sync: unknown entity", "POST", "/api/start-product-sync", js, `{"entity":"order"}`, 400, ""},
		{"sync: unknown field", "POST", "/api/start-product-sync", js, `{"entitty":"user"}`, 400, ""},
		{"sync: a body as text/plain", "POST", "/api/start-product-sync", "text/plain", `{"entity":"user"}`, 415, ""},
		{"sync: a body without its type", "POST", "/api/start-product-sync", "", `{}`, 415, ""},
		{"sync: wrong method", "GET", "/api/start-product-sync", "", "", 405, "POST"},
		{"sync: unknown run", "GET", "/api/product-sync/9999999999999deadbeef0", "", "", 404, ""},
		{"sync: run id with odd characters", "GET", "/api/product-sync/a%27b", "", "", 404, ""},
		{"sync: results of unknown run", "GET", "/api/product-sync/nope/results", "", "", 404, ""},
		{"sync: bad status filter", "GET", "/api/product-sync/realtime-20260101/results?status=great", "", "", 400, ""},
		{"sync: bad results limit", "GET", "/api/product-sync/realtime-20260101/results?limit=0", "", "", 400, ""},
		{"sync: bad continuation", "GET", "/api/product-sync/realtime-20260101/results?continuation=!!!", "", "", 400, ""},
		{"sync: bad list limit", "GET", "/api/product-sync?limit=101", "", "", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, tc.method, e.url+tc.path, tc.ctype, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var d struct{ Status int }
			if err := json.Unmarshal(b, &d); err != nil || d.Status != tc.status {
				t.Errorf("body %s", b)
			}
			if tc.allow != "" && resp.Header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), tc.allow)
			}
			if after := counts(t, e); after != before {
				t.Errorf("row counts %v, want %v", after, before)
			}
		})
	}
}

func TestHealthAndReady(t *testing.T) {
	e := setup(t)
	resp, _ := do(t, "GET", e.url+"/", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("ready: %d", resp.StatusCode)
	}
	resp, b := do(t, "GET", e.url+"/api/health", "", "")
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"ok"}` {
		t.Fatalf("health: %d %s, want 200 {\"status\":\"ok\"} and nothing more", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", e.url+"/api/health/details", "", "")
	var h failover.Health
	if err := json.Unmarshal(b, &h); err != nil || resp.StatusCode != 200 || h.Status != "ok" || h.Serving != "primary" || !h.Databases["fallback"].Reachable {
		t.Fatalf("health details: %d %s", resp.StatusCode, b)
	}
}
