package e2e

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// TestRetention runs retention, in the NightlyProductSync timer, under devhost (invoked
// through the admin API, as the portal's "Test/Run" does) with retention
// settings of a second: the completed run goes from Table Storage whole,
// the tombstone both databases hold identically goes from both, the live
// row stays.
func TestRetention(t *testing.T) {
	s := startStack(t, map[string]string{
		"RUN_RETENTION":       "1s",
		"TOMBSTONE_RETENTION": "1s",
	})
	ctx := context.Background()
	var a, b apiProduct
	// The deleted product first: retention keeps the highest id of each
	// parity (a rebuilt database must not hand it out again).
	s.call("POST", "/api/products", `{"name":"deleted","price":2.5}`, &b)
	s.call("POST", "/api/products", `{"name":"kept","price":1.5}`, &a)
	if code, _ := s.call("DELETE", "/api/products/"+strconv.FormatInt(b.ID, 10), "", nil); code != http.StatusNoContent {
		t.Fatalf("delete answered %d", code)
	}
	waitProduct(t, s.fallback, b.ID, func(p domain.Product, ok bool) bool { return ok && p.Deleted() })
	waitOutboxes(t, s, 0)
	old := s.startRun("")
	if st := s.waitRun(old, 60*time.Second); st.RuntimeStatus != "Completed" || st.CustomStatus.Total != 2 {
		t.Fatalf("run: %+v", st)
	}
	tsvc, err := aztables.NewServiceClientFromConnectionString(s.azurite.ConnString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	entities := func(id string) int {
		n := 0
		for _, q := range []struct{ table, filter string }{
			{table.ResultsTable, "PartitionKey ge '" + id + "' and PartitionKey lt '" + id + ".'"},
			{table.RunsTable, "PartitionKey eq 'run' and RowKey eq '" + id + "'"},
		} {
			pager := tsvc.NewClient(q.table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q.filter})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n += len(page.Entities)
			}
		}
		return n
	}
	if n := entities(old); n < 3 {
		t.Fatalf("the run has %d entities before retention", n)
	}
	time.Sleep(1500 * time.Millisecond) // past both retentions

	// Retention runs in the nightly timer, after the nightly runs start.
	if code, _ := s.call("POST", "/admin/functions/NightlyProductSync", `{"input":""}`, nil); code != http.StatusAccepted {
		t.Fatalf("admin run of NightlyProductSync answered %d", code)
	}
	testenv.WaitFor(t, 30*time.Second, "the expired run to be deleted", func() bool {
		code, _, _, err := s.try("GET", "/api/product-sync/"+old, "")
		return err == nil && code == http.StatusNotFound
	})
	testenv.WaitFor(t, 30*time.Second, "the tombstone to be purged from both databases", func() bool {
		_, inP, err1 := s.primary.LoadProduct(ctx, b.ID)
		_, inF, err2 := s.fallback.LoadProduct(ctx, b.ID)
		return err1 == nil && err2 == nil && !inP && !inF
	})
	testenv.WaitFor(t, 30*time.Second, "no entity of the expired run left", func() bool { return entities(old) == 0 })
	for _, db := range []interface {
		GetProduct(context.Context, int64) (domain.Product, error)
	}{s.primary, s.fallback} {
		if p, err := db.GetProduct(ctx, a.ID); err != nil || p.Name != "kept" {
			t.Errorf("live product: %+v, %v", p, err)
		}
	}
	var list []runStatus
	s.call("GET", "/api/product-sync", "", &list)
	for _, r := range list {
		if r.InstanceID == old {
			t.Errorf("the deleted run is still listed")
		}
	}
}
