package table

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// counter counts the HTTP requests a client sends.
type counter struct{ n atomic.Int64 }

func (c *counter) Do(req *policy.Request) (*http.Response, error) {
	c.n.Add(1)
	return req.Next()
}

func newStore(t *testing.T, connString string, opts *aztables.ClientOptions) *Store {
	t.Helper()
	// Every request the Store sends is checked against Azure's limits.
	opts, _ = withLimits(t, opts)
	svc, err := aztables.NewServiceClientFromConnectionString(connString, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Tables of the test's own, so the app's tables on a shared Azurite stay clean.
	s := New(svc, &Options{Prefix: "t" + testenv.RandomHex(4)})
	if err := s.Ensure(ctx(t)); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	t.Cleanup(func() {
		for _, name := range s.names {
			_, _ = svc.DeleteTable(context.Background(), name, nil)
		}
	})
	return s
}

func sharedStore(t *testing.T) *Store { return newStore(t, testenv.Storage(t), nil) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// newRunID is unique per test and, like real ids, sorts by time inverted.
func newRunID() string {
	return fmt.Sprintf("%019d-%s", int64(1<<62)-time.Now().UnixNano(), testenv.RandomHex(4))
}

func createRun(t *testing.T, s *Store) Run { t.Helper(); return createRunP(t, s, DefaultPartitions) }

// createRunP creates a run of parts partitions (1: the layout of runs from
// before partitions).
func createRunP(t *testing.T, s *Store, parts int) Run {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := Run{ID: newRunID(), Name: "orch", Entity: domain.EntityProduct, Trigger: "http", Input: `{"a":1}`,
		Status: RunPending, CreatedTime: now, LastUpdatedTime: now, Partitions: parts}
	if err := s.CreateRun(ctx(t), r); err != nil {
		t.Fatalf("create run: %v", err)
	}
	return r
}

func TestRunLifecycle(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)

	got, err := s.GetRun(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(r) {
		t.Fatalf("GetRun = %+v, want %+v", got, r)
	}

	upd := Run{ID: r.ID, Status: RunFailed, Reason: "boom", Total: 7,
		LastUpdatedTime: r.CreatedTime.Add(time.Second), Counts: map[string]int64{StatusCreated: 5, StatusFailed: 2}}
	if err := s.UpdateRun(c, upd); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetRun(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.Status, want.Reason, want.Total, want.LastUpdatedTime, want.Counts = upd.Status, upd.Reason, upd.Total, upd.LastUpdatedTime, upd.Counts
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after update GetRun = %+v, want %+v", got, want)
	}

	errs := []struct {
		name string
		err  error
		kind domain.Kind
	}{
		{"create twice", s.CreateRun(c, r), domain.KindConflict},
		{"get missing", func() error { _, err := s.GetRun(c, newRunID()); return err }(), domain.KindNotFound},
		{"update missing", s.UpdateRun(c, Run{ID: newRunID(), Status: RunRunning}), domain.KindNotFound},
		{"bad entity", s.CreateRun(c, Run{ID: newRunID(), Entity: "order"}), domain.KindInvalid},
		{"bad id", s.CreateRun(c, Run{ID: "a/b", Entity: domain.EntityUser}), domain.KindInvalid},
		{"bad count status", s.UpdateRun(c, Run{ID: r.ID, Counts: map[string]int64{"lost": 1}}), domain.KindInvalid},
		{"progress of missing run", func() error { _, err := s.Progress(c, newRunID()); return err }(), domain.KindNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if !domain.IsKind(tt.err, tt.kind) {
				t.Fatalf("error %v, want kind %s", tt.err, tt.kind)
			}
		})
	}

	// The failed second CreateRun must not have disturbed the first's shards.
	if p, err := s.Progress(c, r.ID); err != nil || p.Done != 0 || len(p.Counts) != 6 {
		t.Fatalf("progress after duplicate create = %+v, %v", p, err)
	}
}

func TestListRunsNewestFirst(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	var ids []string
	for range 3 {
		ids = append(ids, createRun(t, s).ID)
		time.Sleep(2 * time.Millisecond)
	}
	runs, err := s.ListRuns(c, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, r := range runs {
		pos[r.ID] = i
		if i > 0 && runs[i-1].ID >= r.ID {
			t.Fatalf("runs not in RowKey order: %s before %s", runs[i-1].ID, r.ID)
		}
	}
	// Created later means a smaller id, so listed earlier.
	if !(pos[ids[2]] < pos[ids[1]] && pos[ids[1]] < pos[ids[0]]) {
		t.Fatalf("positions %d %d %d: newest should come first", pos[ids[2]], pos[ids[1]], pos[ids[0]])
	}
	for _, limit := range []int{1, 2} {
		got, err := s.ListRuns(c, limit)
		if err != nil || len(got) != limit {
			t.Fatalf("ListRuns(%d) = %d runs, %v", limit, len(got), err)
		}
	}
}

// A listed run carries every cached count and field its status shows,
// a verify run's differs and mode included (the dashboard reads the list).
func TestListedRunKeepsEveryCount(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := Run{ID: newRunID(), Entity: domain.EntityProduct, Trigger: "http", Mode: "verify", Status: RunPending, CreatedTime: now, LastUpdatedTime: now}
	if err := s.CreateRun(c, r); err != nil {
		t.Fatal(err)
	}
	r.Status, r.Compared = "Completed", 1
	r.Counts = map[string]int64{StatusUnchanged: 1, StatusDiffers: 2, StatusCreated: 0, StatusUpdated: 0, StatusDeleted: 0, StatusConflict: 0, StatusFailed: 0}
	if err := s.UpdateRun(c, r); err != nil {
		t.Fatal(err)
	}
	runs, err := s.ListRuns(c, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range runs {
		if got.ID != r.ID {
			continue
		}
		if got.Counts[StatusDiffers] != 2 || got.Counts[StatusUnchanged] != 1 || got.Mode != "verify" || got.Compared != 1 {
			t.Fatalf("listed run %+v; want differs 2, unchanged 1, mode verify, compared 1", got)
		}
		return
	}
	t.Fatalf("run %s not listed", r.ID)
}

func TestRecordRunResultCountsOnce(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	steps := []struct {
		name string
		res  Result
		want bool
	}{
		{"first product 1", Result{Entity: domain.EntityProduct, ID: 1, Status: StatusCreated}, true},
		{"redelivered product 1", Result{Entity: domain.EntityProduct, ID: 1, Status: StatusCreated}, false},
		{"product 1 other outcome", Result{Entity: domain.EntityProduct, ID: 1, Status: StatusFailed}, false},
		{"user 1 is another item", Result{Entity: domain.EntityUser, ID: 1, Status: StatusUpdated}, true},
		{"product 17 same shard", Result{Entity: domain.EntityProduct, ID: 17, Status: StatusCreated}, true},
		{"product 2", Result{Entity: domain.EntityProduct, ID: 2, Status: StatusConflict, Reason: "tie"}, true},
	}
	for _, st := range steps {
		got, err := s.RecordRunResult(c, r.ID, st.res)
		if err != nil || got != st.want {
			t.Fatalf("%s: recorded %v, %v; want %v", st.name, got, err, st.want)
		}
	}
	p, err := s.Progress(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{StatusCreated: 2, StatusUpdated: 1, StatusConflict: 1, StatusDeleted: 0, StatusUnchanged: 0, StatusFailed: 0}
	if fmt.Sprint(p.Counts) != fmt.Sprint(want) || p.Done != 4 {
		t.Fatalf("counts %v done %d, want %v done 4", p.Counts, p.Done, want)
	}
	if p.LastUpdated.IsZero() || time.Since(p.LastUpdated) > time.Minute {
		t.Fatalf("LastUpdated %v is not recent", p.LastUpdated)
	}

	bad := []struct {
		name string
		run  string
		res  Result
		kind domain.Kind
	}{
		{"unknown status", r.ID, Result{Entity: domain.EntityProduct, ID: 3, Status: "weird"}, domain.KindInvalid},
		{"unknown entity", r.ID, Result{Entity: "x", ID: 3, Status: StatusCreated}, domain.KindInvalid},
		{"run without shards", newRunID(), Result{Entity: domain.EntityProduct, ID: 3, Status: StatusCreated}, domain.KindNotFound},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.RecordRunResult(c, tt.run, tt.res); !domain.IsKind(err, tt.kind) {
				t.Fatalf("error %v, want kind %s", err, tt.kind)
			}
		})
	}
}

// TestRecordRunResultConcurrent proves the ETag retry: 200 concurrent calls
// over 50 ids (each id 4 times) must count every id exactly once. The ids
// share 4 shards and start together, so counting races are certain.
func TestRecordRunResultConcurrent(t *testing.T) {
	var cnt counter
	s := newStore(t, testenv.Storage(t), &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{&cnt}}})
	c := ctx(t)
	r := createRun(t, s)
	statuses := Statuses()
	status := func(id int64) string { return statuses[(id/4)%int64(len(statuses))] }
	want := map[string]int64{}
	for _, st := range statuses {
		want[st] = 0
	}
	for k := range int64(50) {
		want[status(k*4)]++
	}
	var (
		wg       sync.WaitGroup
		recorded atomic.Int64
		errs     = make(chan error, 200)
		gate     = make(chan struct{})
	)
	for i := range 200 {
		id := int64(i%50) * 4 // shards 0, 4, 8, 12
		wg.Go(func() {
			<-gate
			ok, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: status(id)})
			if err != nil {
				errs <- err
			}
			if ok {
				recorded.Add(1)
			}
		})
	}
	before, start := cnt.n.Load(), time.Now()
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("record: %v", err)
	}
	requests := cnt.n.Load() - before
	t.Logf("200 concurrent RecordRunResult calls: %v, %d requests", time.Since(start), requests)
	if recorded.Load() != 50 {
		t.Fatalf("recorded %d results, want 50", recorded.Load())
	}
	// Without a race every call is one read and one transaction; the
	// forced race below tests the retry deterministically.
	if requests <= 400 {
		t.Logf("%d requests: no counting race happened this time", requests)
	}
	p, err := s.Progress(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p.Counts) != fmt.Sprint(want) || p.Done != 50 {
		t.Fatalf("counts %v done %d, want %v done 50", p.Counts, p.Done, want)
	}
}

