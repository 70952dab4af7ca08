package table

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"dualsync/internal/domain"
)

// A retried item's outcome replaces its failed one, and the counters move
// exactly: Failed down by one per item that now succeeds, its new status
// up, Retried up once per item and round, whatever redeliveries and
// concurrent writers do.
func TestReplaceFailedCountsExactly(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	for id := int64(1); id <= 10; id++ {
		st := StatusCreated
		if id%2 == 0 {
			st = StatusFailed
		}
		if _, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: st, Attempts: 5}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, want map[string]int64, retried int64) {
		t.Helper()
		p, err := s.Progress(c, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for st, n := range want {
			if p.Counts[st] != n {
				t.Errorf("%s: %s = %d, want %d (counts %v)", step, st, p.Counts[st], n, p.Counts)
			}
		}
		if p.Done != 10 || p.Retried != retried {
			t.Errorf("%s: done %d retried %d, want 10 and %d", step, p.Done, p.Retried, retried)
		}
	}
	check("before", map[string]int64{StatusCreated: 5, StatusFailed: 5}, 0)

	replace := func(id int64, round int, status string) bool {
		t.Helper()
		ok, err := s.ReplaceFailed(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: status, Retry: round})
		if err != nil {
			t.Fatalf("replace %d round %d: %v", id, round, err)
		}
		return ok
	}
	steps := []struct {
		name   string
		id     int64
		round  int
		status string
		want   bool
	}{
		{"a failed item succeeds", 2, 1, StatusUpdated, true},
		{"its redelivery", 2, 1, StatusCreated, false},
		{"a failed item fails again", 4, 1, StatusFailed, true},
		{"the same round again", 4, 1, StatusUpdated, false},
		{"an item that did not fail", 5, 1, StatusUpdated, false},
		{"an item with no outcome", 99, 1, StatusUpdated, false},
	}
	for _, st := range steps {
		if got := replace(st.id, st.round, st.status); got != st.want {
			t.Errorf("%s: replaced %v, want %v", st.name, got, st.want)
		}
	}
	check("round 1, one by one", map[string]int64{StatusCreated: 5, StatusUpdated: 1, StatusFailed: 4}, 2)

	// Items 6, 8, 10 of round 1 at once, each delivered three times.
	var wg sync.WaitGroup
	var mu sync.Mutex
	replaced := map[int64]int{}
	for _, id := range []int64{6, 8, 10} {
		for range 3 {
			wg.Go(func() {
				ok, err := s.ReplaceFailed(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: StatusCreated, Retry: 1})
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					replaced[id]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if fmt.Sprint(replaced) != "map[6:1 8:1 10:1]" {
		t.Errorf("concurrent deliveries replaced %v, want each item once", replaced)
	}
	check("round 1, concurrent", map[string]int64{StatusCreated: 8, StatusUpdated: 1, StatusFailed: 1}, 5)

	// Round 2 retries the item that failed again; a late round-1 message
	// changes nothing after it.
	if !replace(4, 2, StatusUpdated) || replace(4, 1, StatusCreated) {
		t.Errorf("round 2 of item 4: want replaced once")
	}
	check("round 2", map[string]int64{StatusCreated: 8, StatusUpdated: 2, StatusFailed: 0}, 6)

	got, ok, err := s.Item(c, r.ID, domain.EntityProduct, 4)
	if err != nil || !ok || got.Status != StatusUpdated || got.Retry != 2 {
		t.Errorf("item 4 = %+v %v %v, want updated by round 2", got, ok, err)
	}
	if got, ok, err := s.Item(c, r.ID, domain.EntityProduct, 1); err != nil || !ok || got.Status != StatusCreated || got.Retry != 0 {
		t.Errorf("item 1 = %+v %v %v", got, ok, err)
	}
	if _, ok, err := s.Item(c, r.ID, domain.EntityProduct, 98); err != nil || ok {
		t.Errorf("item 98: %v %v, want none", ok, err)
	}
	if _, err := s.ReplaceFailed(c, r.ID, Result{Entity: domain.EntityProduct, ID: 2, Status: StatusUpdated}); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("a replacement without a round: %v, want invalid", err)
	}
}

// StartRetry reopens a completed run for one round at a time.
func TestStartRetry(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	r.Status, r.Total, r.Counts, r.Output = RunCompleted, 3, map[string]int64{StatusFailed: 3}, `[{"status":"failed","id":1}]`
	if err := s.UpdateRun(c, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.StartRetry(c, r.ID, 1, 3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.GetRun(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []Run{got, read} {
		if x.Status != RunRunning || x.RetryRound != 1 || x.RetryTotal != 3 || x.Counts != nil || x.Output != "" ||
			x.Total != 3 || x.Entity != r.Entity || x.Input != r.Input || !x.CreatedTime.Equal(r.CreatedTime) || x.Partitions != r.Partitions {
			t.Errorf("run after StartRetry = %+v", x)
		}
	}
	if _, err := s.StartRetry(c, r.ID, 1, 3, time.Now()); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("round 1 twice: %v, want a conflict", err)
	}
	if got, err := s.StartRetry(c, r.ID, 2, 2, time.Now()); err != nil || got.RetryTotal != 5 {
		t.Errorf("round 2: %+v %v, want RetryTotal 5", got, err)
	}
	if runs, err := s.ListRuns(c, 1000); err != nil {
		t.Fatal(err)
	} else {
		for _, x := range runs {
			if x.ID == r.ID && (x.RetryRound != 2 || x.RetryTotal != 5) {
				t.Errorf("listed run %+v, want round 2 of 5 items", x)
			}
		}
	}
}

// Attempts keeps the count of every failed attempt and the newest ones.
func TestAttemptHistory(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	for i := range 25 {
		if err := s.RecordAttempt(c, r.ID, domain.EntityUser, 7, Attempt{Reason: fmt.Sprint("try ", i), Retry: i / 20}); err != nil {
			t.Fatal(err)
		}
	}
	n, hist, err := s.Attempts(c, r.ID, domain.EntityUser, 7)
	if err != nil {
		t.Fatal(err)
	}
	if n != 25 || len(hist) != maxHistory || hist[0].Reason != "try 5" || hist[len(hist)-1].Reason != "try 24" || hist[len(hist)-1].Retry != 1 || hist[0].At.IsZero() {
		t.Errorf("attempts %d, history %+v", n, hist)
	}
	if last, ok, err := s.AttemptError(c, r.ID, domain.EntityUser, 7); err != nil || !ok || last != "try 24" {
		t.Errorf("AttemptError = %q %v %v", last, ok, err)
	}
	if n, hist, err := s.Attempts(c, r.ID, domain.EntityUser, 8); err != nil || n != 0 || hist != nil {
		t.Errorf("no attempts: %d %v %v", n, hist, err)
	}

	// Concurrent deliveries' attempts all count.
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if err := s.RecordAttemptError(c, r.ID, domain.EntityUser, 9, "busy"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, _, err := s.Attempts(c, r.ID, domain.EntityUser, 9); err != nil || n != 6 {
		t.Errorf("concurrent attempts counted %d (%v), want 6", n, err)
	}

	// Retrying: items 7 and 9 failed attempts; 9 has an outcome since.
	if _, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityUser, ID: 9, Status: StatusUpdated}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Retrying(c, r.ID); err != nil || n != 1 {
		t.Errorf("Retrying = %d %v, want 1", n, err)
	}
}

func TestListRunsWhere(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	var ids []string
	for i := range 4 {
		r := Run{ID: newRunID(), Entity: domain.EntityProduct, Status: RunPending, Partitions: 1}
		if i%2 == 1 {
			r.Entity = domain.EntityUser
		}
		if err := s.CreateRun(c, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// ids[0] is the oldest: the largest key.
	tests := []struct {
		name string
		f    RunFilter
		want int
	}{
		{"all", RunFilter{MinKey: ids[3], MaxKey: ids[0] + "~"}, 4},
		{"users", RunFilter{Entity: domain.EntityUser, MinKey: ids[3], MaxKey: ids[0] + "~"}, 2},
		{"a key range", RunFilter{MinKey: ids[2], MaxKey: ids[0]}, 2},
	}
	for _, tt := range tests {
		runs, err := s.ListRunsWhere(c, tt.f, 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range runs {
			for _, id := range ids {
				if r.ID == id && (tt.f.Entity == "" || r.Entity == tt.f.Entity) {
					n++
				}
			}
		}
		if n != tt.want || len(runs) != tt.want {
			t.Errorf("%s: %d of ours in %d runs, want %d", tt.name, n, len(runs), tt.want)
		}
	}
	if _, err := s.ListRunsWhere(c, RunFilter{Entity: "order"}, 10); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("unknown entity: %v", err)
	}
}

// Item finds a real-time outcome in its day's bucket, its long detail
// beside it, and its failed attempts in the day's partition.
func TestItemRealtime(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	day := RealtimePartition(at)
	long := strings.Repeat("d", 2*inlineMax)
	if err := s.RecordRealtime(c,
		Result{Entity: domain.EntityProduct, ID: 70, Status: StatusFailed, Reason: "gave up", Attempts: 3, At: at},
		Result{Entity: domain.EntityProduct, ID: 71, Status: StatusConflict, Reason: "both", Detail: `{"x":"` + long + `"}`, At: at},
	); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttemptError(c, day, domain.EntityProduct, 70, "busy"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id       int64
		ok       bool
		status   string
		attempts int
		detail   int
	}{
		{70, true, StatusFailed, 3, 0},
		{71, true, StatusConflict, 0, len(long) + 8},
		{72, false, "", 0, 0},
	} {
		r, ok, err := s.Item(c, day, domain.EntityProduct, tc.id)
		if err != nil || ok != tc.ok || r.Status != tc.status || r.Attempts != tc.attempts || len(r.Detail) != tc.detail {
			t.Errorf("item %d = %+v %v %v", tc.id, r, ok, err)
		}
	}
	if n, hist, err := s.Attempts(c, day, domain.EntityProduct, 70); err != nil || n != 1 || hist[0].Reason != "busy" {
		t.Errorf("attempts of 70: %d %+v %v", n, hist, err)
	}
}
