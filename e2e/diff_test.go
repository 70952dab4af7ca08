package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dump is every row of every table and every sequence of one database, as
// text in a fixed order: two equal dumps mean nothing was written.
func dump(t *testing.T, rawURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables, seqs []string
	rows, err := conn.Query(ctx, `SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') ORDER BY c.relname`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, kind string
		if err := rows.Scan(&name, &kind); err != nil {
			t.Fatal(err)
		}
		if kind == "S" {
			seqs = append(seqs, name)
		} else {
			tables = append(tables, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tables, "products") || !slices.Contains(tables, "outbox") {
		t.Fatalf("tables %v: the dump misses the schema", tables)
	}
	var b strings.Builder
	for _, tbl := range tables {
		var text *string
		q := "SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM " + pgx.Identifier{tbl}.Sanitize() + " t"
		if err := conn.QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== %s\n", tbl)
		if text != nil {
			b.WriteString(*text + "\n")
		}
	}
	for _, seq := range seqs {
		var last int64
		var called bool
		if err := conn.QueryRow(ctx, "SELECT last_value, is_called FROM "+pgx.Identifier{seq}.Sanitize()).Scan(&last, &called); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "== sequence %s %d %v\n", seq, last, called)
	}
	return b.String()
}

func execSQL(t *testing.T, rawURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("%s: %v (%d rows)", sql, err, tag.RowsAffected())
	}
}

type modeStatus struct {
	RuntimeStatus string `json:"runtimeStatus"`
	CustomStatus  struct {
		Mode    string           `json:"mode"`
		Total   int64            `json:"total"`
		Done    int64            `json:"done"`
		Differs *int64           `json:"differs"`
		Counts  map[string]int64 `json:"counts"`
	} `json:"customStatus"`
	Output []struct {
		Status string `json:"status"`
		ID     int64  `json:"id"`
	} `json:"output"`
}

// Rows changed with SQL behind the API's back (no outbox row, no new
// version) are found by a verify run, which writes nothing to either
// database, and then synced by a diff run. The handler runs with a fault
// injected: it exits right after recording each range, on the range
// message's first delivery; devhost restarts it and the queue redelivers
// the message, and the counts stay exact.
func TestDiffAndVerifyRunsFindRowsChangedBySQL(t *testing.T) {
	s := startStack(t, map[string]string{"DUALSYNC_CRASH_POINT": "range-recorded"})
	var ids []int64
	for i := range 6 {
		var p apiProduct
		if code, _ := s.call("POST", "/api/products", fmt.Sprintf(`{"name":"Item %d","price":"%d.50"}`, i, 10+i), &p); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		ids = append(ids, p.ID)
	}
	waitOutboxes(t, s, 0)
	if d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)); len(d) != 0 {
		t.Fatalf("rows differing before the drill: %v", d)
	}
	// Behind the API's back: a price changed on the primary, a row deleted
	// on the fallback, a row removed from the fallback altogether.
	execSQL(t, s.primaryURL, "UPDATE products SET price = 777.77 WHERE id = $1", ids[1])
	execSQL(t, s.fallbackURL, "UPDATE products SET deleted_at = updated_at WHERE id = $1", ids[3])
	execSQL(t, s.fallbackURL, "DELETE FROM products WHERE id = $1", ids[5])

	beforeP, beforeF := dump(t, s.primaryURL), dump(t, s.fallbackURL)
	verify := s.startRun(`{"mode":"verify"}`)
	var vst modeStatus
	waitMode(t, s, verify, &vst)
	cs := vst.CustomStatus
	if vst.RuntimeStatus != "Completed" || cs.Mode != "verify" || cs.Total != 6 || cs.Done != 6 || cs.Differs == nil || *cs.Differs != 3 ||
		cs.Counts["unchanged"] != 3 || cs.Counts["differs"] != 3 {
		t.Fatalf("verify run: %+v", vst)
	}
	if dump(t, s.primaryURL) != beforeP || dump(t, s.fallbackURL) != beforeF {
		t.Fatal("the verify run changed a database")
	}
	var page struct {
		Items []struct {
			ID     int64           `json:"id"`
			Status string          `json:"status"`
			Detail json.RawMessage `json:"detail"`
		} `json:"items"`
	}
	if code, _ := s.call("GET", "/api/product-sync/"+verify+"/results?status=differs", "", &page); code != http.StatusOK || len(page.Items) != 3 {
		t.Fatalf("differs results: %d %+v", code, page)
	}
	want := map[int64]string{ids[1]: "content", ids[3]: "tombstone", ids[5]: "missing_fallback"}
	for _, it := range page.Items {
		var d struct {
			Primary     map[string]any `json:"primary"`
			Differences []string       `json:"differences"`
		}
		if err := json.Unmarshal(it.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(d.Differences, want[it.ID]) || d.Primary == nil {
			t.Errorf("item %d: %s", it.ID, it.Detail)
		}
	}

	diff := s.startRun(`{"mode":"diff"}`)
	var dst modeStatus
	waitMode(t, s, diff, &dst)
	cs = dst.CustomStatus
	if dst.RuntimeStatus != "Completed" || cs.Mode != "diff" || cs.Total != 6 || cs.Done != 6 || cs.Counts["unchanged"] != 3 || len(dst.Output) != 3 || cs.Differs != nil {
		t.Fatalf("diff run: %+v", dst)
	}
	if d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)); len(d) != 0 {
		t.Errorf("rows differing after the diff run: %v", d)
	}
	if p, _, _ := s.primary.LoadProduct(context.Background(), ids[1]); p.Price.String() != "777.77" {
		t.Errorf("the SQL change did not win on the primary: %+v", p)
	}
	if f, ok, _ := s.fallback.LoadProduct(context.Background(), ids[1]); !ok || f.Price.String() != "777.77" {
		t.Errorf("the SQL change did not reach the fallback: %+v", f)
	}
	if n := strings.Count(s.log.String(), "fault injection: exiting"); n < 2 {
		t.Errorf("the handler crashed %d times mid-range, want at least one per run", n)
	}
}

func waitMode(t *testing.T, s *stack, id string, st *modeStatus) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		code, _ := s.call("GET", "/api/product-sync/"+id, "", st)
		if code == http.StatusOK {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("run %s not final within 90s: %+v", id, st)
}