// TestRecordRunResultRetriesLostRace forces the race: another writer bumps
// the shard after each of the first attempts read it, so those attempts'
// ETags are stale and must be retried, and nothing may be lost.
func TestRecordRunResultRetriesLostRace(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	other := New(s.svc, &Options{Prefix: strings.TrimSuffix(s.names[0], RunsTable)}) // a second writer without the hook
	const forced = 3
	// Other items on the same partition and shard as item 5.
	l := layout{run: r.ID, parts: r.Partitions}
	p5, s5 := l.item(5)
	var rivals []int64
	for id := int64(6); len(rivals) < forced; id++ {
		if p, sh := l.item(id); p == p5 && sh == s5 {
			rivals = append(rivals, id)
		}
	}
	var attempts []int
	s.beforeCount = func(attempt int) {
		attempts = append(attempts, attempt)
		if attempt < forced {
			if _, err := other.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: rivals[attempt], Status: StatusCreated}); err != nil {
				t.Errorf("competing write: %v", err)
			}
		}
	}
	ok, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: 5, Status: StatusCreated})
	if err != nil || !ok {
		t.Fatalf("recorded %v, %v", ok, err)
	}
	if fmt.Sprint(attempts) != "[0 1 2 3]" {
		t.Fatalf("attempts %v, want [0 1 2 3] (three lost races, then success)", attempts)
	}
	p, err := s.Progress(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts[StatusCreated] != forced+1 {
		t.Fatalf("created %d, want %d", p.Counts[StatusCreated], forced+1)
	}
}

