package syncer

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dualsync/internal/domain"
)

// failingSender fails every enqueue, as a queue that stays unavailable.
type failingSender struct{}

func (failingSender) Send(context.Context, any) error {
	return domain.Errorf(domain.KindUnavailable, "Queue Storage is unavailable: enqueue")
}

// TestStartIsAllOrNothing: a start whose first planner message cannot be
// enqueued answers an error and leaves no run behind (today's code left a
// Failed run listed, or a Pending one when marking it failed failed too).
func TestStartIsAllOrNothing(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.eng.plans = failingSender{}
	if _, err := e.eng.Start(ctx, StartRequest{Trigger: "http"}); !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("Start with the queue down: %v, want Unavailable", err)
	}
	runs, err := e.eng.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Fatalf("after a failed start the runs list %+v, want none", runs)
	}
}

// TestPendingRunIsResumedThenFailed: a run whose first planner message was
// never enqueued (created, then the process died) is found by the relay's
// timer within minutes: its message is re-sent and the run completes; one
// that still has no page much later is failed with its reason. Before,
// both stayed Pending forever.
func TestPendingRunIsResumedThenFailed(t *testing.T) {
	var offset atomic.Int64 // the engine's clock runs ahead of the wall clock by this
	e := newEnv(t, Options{Clock: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	ctx := context.Background()
	for i := int64(1); i <= 5; i += 2 {
		put(t, e.primary, product(i, fmt.Sprint("p", i), t0, false))
	}
	lost := startRun(t, e) // a run entity, no planner message
	if st, err := e.eng.Status(ctx, lost); err != nil || st.CustomStatus.Waiting != "" {
		t.Fatalf("a fresh run waits: %q, %v", st.CustomStatus.Waiting, err)
	}

	offset.Store(int64(2 * time.Minute))
	st, err := e.eng.Status(ctx, lost)
	if err != nil || !strings.Contains(st.CustomStatus.Waiting, "first planner message") {
		t.Fatalf("a stalled Pending run says %q, %v; want why it waits", st.CustomStatus.Waiting, err)
	}
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	if n := drainPlans(t, e); n != 1 {
		t.Fatalf("planner messages after the relay = %d, want the re-sent one", n)
	}
	drain(t, e.items, e.eng.SyncItem)
	st, err = e.eng.Status(ctx, lost)
	if err != nil || st.RuntimeStatus != RunCompleted || st.CustomStatus.Total != 3 {
		t.Fatalf("the resumed run = %s, %d items, %v; want Completed with 3", st.RuntimeStatus, st.CustomStatus.Total, err)
	}

	// Later, one that never gets a page is failed, with why.
	never := startRun(t, e)
	offset.Store(int64(30 * time.Minute))
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = e.eng.Status(ctx, never)
	if err != nil || st.RuntimeStatus != RunFailed || !strings.Contains(st.CustomStatus.Reason, "first planner message") {
		t.Fatalf("the run never planned = %s (%q), %v; want Failed with why", st.RuntimeStatus, st.CustomStatus.Reason, err)
	}
}
