package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/domain"
	"dualsync/internal/queue"
	"dualsync/internal/store"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// delivered is one received queue message.
type delivered[M any] struct {
	m   M
	d   Delivery
	id  string
	pop string
}

// receive takes every message on q now visible, without deleting them.
func receive[M any](t *testing.T, q *queue.Queue) []delivered[M] {
	t.Helper()
	var out []delivered[M]
	for empty := 0; empty < 2; {
		resp, err := q.Client().DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: ptr(int32(32)), VisibilityTimeout: ptr(int32(300))})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			empty++
			continue
		}
		empty = 0
		for _, msg := range resp.Messages {
			var m M
			if err := q.Decode(*msg.MessageText, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, delivered[M]{m: m, d: Delivery{MessageID: *msg.MessageID, DequeueCount: int(*msg.DequeueCount)}, id: *msg.MessageID, pop: *msg.PopReceipt})
		}
	}
	return out
}

func deleteDelivered[M any](t *testing.T, q *queue.Queue, msg delivered[M]) {
	t.Helper()
	if _, err := q.Client().DeleteMessage(context.Background(), msg.id, msg.pop, nil); err != nil {
		t.Fatal(err)
	}
}

// drainPlans runs the planner on every planner message, as the host does:
// each with its queue message id, deleted once handled.
func drainPlans(t *testing.T, e *env) int {
	t.Helper()
	n := 0
	for {
		msgs := receive[PlanMessage](t, e.plans)
		if len(msgs) == 0 {
			return n
		}
		for _, msg := range msgs {
			if err := e.eng.Plan(context.Background(), msg.m, msg.d); err != nil {
				t.Fatalf("planning %+v: %v", msg.m, err)
			}
			deleteDelivered(t, e.plans, msg)
			n++
		}
	}
}

// faultyRec is the real recorder with failures and pauses injected at
// chosen calls, standing for storage failing between two steps.
type faultyRec struct {
	*table.Store
	mu sync.Mutex
	// failPut, if set, decides whether a PutPlanPage call fails.
	failPut func(p table.PlanPage) bool
	// beforeGetPage, if set, runs before GetPlanPage.
	beforeGetPage func(after int64)
}

var errInjected = domain.Errorf(domain.KindUnavailable, "injected storage failure")

func (f *faultyRec) PutPlanPage(ctx context.Context, run string, p table.PlanPage) error {
	f.mu.Lock()
	fail := f.failPut != nil && f.failPut(p)
	f.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.Store.PutPlanPage(ctx, run, p)
}

func (f *faultyRec) GetPlanPage(ctx context.Context, run string, after int64) (table.PlanPage, bool, error) {
	if f.beforeGetPage != nil {
		f.beforeGetPage(after)
	}
	return f.Store.GetPlanPage(ctx, run, after)
}

// downDB is a database that cannot be reached for listing ids.
type downDB struct{ store.DB }

func (downDB) IDs(context.Context, domain.Entity, int64, int) ([]int64, error) {
	return nil, domain.Errorf(domain.KindUnavailable, "connection refused (test)")
}