func TestPlanPages(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	pages := []PlanPage{
		{After: 1000, Count: 3, Next: 1003, Last: true},
		{After: 0, Count: 500, Next: 999, NextQueued: true},
		{After: 999, Count: 1, Next: 1000, NextQueued: true},
	}
	for _, p := range pages {
		if err := s.PutPlanPage(c, r.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	// Upsert replaces.
	pages[0].NextQueued = true
	if err := s.PutPlanPage(c, r.ID, pages[0]); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		got, ok, err := s.GetPlanPage(c, r.ID, p.After)
		if err != nil || !ok || fmt.Sprint(got) != fmt.Sprint(p) {
			t.Fatalf("GetPlanPage(%d) = %+v, %v, %v; want %+v", p.After, got, ok, err, p)
		}
	}
	if _, ok, err := s.GetPlanPage(c, r.ID, 5); ok || err != nil {
		t.Fatalf("missing page: ok %v err %v", ok, err)
	}
	prog, err := s.Progress(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i].After < pages[j].After })
	if fmt.Sprint(prog.Pages) != fmt.Sprint(pages) {
		t.Fatalf("progress pages %+v, want %+v", prog.Pages, pages)
	}
	if err := s.PutPlanPage(c, r.ID, PlanPage{After: -1}); !domain.IsKind(err, domain.KindInvalid) {
		t.Fatalf("negative after: %v", err)
	}
}

