package table

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// runIDAt is a run id as the engine makes them (time-inverted ms + hex).
func runIDAt(t time.Time) string {
	return fmt.Sprintf("%013d%s", 9_999_999_999_999-t.UnixMilli(), testenv.RandomHex(5))
}

// fullRun creates a run created at `at` with P partitions, a plan page,
// `items` results and an attempt error: every kind of entity a run has.
func fullRun(t *testing.T, s *Store, at time.Time, parts, items int) Run {
	t.Helper()
	c := ctx(t)
	at = at.UTC().Truncate(time.Millisecond)
	r := Run{ID: runIDAt(at), Entity: domain.EntityProduct, Trigger: "timer", Status: RunCompleted,
		CreatedTime: at, LastUpdatedTime: at, Partitions: parts}
	if err := s.CreateRun(c, r); err != nil {
		t.Fatalf("create run: %v", err)
	}
	ids := make([]int64, items)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	if err := s.PutPlanPage(c, r.ID, PlanPage{After: 0, Count: items, IDs: ids, Next: int64(items), Last: true, Owner: "m"}); err != nil {
		t.Fatal(err)
	}
	work := make(chan int64)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			for id := range work {
				if _, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: StatusUnchanged}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("record result: %v", err)
		}
	}
	if err := s.RecordAttemptError(c, r.ID, domain.EntityProduct, 1, "boom"); err != nil {
		t.Fatal(err)
	}
	return r
}

// entitiesOf counts the SyncResults entities of run id's partitions (id and
// id-NN) and whether its run entity exists.
func entitiesOf(t *testing.T, s *Store, id string) (results int, runEntity bool) {
	t.Helper()
	es, err := s.queryAll(ctx(t), "PartitionKey ge '"+id+"' and PartitionKey lt '"+id+".'", "PartitionKey,RowKey")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.runs.GetEntity(ctx(t), runPartition, id, nil)
	return len(es), err == nil
}

