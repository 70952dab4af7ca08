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

	"github.com/jackc/pgx/v5"

	"dualsync/internal/database"
	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// retryStarted is the answer of POST /api/product-sync/{run}/retry-failed.
type retryStarted struct {
	ID     string    `json:"id"`
	Round  int       `json:"round"`
	Items  int64     `json:"items"`
	Resent bool      `json:"resent"`
	Status runStatus `json:"status"`
}

// itemHistory is the answer of GET /api/product-sync/{run}/items/{entity}/{id}.
type itemHistory struct {
	Outcome *struct {
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Attempts int    `json:"attempts"`
		Retry    int    `json:"retry"`
	} `json:"outcome"`
	Attempts int `json:"attempts"`
	History  []struct {
		Reason string `json:"reason"`
		Retry  int    `json:"retry"`
	} `json:"history"`
}

// Retrying a run's failed items through devhost, on real Azurite and
// PostgreSQL: the fallback refuses two products (CHECK constraints the test
// adds), so a run ends with two failed items whose reasons name the
// constraint and count the attempts. With one constraint dropped, a retry
// round turns that item's failed outcome into created and keeps the other
// failed: exact counts, every item counted once. A second round after the
// last constraint is dropped leaves nothing failed.
func TestRetryFailedItems(t *testing.T) {
	ctx := context.Background()
	fallbackURL := testenv.CreateDatabase(t)
	fallback, err := database.Open(ctx, fallbackURL, store.RoleFallback, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fallback.Close)
	if err := fallback.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, fallbackURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("ALTER TABLE products ADD CONSTRAINT retry_refuses_a CHECK (name <> 'Refused A')")
	exec("ALTER TABLE products ADD CONSTRAINT retry_refuses_b CHECK (name <> 'Refused B')")
	s := startStack(t, map[string]string{
		"FALLBACK_DATABASE_URL": fallbackURL,
		"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
	})
	checker := openAPIChecker(t, s.url)
	api := checkedClient(t, checker)
	post := func(path string) (int, []byte) {
		t.Helper()
		resp, err := api.Post(s.url+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	retry := func(run string) retryStarted {
		t.Helper()
		var rs retryStarted
		code, b := post("/api/product-sync/" + run + "/retry-failed")
		if err := json.Unmarshal(b, &rs); code != http.StatusAccepted || err != nil || rs.ID != run {
			t.Fatalf("retry-failed: %d %s", code, b)
		}
		return rs
	}

	now := domain.Millis(time.Now())
	for id, name := range map[int64]string{1: "Lamp", 3: "Refused A", 5: "Refused B", 7: "Desk"} {
		if _, err := s.primary.PutProduct(ctx, domain.Product{ID: id, Name: name, Price: 100, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A clean user run: nothing to retry.
	clean := s.waitRun(s.startRun(`{"entity":"user"}`), 60*time.Second)
	if code, b := post("/api/product-sync/" + clean.InstanceID + "/retry-failed"); code != http.StatusConflict {
		t.Errorf("retry of a run without failed items: %d %s, want 409", code, b)
	}
	if code, b := post("/api/product-sync/8235512345678a1b2c3d4e5/retry-failed"); code != http.StatusNotFound {
		t.Errorf("retry of an unknown run: %d %s, want 404", code, b)
	}

	run := s.startRun("")
	// While its refused items wait for their next attempt, the run says
	// it is retrying them (each waits a visibility timeout, 1 s here).
	var retrying int64
	testenv.WaitFor(t, 90*time.Second, "the run to finish", func() bool {
		var st runStatus
		s.call("GET", "/api/product-sync/"+run, "", &st)
		retrying = max(retrying, st.CustomStatus.Retrying)
		return st.RuntimeStatus == "Completed" || st.RuntimeStatus == "Failed"
	})
	if retrying == 0 {
		t.Errorf("the run never said it was retrying an item")
	}
	st := s.waitRun(run, 90*time.Second)
	want := map[string]int64{"created": 2, "updated": 0, "deleted": 0, "unchanged": 0, "conflict": 0, "failed": 2}
	if st.RuntimeStatus != "Completed" || fmt.Sprint(st.CustomStatus.Counts) != fmt.Sprint(want) {
		t.Fatalf("run = %s %v, want Completed %v", st.RuntimeStatus, st.CustomStatus.Counts, want)
	}
	var h itemHistory
	getJSON(t, api, s.url+"/api/product-sync/"+run+"/items/product/3", &h)
	if h.Outcome == nil || h.Outcome.Status != "failed" || h.Outcome.Attempts != 2 || h.Attempts != 2 || len(h.History) != 2 ||
		!strings.Contains(h.Outcome.Reason, `check constraint "retry_refuses_a"`) || !strings.Contains(h.Outcome.Reason, "2 attempts") {
		t.Fatalf("item 3 = %+v", h)
	}
	for _, leak := range []string{"postgres://", "127.0.0.1", "password", "Refused A"} {
		if strings.Contains(h.Outcome.Reason, leak) {
			t.Errorf("the reason %q leaks %q", h.Outcome.Reason, leak)
		}
	}

	// Round 1: A may now be copied, B still may not.
	exec("ALTER TABLE products DROP CONSTRAINT retry_refuses_a")
	rs := retry(run)
	if rs.Round != 1 || rs.Items != 2 || rs.Resent || rs.Status.RuntimeStatus != "Running" {
		t.Errorf("round 1 = %+v, want 2 items sent, the run running", rs)
	}
	// A second call while the round is under way sends its items again
	// (or, once it is over, starts round 2); duplicates count nothing.
	again := retry(run)
	if again.Resent && again.Round != 1 {
		t.Errorf("second call: %+v", again)
	}
	st = s.waitRun(run, 90*time.Second)
	// Item 3's first outcome of round 1 counts: created, or unchanged when
	// the duplicate message sent by the second call merged it alongside
	// and recorded first. Every item is counted once either way.
	c := st.CustomStatus.Counts
	if st.RuntimeStatus != "Completed" || c["failed"] != 1 || c["created"]+c["unchanged"] != 3 || c["unchanged"] > 1 ||
		c["updated"]+c["deleted"]+c["conflict"] != 0 || st.CustomStatus.Done != 4 || st.CustomStatus.Total != 4 {
		t.Fatalf("after round 1: %s %v done %d/%d, want Completed, 1 failed, 3 created (or 2 and 1 unchanged), 4/4",
			st.RuntimeStatus, c, st.CustomStatus.Done, st.CustomStatus.Total)
	}
	outcome := map[int64]string{}
	for _, o := range st.Output {
		outcome[o.ID] = o.Status
	}
	if outcome[1] != "created" || outcome[7] != "created" || outcome[5] != "failed" || (outcome[3] != "created" && outcome[3] != "unchanged") || len(outcome) != 4 {
		t.Errorf("output after round 1: %v", outcome)
	}
	getJSON(t, api, s.url+"/api/product-sync/"+run+"/items/product/3", &h)
	if h.Outcome == nil || h.Outcome.Status != outcome[3] || h.Outcome.Retry != 1 {
		t.Errorf("item 3 after round 1 = %+v", h.Outcome)
	}
	getJSON(t, api, s.url+"/api/product-sync/"+run+"/items/product/5", &h)
	if h.Outcome == nil || h.Outcome.Status != "failed" || h.Outcome.Retry < 1 || h.Attempts < 4 || !strings.Contains(h.Outcome.Reason, "retry round") {
		t.Errorf("item 5 after round 1 = %+v (attempts %d)", h.Outcome, h.Attempts)
	}
	if p, ok, err := fallback.LoadProduct(ctx, 3); err != nil || !ok || p.Name != "Refused A" {
		t.Errorf("product 3 in the fallback: %+v %v %v", p, ok, err)
	}

	// Round 2 after the last constraint is gone: nothing failed.
	exec("ALTER TABLE products DROP CONSTRAINT retry_refuses_b")
	rs = retry(run)
	if rs.Items != 1 || rs.Resent {
		t.Errorf("round 2 = %+v, want 1 item", rs)
	}
	st = s.waitRun(run, 90*time.Second)
	want = map[string]int64{"created": c["created"] + 1, "updated": 0, "deleted": 0, "unchanged": c["unchanged"], "conflict": 0, "failed": 0}
	if fmt.Sprint(st.CustomStatus.Counts) != fmt.Sprint(want) || st.CustomStatus.Done != 4 {
		t.Errorf("after round 2: %v done %d, want %v", st.CustomStatus.Counts, st.CustomStatus.Done, want)
	}
	if d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, fallback)); len(d) != 0 {
		t.Errorf("rows differing after the retries: %v", d)
	}
	if code, _ := post("/api/product-sync/" + run + "/retry-failed"); code != http.StatusConflict {
		t.Errorf("retry with nothing failed: %d, want 409", code)
	}

	// The runs list's filters.
	var runs []runStatus
	getJSON(t, api, s.url+"/api/product-sync?entity=user", &runs)
	if len(runs) != 1 || runs[0].InstanceID != clean.InstanceID {
		t.Errorf("entity=user lists %+v", runs)
	}
	getJSON(t, api, s.url+"/api/product-sync?status=Completed&entity=product&from="+time.Now().UTC().Format(time.DateOnly), &runs)
	if len(runs) != 1 || runs[0].InstanceID != run {
		t.Errorf("Completed product runs of today: %+v", runs)
	}
	getJSON(t, api, s.url+"/api/product-sync?to=2020-01-01", &runs)
	if len(runs) != 0 {
		t.Errorf("runs before 2020: %+v", runs)
	}
	if code, _ := s.call("GET", "/api/product-sync?status=Done", "", nil); code != http.StatusBadRequest {
		t.Errorf("unknown status filter: %d, want 400", code)
	}
	seen := checker.Seen()
	for _, want := range []string{"POST /product-sync/{run}/retry-failed 202", "POST /product-sync/{run}/retry-failed 409",
		"POST /product-sync/{run}/retry-failed 404", "GET /product-sync/{run}/items/{entity}/{id} 200", "GET /product-sync 200"} {
		if seen[want] == 0 {
			t.Errorf("no %q exchange was checked; seen %v", want, seen)
		}
	}
}