// TestProgressRequests: the shards of each partition and 10 plan pages are
// read in one request each, whatever number of results the run holds.
func TestProgressRequests(t *testing.T) {
	var cnt counter
	s := newStore(t, testenv.Storage(t), &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{&cnt}}})
	c := ctx(t)
	r := createRun(t, s)
	for i := range 10 {
		if err := s.PutPlanPage(c, r.ID, PlanPage{After: int64(i * 100), Count: 100, Next: int64(i*100 + 99)}); err != nil {
			t.Fatal(err)
		}
	}
	for id := range int64(40) {
		if _, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityUser, ID: id, Status: StatusUnchanged}); err != nil {
			t.Fatal(err)
		}
	}
	before := cnt.n.Load()
	start := time.Now()
	p, err := s.Progress(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := cnt.n.Load() - before
	t.Logf("Progress: %d requests, %v", n, time.Since(start))
	if want := int64(DefaultPartitions + 1); n != want {
		t.Fatalf("Progress sent %d requests, want %d", n, want)
	}
	if len(p.Pages) != 10 || p.Done != 40 || p.Counts[StatusUnchanged] != 40 {
		t.Fatalf("progress %+v: want 10 pages and 40 unchanged", p)
	}
}

func TestResultsPaging(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	statuses := Statuses()
	byStatus := map[string][]int64{}
	var all []int64
	for id := range int64(23) {
		st := statuses[id%3] // created, updated, deleted
		if _, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: st,
			Version: time.UnixMilli(1_700_000_000_000 + id).UTC()}); err != nil {
			t.Fatal(err)
		}
		byStatus[st] = append(byStatus[st], id)
		all = append(all, id)
	}
	// Neighbours in the partition that Results must skip.
	if err := s.RecordAttemptError(c, r.ID, domain.EntityProduct, 5, "timeout"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPlanPage(c, r.ID, PlanPage{After: 0, Count: 23, Next: 22, Last: true}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		status string
		limit  int
		want   []int64
	}{
		{"", 5, all},
		{"", 1000, all},
		{StatusUpdated, 2, byStatus[StatusUpdated]},
		{StatusDeleted, 100, byStatus[StatusDeleted]},
		{StatusFailed, 3, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/limit %d", tt.status, tt.limit), func(t *testing.T) {
			var got []int64
			token, pages := "", 0
			for {
				rs, next, err := s.Results(c, r.ID, tt.status, tt.limit, token)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) > tt.limit {
					t.Fatalf("page of %d rows, limit %d", len(rs), tt.limit)
				}
				for _, res := range rs {
					if tt.status != "" && res.Status != tt.status {
						t.Fatalf("result %+v does not match status %q", res, tt.status)
					}
					if want := time.UnixMilli(1_700_000_000_000 + res.ID).UTC(); !res.Version.Equal(want) || res.Entity != domain.EntityProduct {
						t.Fatalf("result %+v: want version %v", res, want)
					}
					got = append(got, res.ID)
				}
				pages++
				if next == "" {
					break
				}
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				token = next
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("ids %v, want %v (in order, once each)", got, tt.want)
			}
		})
	}

	bad := []string{"%%%", base64.RawURLEncoding.EncodeToString([]byte("not json")), base64.RawURLEncoding.EncodeToString([]byte(`{}`))}
	for _, token := range bad {
		if _, _, err := s.Results(c, r.ID, "", 5, token); !domain.IsKind(err, domain.KindInvalid) {
			t.Fatalf("token %q: error %v, want Invalid", token, err)
		}
	}
	// A real token only continues the query it came from.
	_, next, err := s.Results(c, r.ID, StatusCreated, 2, "")
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, %v", next, err)
	}
	for _, q := range []struct{ partition, status string }{{r.ID, StatusUpdated}, {r.ID, ""}, {createRun(t, s).ID, StatusCreated}} {
		if _, _, err := s.Results(c, q.partition, q.status, 2, next); !domain.IsKind(err, domain.KindInvalid) {
			t.Fatalf("token replayed on %+v: error %v, want Invalid", q, err)
		}
	}
	if _, _, err := s.Results(c, r.ID, "bogus", 5, ""); !domain.IsKind(err, domain.KindInvalid) {
		t.Fatalf("bad status filter: %v", err)
	}
}