func TestExpireRuns(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	now := time.Now()
	horizon := now.Add(-30 * 24 * time.Hour)
	old := fullRun(t, s, now.Add(-40*24*time.Hour), 2, 230) // > 100 per partition: several transactions
	oldP1 := fullRun(t, s, now.Add(-31*24*time.Hour), 1, 120)
	recent := fullRun(t, s, now.Add(-29*24*time.Hour), 2, 30)
	recentN, _ := entitiesOf(t, s, recent.ID)

	exp, err := s.ExpiringRuns(c, horizon, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 2 || exp[0].ID != oldP1.ID || exp[1].ID != old.ID || exp[0].Deleting || exp[0].ETag == "" {
		t.Fatalf("ExpiringRuns = %+v, want %s then %s, unmarked", exp, oldP1.ID, old.ID)
	}
	for _, e := range exp {
		before, _ := entitiesOf(t, s, e.ID)
		if err := s.MarkRunDeleting(c, e.ID, e.ETag, now); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteRun(c, e.ID, e.Partitions)
		if err != nil {
			t.Fatal(err)
		}
		if left, run := entitiesOf(t, s, e.ID); left != 0 || run {
			t.Errorf("run %s after DeleteRun: %d entities, run entity %v; want none", e.ID, left, run)
		}
		if n != int64(before)+1 {
			t.Errorf("DeleteRun of %s said %d entities, there were %d and the run", e.ID, n, before)
		}
	}
	if left, run := entitiesOf(t, s, recent.ID); left != recentN || !run {
		t.Errorf("the recent run lost entities: %d of %d left, run entity %v", left, recentN, run)
	}
	if exp, _ := s.ExpiringRuns(c, horizon, "", 10); len(exp) != 0 {
		t.Errorf("ExpiringRuns after deleting = %+v", exp)
	}
	// Deleting again is harmless.
	if _, err := s.DeleteRun(c, old.ID, 2); err != nil {
		t.Errorf("DeleteRun of a deleted run: %v", err)
	}
}

// TestMarkRunDeletingChanged: a run updated after it was listed is not
// marked (the caller decides again), and a marked run is invisible.
func TestMarkRunDeletingChanged(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	now := time.Now()
	r := fullRun(t, s, now.Add(-40*24*time.Hour), 1, 3)
	exp, err := s.ExpiringRuns(c, now.Add(-30*24*time.Hour), "", 10)
	if err != nil || len(exp) != 1 {
		t.Fatalf("ExpiringRuns = %+v, %v", exp, err)
	}
	r.Status = RunRunning
	if err := s.UpdateRun(c, r); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRunDeleting(c, r.ID, exp[0].ETag, now); !domain.IsKind(err, domain.KindConflict) {
		t.Fatalf("MarkRunDeleting with a stale ETag: %v, want Conflict", err)
	}
	if _, err := s.GetRun(c, r.ID); err != nil {
		t.Fatalf("an unmarked run: %v", err)
	}
	if err := s.MarkRunDeleting(c, r.ID, azcore.ETagAny, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRun(c, r.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("GetRun of a marked run: %v, want NotFound", err)
	}
	if runs, _ := s.ListRuns(c, 10); len(runs) != 0 {
		t.Errorf("ListRuns lists a marked run: %+v", runs)
	}
}

// cancelAfter cancels a context once n entity-group transactions were sent:
// a crash in the middle of a deletion.
type cancelAfter struct {
	n      atomic.Int64
	after  int64
	cancel atomic.Pointer[context.CancelFunc]
}

func (p *cancelAfter) Do(req *policy.Request) (*http.Response, error) {
	if strings.Contains(req.Raw().URL.Path, "$batch") && p.n.Add(1) == p.after {
		if c := p.cancel.Load(); c != nil {
			(*c)()
		}
	}
	return req.Next()
}

// TestDeleteRunCrashResumed: a deletion that stops half-way leaves the run
// marked (invisible to clients, listed as Deleting for retention), and a
// second DeleteRun removes everything that was left.
func TestDeleteRunCrashResumed(t *testing.T) {
	crash := &cancelAfter{after: 3}
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{
		PerCallPolicies: []policy.Policy{crash}, Retry: policy.RetryOptions{MaxRetries: -1},
	}}
	s := newStore(t, testenv.Storage(t), opts)
	now := time.Now()
	r := fullRun(t, s, now.Add(-40*24*time.Hour), 2, 400)
	crash.n.Store(0)

	c := ctx(t)
	if err := s.MarkRunDeleting(c, r.ID, azcore.ETagAny, now); err != nil {
		t.Fatal(err)
	}
	cc, cancel := context.WithCancel(c)
	crash.cancel.Store(&cancel)
	if _, err := s.DeleteRun(cc, r.ID, 2); err == nil {
		t.Fatal("DeleteRun survived the crash")
	}
	crash.cancel.Store(nil)
	left, run := entitiesOf(t, s, r.ID)
	if left == 0 || !run {
		t.Fatalf("after the crash: %d entities, run entity %v; want some left and the run", left, run)
	}
	if _, err := s.GetRun(c, r.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("GetRun of a half-deleted run: %v, want NotFound", err)
	}
	exp, err := s.ExpiringRuns(c, now.Add(-30*24*time.Hour), "", 10)
	if err != nil || len(exp) != 1 || !exp[0].Deleting {
		t.Fatalf("ExpiringRuns after the crash = %+v, %v; want the run, Deleting", exp, err)
	}
	if _, err := s.DeleteRun(c, r.ID, exp[0].Partitions); err != nil {
		t.Fatal(err)
	}
	if left, run := entitiesOf(t, s, r.ID); left != 0 || run {
		t.Errorf("after resuming: %d entities, run entity %v; want none", left, run)
	}
}

func TestDeleteRealtimeBefore(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	now := time.Now().UTC()
	oldAt, keepAt := now.Add(-40*24*time.Hour), now.Add(-29*24*time.Hour)
	var rs []Result
	for id := int64(1); id <= 300; id++ { // buckets in many of the day's partitions
		rs = append(rs, Result{Entity: domain.EntityProduct, ID: id * 37, Status: StatusUpdated, At: oldAt},
			Result{Entity: domain.EntityProduct, ID: id * 37, Status: StatusUpdated, At: keepAt})
	}
	big := strings.Repeat("x", 600) // kept apart in a detail entity
	rs = append(rs, Result{Entity: domain.EntityUser, ID: 5, Status: StatusConflict, Detail: `"` + big + `"`, At: oldAt})
	if err := s.RecordRealtime(c, rs...); err != nil {
		t.Fatal(err)
	}
	oldDay, keepDay := RealtimePartition(oldAt), RealtimePartition(keepAt)
	if err := s.RecordAttemptError(c, oldDay, domain.EntityProduct, 37, "boom"); err != nil {
		t.Fatal(err)
	}
	// The layout of earlier releases: one entity per item in -NN.
	legacy, _ := marshal(itemKey("result", domain.EntityProduct, 9), oldDay+"-03", map[string]any{"status": StatusCreated})
	if _, err := s.results.AddEntity(c, legacy, nil); err != nil {
		t.Fatal(err)
	}
	count := func(day string) int {
		es, err := s.queryAll(c, "PartitionKey ge '"+day+"' and PartitionKey lt '"+day+".'", "PartitionKey,RowKey")
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	oldN, keepN := count(oldDay), count(keepDay)
	if oldN < 10 || keepN < 5 {
		t.Fatalf("setup: %d entities on the old day, %d on the kept day", oldN, keepN)
	}
	n, err := s.DeleteRealtimeBefore(c, now.Add(-30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := count(oldDay); got != 0 || n != int64(oldN) {
		t.Errorf("old day: %d entities left, %d deleted of %d", got, n, oldN)
	}
	if got := count(keepDay); got != keepN {
		t.Errorf("kept day: %d entities, want %d", got, keepN)
	}
	page, _, err := s.Results(c, keepDay, "", 1000, "")
	if err != nil || len(page) != 300 {
		t.Errorf("the kept day's results: %d, %v; want 300", len(page), err)
	}

}