// TestPlanRedeliveryReusesRecordedIDs is issue 15's scenario: attempt 1
// enqueues items {1,2,3} and fails to record its progress; the redelivery
// finds the fallback (which alone holds item 2) unreachable. The run must
// still count 3 items and stay Running until item 2 is in.
func TestPlanRedeliveryReusesRecordedIDs(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	put(t, e.primary, product(1, "a", t0, false))
	put(t, e.primary, product(3, "c", t0, false))
	put(t, e.fallback, product(2, "b", t0, false))
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	plan := receive[PlanMessage](t, e.plans)
	if len(plan) != 1 {
		t.Fatalf("planner messages %d, want 1", len(plan))
	}

	// Attempt 1: the items are enqueued, then storage fails.
	rec := &faultyRec{Store: e.rec, failPut: func(p table.PlanPage) bool { return p.Enqueued }}
	first := New(e.primary, e.fallback, e.items, e.plans, rec, Options{})
	if err := first.Plan(ctx, plan[0].m, plan[0].d); !errors.Is(err, errInjected) {
		t.Fatalf("attempt 1: %v, want the injected failure", err)
	}
	// Attempt 2, the same message redelivered, with the fallback unreachable.
	second := New(e.primary, downDB{e.fallback}, e.items, e.plans, e.rec, Options{})
	redelivered := plan[0].d
	redelivered.DequeueCount++
	if err := second.Plan(ctx, plan[0].m, redelivered); err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	deleteDelivered(t, e.plans, plan[0])

	items := receive[Message](t, e.items)
	var ids []int64
	for _, it := range items {
		ids = append(ids, it.m.ID)
	}
	slices.Sort(ids)
	if want := []int64{1, 1, 2, 2, 3, 3}; !slices.Equal(ids, want) {
		t.Errorf("item messages %v, want %v (each attempt enqueues the recorded page)", ids, want)
	}
	// Items 1 and 3 are synced; item 2 is still pending.
	for _, it := range items {
		if it.m.ID != 2 {
			if err := e.eng.SyncItem(ctx, it.m); err != nil {
				t.Fatal(err)
			}
		}
	}
	mid, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.RuntimeStatus != RunRunning || mid.CustomStatus.Total != 3 || mid.CustomStatus.Done != 2 {
		t.Fatalf("with item 2 pending: %s, total %d, done %d; want Running, 3, 2",
			mid.RuntimeStatus, mid.CustomStatus.Total, mid.CustomStatus.Done)
	}
	for _, it := range items {
		if it.m.ID == 2 {
			if err := e.eng.SyncItem(ctx, it.m); err != nil {
				t.Fatal(err)
			}
		}
	}
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if done.RuntimeStatus != RunCompleted || done.CustomStatus.Total != 3 || done.CustomStatus.Counts[StatusCreated] != 3 {
		t.Fatalf("final: %s, total %d, counts %v; want Completed, 3 created", done.RuntimeStatus, done.CustomStatus.Total, done.CustomStatus.Counts)
	}
	// The completed run's output is cached on the run, and served from there.
	cached, err := e.rec.GetRun(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var out []OutputItem
	if err := json.Unmarshal([]byte(cached.Output), &out); err != nil || fmt.Sprint(out) != fmt.Sprint(done.Output) || len(out) != 3 {
		t.Fatalf("cached output %q (%v), want %+v", cached.Output, err, done.Output)
	}
	again, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(done) {
		t.Fatalf("second status %+v, %v; want %+v", again, err, done)
	}
}

// TestDuplicatePlanMessageStartsNoSecondChain: the planner of page 1 fails
// after it chained page 2, so its redelivery chains page 2 again. The two
// page-2 messages run at once, both finding the page unrecorded; only one
// may plan it and chain on.
func TestDuplicatePlanMessageStartsNoSecondChain(t *testing.T) {
	e := newEnv(t, Options{PageSize: 2})
	ctx := context.Background()
	for _, id := range []int64{1, 3, 5, 7, 9} {
		put(t, e.primary, product(id, "p", t0, false))
	}
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	first := receive[PlanMessage](t, e.plans)
	if len(first) != 1 {
		t.Fatalf("planner messages %d, want 1", len(first))
	}
	rec := &faultyRec{Store: e.rec, failPut: func(p table.PlanPage) bool { return p.NextQueued }}
	failing := New(e.primary, e.fallback, e.items, e.plans, rec, Options{PageSize: 2})
	if err := failing.Plan(ctx, first[0].m, first[0].d); !errors.Is(err, errInjected) {
		t.Fatalf("attempt 1: %v, want the injected failure", err)
	}
	if err := e.eng.Plan(ctx, first[0].m, first[0].d); err != nil { // redelivered
		t.Fatal(err)
	}
	deleteDelivered(t, e.plans, first[0])

	dups := receive[PlanMessage](t, e.plans)
	if len(dups) != 2 || dups[0].m != dups[1].m || dups[0].id == dups[1].id {
		t.Fatalf("page-2 messages %+v, want two distinct messages for one page", dups)
	}
	// Both look the page up before either records it.
	var (
		arrived sync.WaitGroup
		calls   atomic.Int32
	)
	arrived.Add(2)
	barrier := &faultyRec{Store: e.rec, beforeGetPage: func(after int64) {
		if after == dups[0].m.After && calls.Add(1) <= 2 { // each one's first look
			arrived.Done()
			arrived.Wait()
		}
	}}
	racing := New(e.primary, e.fallback, e.items, e.plans, barrier, Options{PageSize: 2})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, msg := range dups {
		wg.Go(func() { errs[i] = racing.Plan(ctx, msg.m, msg.d) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, msg := range dups {
		deleteDelivered(t, e.plans, msg)
	}
	if n := drainPlans(t, e); n != 1 {
		t.Errorf("planner messages after the duplicates: %d, want 1 (the last page, once)", n)
	}
	items := receive[Message](t, e.items)
	seen := map[int64]int{}
	for _, it := range items {
		seen[it.m.ID]++
		if err := e.eng.SyncItem(ctx, it.m); err != nil {
			t.Fatal(err)
		}
		deleteDelivered(t, e.items, it)
	}
	for _, id := range []int64{1, 3, 5, 7, 9} {
		if seen[id] != 1 {
			t.Errorf("item %d enqueued %d times, want once (%v)", id, seen[id], seen)
		}
	}
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if done.RuntimeStatus != RunCompleted || done.CustomStatus.Total != 5 {
		t.Fatalf("final: %s, total %d; want Completed, 5", done.RuntimeStatus, done.CustomStatus.Total)
	}
}

// TestDamagedRunDoesNotBreakTheList: a run left without counter shards (as
// an interrupted creation could before shards came first) is reported as
// Failed with a reason, in its own status and in the list, which still
// lists the other runs.
func TestDamagedRunDoesNotBreakTheList(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	prefix := "t" + testenv.RandomHex(4)
	tsvc, err := aztables.NewServiceClientFromConnectionString(testenv.Storage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := table.New(tsvc, &table.Options{Prefix: prefix})
	if err := rec.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []string{prefix + table.RunsTable, prefix + table.ResultsTable} {
			_, _ = tsvc.DeleteTable(context.Background(), n, nil)
		}
	})
	e.rec, e.eng = rec, New(e.primary, e.fallback, e.items, e.plans, rec, Options{})

	good, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	// A run of the older layout (one partition) whose shards are gone.
	bad := newRunID(time.Now().Add(time.Second))
	if err := rec.CreateRun(ctx, table.Run{ID: bad, Entity: domain.EntityProduct, Trigger: "http", Status: RunPending,
		CreatedTime: time.Now(), Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	results := tsvc.NewClient(prefix + table.ResultsTable)
	for i := range table.Shards {
		if _, err := results.DeleteEntity(ctx, bad, fmt.Sprintf("count-%02d", i), nil); err != nil {
			t.Fatal(err)
		}
	}

	runs, err := e.eng.Runs(ctx, 10)
	if err != nil {
		t.Fatalf("list with a damaged run: %v", err)
	}
	byID := map[string]RunStatus{}
	for _, r := range runs {
		byID[r.InstanceID] = r
	}
	if len(runs) != 2 || byID[good.InstanceID].RuntimeStatus != RunPending {
		t.Errorf("list %+v: want the good run (Pending) and the damaged one", runs)
	}
	if d := byID[bad]; d.RuntimeStatus != RunFailed || d.CustomStatus.Reason == "" {
		t.Errorf("damaged run in the list: %+v, want Failed with a reason", d)
	}
	st, err := e.eng.Status(ctx, bad)
	if err != nil || st.RuntimeStatus != RunFailed || !st.Final() {
		t.Errorf("status of the damaged run: %+v, %v; want Failed", st, err)
	}
	// Planner messages of the failed run change nothing.
	if err := e.eng.Plan(ctx, PlanMessage{Run: bad, Entity: domain.EntityProduct}, Delivery{MessageID: "m"}); err != nil {
		t.Errorf("planner message of the damaged run: %v", err)
	}
}