func TestRealtimeAndAttemptErrors(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	// A random far-past day keeps this test's realtime partition its own.
	at := time.Date(2001, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, int(time.Now().UnixNano()%3000))
	part := RealtimePartition(at)
	id := time.Now().UnixNano()
	for _, st := range []string{StatusFailed, StatusUpdated} { // an upsert: the last one wins
		if err := s.RecordRealtime(c, Result{Entity: domain.EntityUser, ID: id, Status: st, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	rs, _, err := s.Results(c, part, StatusUpdated, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range rs {
		if r.ID == id {
			found++
			if !r.At.Equal(at) || r.Entity != domain.EntityUser {
				t.Fatalf("realtime result %+v, want At %v", r, at)
			}
		}
	}
	if found != 1 {
		t.Fatalf("realtime result found %d times in %s, want 1", found, part)
	}

	steps := []struct {
		write, want string
		ok          bool
	}{
		{"", "", false},
		{"first", "first", true},
		{"second", "second", true},
	}
	for _, st := range steps {
		if st.write != "" {
			if err := s.RecordAttemptError(c, part, domain.EntityUser, id, st.write); err != nil {
				t.Fatal(err)
			}
		}
		got, ok, err := s.AttemptError(c, part, domain.EntityUser, id)
		if err != nil || ok != st.ok || got != st.want {
			t.Fatalf("AttemptError = %q, %v, %v; want %q, %v", got, ok, err, st.want, st.ok)
		}
	}
}

func TestUnavailable(t *testing.T) {
	az := testenv.StartAzurite(t)
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1, TryTimeout: 2 * time.Second}}}
	s := newStore(t, az.ConnString(), opts)
	c := ctx(t)
	r := createRun(t, s)
	az.Stop()

	calls := []struct {
		name string
		call func() error
	}{
		{"GetRun", func() error { _, err := s.GetRun(c, r.ID); return err }},
		{"ListRuns", func() error { _, err := s.ListRuns(c, 5); return err }},
		{"CreateRun", func() error { return s.CreateRun(c, Run{ID: newRunID(), Entity: domain.EntityProduct}) }},
		{"RecordRunResult", func() error {
			_, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: 1, Status: StatusCreated})
			return err
		}},
		{"Progress", func() error { _, err := s.Progress(c, r.ID); return err }},
		{"Results", func() error { _, _, err := s.Results(c, r.ID, "", 10, ""); return err }},
		{"Ensure", func() error { return s.Ensure(c) }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !domain.IsKind(err, domain.KindUnavailable) {
				t.Fatalf("error %v, want Unavailable", err)
			}
		})
	}
}

