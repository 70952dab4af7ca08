package syncer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/domain"
	"dualsync/internal/failover"
	"dualsync/internal/queue"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

// blocked starts p with one job that holds its only worker until release
// is called, so the test controls what is waiting.
func blocked(t *testing.T, p *Publisher) (release func()) {
	t.Helper()
	gate, started := make(chan struct{}), make(chan struct{})
	if !p.Submit("blocker", func(context.Context) { close(started); <-gate }) {
		t.Fatal("the first change was refused")
	}
	<-started
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// recorder records which jobs ran.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) job(name string) func(context.Context) {
	return func(context.Context) { r.mu.Lock(); r.ran = append(r.ran, name); r.mu.Unlock() }
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.ran)
	slices.Sort(s)
	return s
}

// A full buffer refuses the change instead of making the caller wait.
func TestPublisherFullBufferRefuses(t *testing.T) {
	p := NewPublisher(PublisherOptions{Workers: 1, Buffer: 2})
	release := blocked(t, p)
	var r recorder
	var took []bool
	for _, k := range []string{"a", "b", "c"} {
		took = append(took, p.Submit(k, r.job(k)))
	}
	if want := []bool{true, true, false}; !slices.Equal(took, want) {
		t.Errorf("Submit results = %v, want %v", took, want)
	}
	release()
	if left := p.Close(time.Minute); left != 0 {
		t.Errorf("left = %d", left)
	}
	if got := r.got(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ran %v, want a and b", got)
	}
	if s := p.Stats(); s.Full != 1 || s.Published != 3 {
		t.Errorf("stats = %+v", s)
	}
}

// Changes of one item that are still waiting become one publish, the latest.
func TestPublisherCoalesces(t *testing.T) {
	p := NewPublisher(PublisherOptions{Workers: 1, Buffer: 8})
	release := blocked(t, p)
	var r recorder
	for _, name := range []string{"x1", "x2", "x3"} {
		if !p.Submit("x", r.job(name)) {
			t.Fatalf("%s refused", name)
		}
	}
	p.Submit("y", r.job("y1"))
	release()
	p.Close(time.Minute)
	if got := r.got(); !slices.Equal(got, []string{"x3", "y1"}) {
		t.Errorf("ran %v, want the latest x and y", got)
	}
	if s := p.Stats(); s.Coalesced != 2 {
		t.Errorf("stats = %+v, want 2 coalesced", s)
	}
}

// A change that waited longer than the relay leaves to the publisher is left
// to the relay, so the two do not both send it.
func TestPublisherLeavesStaleChangesToTheRelay(t *testing.T) {
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	p := NewPublisher(PublisherOptions{Workers: 1, Buffer: 8, Clock: clock})
	release := blocked(t, p)
	var r recorder
	p.Submit("old", r.job("old"))
	now.Add(int64(publishMaxWait + time.Millisecond))
	p.Submit("new", r.job("new"))
	release()
	p.Close(time.Minute)
	if got := r.got(); !slices.Equal(got, []string{"new"}) {
		t.Errorf("ran %v, want only the fresh change", got)
	}
	if s := p.Stats(); s.Stale != 1 {
		t.Errorf("stats = %+v, want 1 stale", s)
	}
}

// Close publishes everything it holds, then refuses new changes.
func TestPublisherCloseDrains(t *testing.T) {
	p := NewPublisher(PublisherOptions{Workers: 2, Buffer: 100})
	release := blocked(t, p)
	var r recorder
	var want []string
	for i := range 50 {
		k := fmt.Sprintf("k%02d", i)
		want = append(want, k)
		p.Submit(k, r.job(k))
	}
	release()
	if left := p.Close(time.Minute); left != 0 {
		t.Errorf("left = %d", left)
	}
	if got := r.got(); !slices.Equal(got, want) {
		t.Errorf("ran %d of %d changes", len(got), len(want))
	}
	if p.Submit("late", r.job("late")) {
		t.Error("a change was taken after Close")
	}
}

// Close gives up at its deadline; what it had not started is not started
// later (the process is about to exit; the relay sends it).
func TestPublisherCloseGivesUpAtDeadline(t *testing.T) {
	p := NewPublisher(PublisherOptions{Workers: 1, Buffer: 8})
	release := blocked(t, p)
	var r recorder
	for _, k := range []string{"a", "b", "c"} {
		p.Submit(k, r.job(k))
	}
	if left := p.Close(20 * time.Millisecond); left != 4 {
		t.Errorf("left = %d, want the running one and 3 waiting", left)
	}
	release()
	p.wg.Wait()
	if got := r.got(); len(got) != 0 {
		t.Errorf("ran %v after Close gave up", got)
	}
	if s := p.Stats(); s.Abandoned != 3 {
		t.Errorf("stats = %+v, want 3 abandoned", s)
	}
}

