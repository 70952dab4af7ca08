package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// synced waits until both databases hold product id with the name and price.
func synced(t *testing.T, s *stack, id int64, name, price string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("product %d as %q %s in both databases", id, name, price), func() bool {
		for _, db := range []store.DB{s.primary, s.fallback} {
			p, ok, err := db.LoadProduct(context.Background(), id)
			if err != nil || !ok || p.Name != name || p.Price.String() != price {
				return false
			}
		}
		return true
	})
}

// Issue 25, the black-box flow, through the API of the real handler under
// devhost: X created and synced; the primary backed up; X renamed twice
// and B created, all synced; the primary restored from the backup and the
// handler restarted; X's price PATCHed to 777.00 and C created; a full
// run. Every acknowledged write is in both databases afterwards, C has an
// id of its own, and X is listed as a conflict that says the primary went
// back in time.
func TestRestoredPrimaryThroughTheAPI(t *testing.T) {
	s := startStack(t, nil)
	var x, b, c apiProduct
	if code, _ := s.call("POST", "/api/products", `{"name":"X","description":"x","price":1}`, &x); code != http.StatusCreated {
		t.Fatalf("create X: %d", code)
	}
	synced(t, s, x.ID, "X", "1.00")
	backup := testenv.TakeBackup(t, s.primaryURL)
	for _, name := range []string{"X v2", "X v3"} {
		if code, _ := s.call("PATCH", fmt.Sprintf("/api/products/%d", x.ID), `{"name":"`+name+`"}`, nil); code != http.StatusOK {
			t.Fatalf("PATCH X: %d", code)
		}
	}
	if code, _ := s.call("POST", "/api/products", `{"name":"B","description":"b","price":2}`, &b); code != http.StatusCreated {
		t.Fatalf("create B: %d", code)
	}
	synced(t, s, x.ID, "X v3", "1.00")
	synced(t, s, b.ID, "B", "2.00")

	backup.Restore(t, s.primaryURL)
	s.restartHandler(t)
	if code, _ := s.call("PATCH", fmt.Sprintf("/api/products/%d", x.ID), `{"price":"777.00"}`, nil); code != http.StatusOK {
		t.Fatalf("PATCH X's price on the restored primary: %d", code)
	}
	if code, _ := s.call("POST", "/api/products", `{"name":"C","description":"c","price":3}`, &c); code != http.StatusCreated {
		t.Fatalf("create C: %d", code)
	}
	if c.ID == b.ID {
		t.Fatalf("C got B's id %d", c.ID)
	}
	run := s.startRun(`{"entity":"product"}`)
	if st := s.waitRun(run, 60*time.Second); st.RuntimeStatus != "Completed" {
		t.Fatalf("run %+v", st)
	}
	waitOutboxes(t, s, 0)
	synced(t, s, x.ID, "X v3", "777.00")
	synced(t, s, b.ID, "B", "2.00")
	synced(t, s, c.ID, "C", "3.00")
	if diff := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)); len(diff) != 0 {
		t.Fatalf("rows differing: %v", diff)
	}
	// X's regression is findable: in the run's conflicts or the day's.
	var found bool
	for _, part := range []string{run, "realtime-" + time.Now().UTC().Format("20060102")} {
		var page struct {
			Items []struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
				Reason string `json:"reason"`
			} `json:"items"`
		}
		if code, _ := s.call("GET", "/api/product-sync/"+part+"/results?status=conflict", "", &page); code != http.StatusOK {
			t.Fatalf("results of %s: %d", part, code)
		}
		for _, it := range page.Items {
			found = found || (it.ID == x.ID && strings.Contains(it.Reason, "primary database went back in time"))
		}
	}
	if !found {
		t.Fatal("X's conflict is not listed with the regression reason")
	}
	if !strings.Contains(s.log.String(), `"event":"database_regressed"`) {
		t.Fatal("no database_regressed log record")
	}
}