// A batch of real-time results is recorded in transactions of at most 100
// per partition; a later result of an item in the batch replaces an earlier
// one, and a batch may straddle two days.
func TestRealtimeBatch(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	day := time.Date(2001, 1, 1, 23, 0, 0, 0, time.UTC).AddDate(0, 0, int(time.Now().UnixNano()%3000))
	next := day.Add(2 * time.Hour)
	var rs []Result
	for i := range int64(130) {
		rs = append(rs, Result{Entity: domain.EntityProduct, ID: i + 1, Status: StatusCreated, At: day})
	}
	rs = append(rs,
		Result{Entity: domain.EntityProduct, ID: 7, Status: StatusConflict, Detail: `{"x":1}`, At: day}, // replaces the first 7
		Result{Entity: domain.EntityProduct, ID: 500, Status: StatusUpdated, At: next},
	)
	if err := s.RecordRealtime(c, rs...); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		at     time.Time
		status string
		want   int
	}{{day, StatusCreated, 129}, {day, StatusConflict, 1}, {day, "", 130}, {next, "", 1}} {
		got, next, err := s.Results(c, RealtimePartition(q.at), q.status, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != q.want || next != "" {
			t.Errorf("%s %q: %d results (next %q), want %d", RealtimePartition(q.at), q.status, len(got), next, q.want)
		}
	}
	bad := []Result{{Entity: domain.EntityProduct, ID: 900, Status: StatusCreated, At: day}, {Entity: domain.EntityProduct, ID: 2, Status: "bogus", At: day}}
	if err := s.RecordRealtime(c, bad...); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("a batch with an unknown status: %v, want Invalid", err)
	}
	if got, _, _ := s.Results(c, RealtimePartition(day), "", 1000, ""); len(got) != 130 {
		t.Errorf("%d results after the refused batch, want 130 (nothing written)", len(got))
	}
}