// unsent lists the outbox entries of db never sent.
func unsent(t *testing.T, db store.DB) []store.OutboxEntry {
	t.Helper()
	far := time.Now().Add(time.Hour)
	es, err := db.PendingOutbox(context.Background(), far, far.Add(-100*365*24*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(es, func(e store.OutboxEntry) bool { return e.SentAt != nil })
}

// API writes through the failover wrapper, published by a Publisher to a real
// queue: once Close returns, every change is on the queue and marked sent.
func TestPublisherPublishesAPIWrites(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	p := NewPublisher(PublisherOptions{Workers: 2, Buffer: 64})
	fo := failover.New(e.primary, e.fallback, failover.Options{OnChange: PublishAsync(p, e.eng.Changed)})
	var ids []int64
	for i := range 20 {
		pr, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr(fmt.Sprintf("p%d", i)), Price: ptr(domain.Money(100))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, pr.ID)
	}
	for i := range 5 { // several changes of one item: at least one message
		if _, err := fo.UpdateProduct(ctx, ids[0], domain.ProductChange{Name: ptr(fmt.Sprintf("v%d", i)), Price: ptr(domain.Money(100))}); err != nil {
			t.Fatal(err)
		}
	}
	if left := p.Close(30 * time.Second); left != 0 {
		t.Fatalf("left = %d", left)
	}
	if u := unsent(t, e.primary); len(u) != 0 {
		t.Errorf("%d outbox entries unsent after Close, e.g. %+v", len(u), u[0])
	}
	seen := map[int64]int{}
	drain(t, e.items, func(_ context.Context, m Message) error { seen[m.ID]++; return nil })
	for _, id := range ids {
		if seen[id] == 0 {
			t.Errorf("no message for product %d", id)
		}
	}
	if seen[ids[0]] > 6 {
		t.Errorf("%d messages for one product changed 6 times", seen[ids[0]])
	}
}

// With the queue unreachable the writes still succeed and their entries stay
// unsent in the outbox, for the relay.
func TestPublisherQueueDownLeavesTheOutbox(t *testing.T) {
	e := newEnv(t, Options{SendTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	port := testenv.FreePort(t) // nothing listens there
	qsvc, err := azqueue.NewServiceClientFromConnectionString(testenv.ConnString(port, port, port), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := New(e.primary, e.fallback, queue.New(qsvc, "down", true), e.plans, e.rec, Options{SendTimeout: 500 * time.Millisecond})
	p := NewPublisher(PublisherOptions{Workers: 2})
	fo := failover.New(e.primary, e.fallback, failover.Options{OnChange: PublishAsync(p, eng.Changed)})
	for i := range 3 {
		if _, err := fo.CreateProduct(ctx, domain.ProductChange{Name: ptr(fmt.Sprintf("p%d", i)), Price: ptr(domain.Money(100))}); err != nil {
			t.Fatalf("write with the queue down: %v", err)
		}
	}
	p.Close(30 * time.Second)
	if u := unsent(t, e.primary); len(u) != 3 {
		t.Errorf("%d unsent outbox entries, want the 3 writes'", len(u))
	}
}

// What the publisher left (here: 600 changes never published, more than a
// relay page) goes out in one relay run, one message per item, all marked
// sent.
func TestRelaySendsABacklog(t *testing.T) {
	later := time.Now().Add(time.Minute) // past the publisher's window
	e := newEnv(t, Options{Clock: func() time.Time { return later }})
	ctx := context.Background()
	const n = 600
	for i := range n {
		if _, err := e.primary.CreateProduct(ctx, domain.ProductChange{Name: ptr(fmt.Sprintf("b%d", i)), Price: ptr(domain.Money(1))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	if u := unsent(t, e.primary); len(u) != 0 {
		t.Errorf("%d entries unsent after the relay", len(u))
	}
	seen := map[int64]bool{}
	if got := drain(t, e.items, func(_ context.Context, m Message) error { seen[m.ID] = true; return nil }); got != n || len(seen) != n {
		t.Errorf("%d messages for %d items, want %d for %d", got, len(seen), n, n)
	}
}
