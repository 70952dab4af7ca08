package syncer

import (
	"context"
	"testing"
)

// A run's item message enqueued twice (the enqueue was carried out, its
// answer lost, and the SDK's retry enqueued it again: Azure Queue has no
// idempotent put) arrives as two first deliveries. The first copy merges
// and writes both databases, and its record is lost (or only slower); the
// second copy, DequeueCount 1 too, finds both sides equal. It must take
// the outcome the first announced as its intent, not count the item
// unchanged: the run's counts stay exact. (Found by e2e/TestStorageChaos:
// a full run counted an item the fallback had newer as unchanged.)
func TestRunItemEnqueuedTwiceCountsItsChange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	x := concurrentEdit(t, e)
	flaky := &flakyRecorder{Store: e.rec, runFails: 1}
	e.eng = New(e.primary, e.fallback, e.items, e.plans, flaky, Options{})
	for _, msg := range receive[Message](t, e.items) {
		deleteDelivered(t, e.items, msg) // only the run syncs
	}
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	msgs := receive[Message](t, e.items)
	if len(msgs) != 1 {
		t.Fatalf("run messages %+v, want 1", msgs)
	}
	if err := e.eng.SyncDelivered(ctx, msgs[0].m, Delivery{DequeueCount: 1}); err == nil {
		t.Fatal("the first copy's record did not fail")
	}
	bothProducts(t, e, x.ID) // the first copy wrote both sides
	// The duplicate copy: a first delivery of its own.
	if err := e.eng.SyncDelivered(ctx, msgs[0].m, Delivery{DequeueCount: 1}); err != nil {
		t.Fatal(err)
	}
	// The first copy's redelivery counts nothing again.
	if err := e.eng.SyncDelivered(ctx, msgs[0].m, Delivery{DequeueCount: 2}); err != nil {
		t.Fatal(err)
	}
	deleteDelivered(t, e.items, msgs[0])
	got, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil || got.RuntimeStatus != RunCompleted {
		t.Fatalf("run %+v, %v", got, err)
	}
	if c := got.CustomStatus.Counts; c[StatusConflict] != 1 || c[StatusUnchanged] != 0 || got.CustomStatus.Total != 1 {
		t.Fatalf("counts %v total %d; want the one conflict", c, got.CustomStatus.Total)
	}
}