// A day's real-time outcomes are recorded in buckets of consecutive ids
// (20 concurrent calls of 5 items: two entities, however the calls
// interleave) and read back with the layouts of earlier releases (one
// entity per item, in the day's own partition and in -00..-15) as one
// stream in id order, page by page (pages of 7 end inside buckets), each
// item once with its latest outcome. A long conflict detail is kept beside
// its bucket and read back whole.
func TestRealtimeBucketsAndRead(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	day := time.Date(2001, 1, 1, 10, 0, 0, 0, time.UTC).AddDate(0, 0, int(time.Now().UnixNano()%3000))
	part := RealtimePartition(day)
	old := []struct {
		partition string
		id        int64
		status    string
	}{{part, 3, StatusFailed}, {part, 1000, StatusFailed}, {part + "-05", 7, StatusDeleted}, {part + "-11", 2000, StatusUnchanged}}
	for _, o := range old {
		body, err := marshal(itemKey("result", domain.EntityProduct, o.id), o.partition, resultProperties(Result{Entity: domain.EntityProduct, ID: o.id, Status: o.status, At: day}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.results.AddEntity(c, body, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for first := int64(1); first <= 100; first += 5 {
		wg.Go(func() {
			var rs []Result
			for id := first; id < first+5; id++ {
				rs = append(rs, Result{Entity: domain.EntityProduct, ID: id, Status: StatusUpdated, At: day.Add(time.Minute)})
			}
			errs <- s.RecordRealtime(c, rs...)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	long := `{"x":"` + strings.Repeat("é", 20000) + `"}`
	again := []Result{
		{Entity: domain.EntityProduct, ID: 61, Status: StatusConflict, Detail: `{"y":1}`, At: day.Add(2 * time.Minute)},
		{Entity: domain.EntityProduct, ID: 50, Status: StatusConflict, Reason: "both changed", Detail: long, At: day.Add(2 * time.Minute)},
	}
	if err := s.RecordRealtime(c, again...); err != nil {
		t.Fatal(err)
	}

	kinds := map[string]int{}
	filter := "PartitionKey gt '" + part + "-b' and PartitionKey lt '" + part + "-c'"
	pager := s.results.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Entities {
			e, err := unmarshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			kinds[strings.SplitN(e.RowKey, "-", 2)[0]]++
		}
	}
	// The long conflict's reason and detail are beside the bucket twice:
	// for its latest outcome and for its conflict, kept until superseded.
	if kinds["result"] != 2 || kinds["detail"] != 1 || kinds["conflict"] != 1 || len(kinds) != 3 {
		t.Errorf("102 outcomes of ids 1..100 in %v entities, want 2 buckets, 1 detail and 1 conflict", kinds)
	}

	read := func(status string, limit int) []Result {
		t.Helper()
		var got []Result
		token := ""
		for pages := 0; ; pages++ {
			page, next, err := s.Results(c, part, status, limit, token)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if next == "" {
				return got
			}
			if pages > 200 {
				t.Fatal("paging does not end")
			}
			token = next
		}
	}
	got := read("", 7)
	if len(got) != 102 {
		t.Fatalf("read %d outcomes, want 102 (100 in buckets, 2 only in old partitions)", len(got))
	}
	for i, r := range got {
		want := int64(i + 1)
		switch i {
		case 100:
			want = 1000
		case 101:
			want = 2000
		}
		if r.ID != want {
			t.Fatalf("outcome %d is item %d, want %d", i, r.ID, want)
		}
	}
	byID := map[int64]Result{}
	for _, r := range got {
		byID[r.ID] = r
	}
	for _, w := range []struct {
		id             int64
		status, detail string
	}{{3, StatusUpdated, ""}, {7, StatusUpdated, ""}, {50, StatusConflict, long}, {61, StatusConflict, `{"y":1}`}, {1000, StatusFailed, ""}, {2000, StatusUnchanged, ""}} {
		r := byID[w.id]
		if r.ID != w.id || r.Status != w.status || r.Detail != w.detail {
			t.Errorf("item %d = %s, detail of %d bytes; want %s, %d bytes", r.ID, r.Status, len(r.Detail), w.status, len(w.detail))
		}
	}
	if got[49].Reason != "both changed" || !got[49].At.Equal(day.Add(2*time.Minute)) {
		t.Errorf("item 50: reason %q at %v", got[49].Reason, got[49].At)
	}

	ids := func(rs []Result) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, q := range []struct {
		status string
		limit  int
		want   []int64
	}{
		{StatusConflict, 1, []int64{50, 61}},
		// Item 3's old outcome still shows under its own status: the old
		// layout kept every outcome of an item that day apart.
		{StatusFailed, 5, []int64{3, 1000}},
		{StatusDeleted, 5, []int64{7}},
		{StatusCreated, 5, nil},
	} {
		if g := ids(read(q.status, q.limit)); !slices.Equal(g, q.want) {
			t.Errorf("status %s: items %v, want %v", q.status, g, q.want)
		}
	}
	if n := len(read(StatusUpdated, 9)); n != 98 {
		t.Errorf("status updated: %d items, want 98 (100 less the two conflicts)", n)
	}
}

// The handler creates its tables in the background at start: a run started
// before that finished creates them (it once answered 404 there).
func TestCreateRunBeforeTablesExist(t *testing.T) {
	svc, err := aztables.NewServiceClientFromConnectionString(testenv.Storage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(svc, &Options{Prefix: "t" + testenv.RandomHex(4)})
	t.Cleanup(func() {
		for _, name := range s.names {
			_, _ = svc.DeleteTable(context.Background(), name, nil)
		}
	})
	c := ctx(t)
	r := Run{ID: newRunID(), Entity: domain.EntityProduct, Trigger: "test", Status: "Pending", CreatedTime: time.Now()}
	if err := s.CreateRun(c, r); err != nil {
		t.Fatalf("CreateRun before the tables exist: %v", err)
	}
	if got, err := s.GetRun(c, r.ID); err != nil || got.ID != r.ID {
		t.Fatalf("GetRun = %+v, %v", got, err)
	}
	if p, err := s.Progress(c, r.ID); err != nil || p.Done != 0 {
		t.Fatalf("Progress = %+v, %v; want the run's shards", p, err)
	}
}
