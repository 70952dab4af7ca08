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

// roleDB stands in for a database in the publisher's unit tests: the
// publisher only asks a change's database for its role.
type roleDB struct {
	store.DB
	role store.Role
}

func (d roleDB) Role() store.Role { return d.role }

var (
	onPrimary  = roleDB{role: store.RolePrimary}
	onFallback = roleDB{role: store.RoleFallback}
)

// recorder is a PublishFunc that records each publish's ids. A publish
// holding blockID waits for release.
type recorder struct {
	mu      sync.Mutex
	batches [][]int64
	counter map[int64]int64

	blockID int64
	started chan struct{}
	gate    chan struct{}
}

func (r *recorder) publish(_ context.Context, cs []Change) {
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	if r.blockID != 0 && slices.Contains(ids, r.blockID) {
		close(r.started)
		<-r.gate
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, ids)
	if r.counter == nil {
		r.counter = map[int64]int64{}
	}
	for _, c := range cs {
		r.counter[c.ID] = c.Counter
	}
}

// got returns the ids published, sorted.
func (r *recorder) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int64
	for _, b := range r.batches {
		s = append(s, b...)
	}
	slices.Sort(s)
	return s
}

func (r *recorder) messages() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)
}

const blockerID = 1 << 40

// blocked starts a publisher whose only first publish (item blockerID)
// holds its worker until release is called, so the test controls what is
// waiting.
func blocked(t *testing.T, o PublisherOptions) (*Publisher, *recorder, func()) {
	t.Helper()
	r := &recorder{blockID: blockerID, started: make(chan struct{}), gate: make(chan struct{})}
	o.Publish = r.publish
	p := NewPublisher(o)
	if !p.Submit(change(blockerID)) {
		t.Fatal("the first change was refused")
	}
	<-r.started
	var once sync.Once
	release := func() { once.Do(func() { close(r.gate) }) }
	t.Cleanup(release)
	return p, r, release
}

func change(id int64) Change {
	return Change{DB: onPrimary, Entity: domain.EntityProduct, ID: id, Counter: 1}
}

func idRange(from, to int64) []int64 {
	var s []int64
	for id := from; id <= to; id++ {
		s = append(s, id)
	}
	return s
}

// A full buffer refuses the change instead of making the caller wait, and
// every change it took is published. (How many it takes depends on how many
// the gatherer already holds: Buffer waiting, plus up to Batch gathered.)
func TestPublisherFullBufferRefuses(t *testing.T) {
	p, r, release := blocked(t, PublisherOptions{Workers: 1, Buffer: 2, Batch: 4})
	var took []int64
	for id := range int64(20) {
		if p.Submit(change(id + 1)) {
			took = append(took, id+1)
		}
	}
	if n := len(took); n < 2 || n > 2+4 {
		t.Errorf("took %d of 20 changes, want Buffer (2) to Buffer + Batch (6)", n)
	}
	release()
	if left := p.Close(time.Minute); left != 0 {
		t.Errorf("left = %d", left)
	}
	if got := r.got(); !slices.Equal(got, took) {
		t.Errorf("published %v, want the ones taken %v", got, took)
	}
	if s := p.Stats(); s.Full != int64(20-len(took)) || s.Published != int64(len(took)+1) {
		t.Errorf("stats = %+v, want %d full, %d published", s, 20-len(took), len(took)+1)
	}
}

// Changes of one item that are still waiting become one, with the highest
// counter: the message covers every entry up to it.
func TestPublisherCoalesces(t *testing.T) {
	p, r, release := blocked(t, PublisherOptions{Workers: 1, Buffer: 8})
	for _, counter := range []int64{1, 3, 2} {
		c := change(7)
		c.Counter = counter
		if !p.Submit(c) {
			t.Fatalf("change %d refused", counter)
		}
	}
	p.Submit(change(8))
	release()
	p.Close(time.Minute)
	if got := r.got(); !slices.Equal(got, []int64{7, 8}) {
		t.Errorf("published %v, want 7 once and 8", got)
	}
	if r.counter[7] != 3 {
		t.Errorf("item 7 published up to counter %d, want 3", r.counter[7])
	}
	if s := p.Stats(); s.Coalesced != 2 {
		t.Errorf("stats = %+v, want 2 coalesced", s)
	}
}

// What waits together goes out together, at most Batch per publish, and
// only changes of one database and entity share a publish.
func TestPublisherBatches(t *testing.T) {
	p, r, release := blocked(t, PublisherOptions{Workers: 1, Buffer: 100, Batch: 32})
	for id := range int64(40) {
		p.Submit(change(id + 1))
	}
	user := change(41)
	user.Entity = domain.EntityUser
	p.Submit(user)
	fb := change(42)
	fb.DB = onFallback
	p.Submit(fb)
	release()
	p.Close(time.Minute)
	r.mu.Lock()
	got := slices.Clone(r.batches)
	r.mu.Unlock()
	// Where the gatherer cut the first message depends on how many changes
	// had arrived; after that it takes 32 at a time. 41 and 42 never share
	// a publish with the products or each other.
	var all []int64
	for _, b := range got {
		if len(b) > 32 {
			t.Errorf("a publish of %d changes, want at most 32", len(b))
		}
		if len(b) > 1 && (slices.Contains(b, 41) || slices.Contains(b, 42)) {
			t.Errorf("publish %v mixes databases or entities", b)
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	if !slices.Equal(all, idRange(1, 42)) {
		t.Errorf("published %v, want 1..42 once each", all)
	}
	if len(got) > 6 {
		t.Errorf("%d publishes for 42 changes waiting together, want at most 6: %v", len(got), got)
	}
}

// While changes come in a stream, a worker lingers to fill its publish; a
// lone change after a lone change does not wait.
func TestPublisherLingers(t *testing.T) {
	r := &recorder{}
	p := NewPublisher(PublisherOptions{Publish: r.publish, Workers: 1, Linger: 5 * time.Second})
	defer p.Close(time.Minute)
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); r.messages() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d publishes after 3s, want %d (a lone change waited for the linger)", r.messages(), n)
			}
		}
	}
	p.Submit(change(1))
	waitFor(1) // alone, at once
	p.Submit(change(2))
	waitFor(2) // alone again: the previous publish carried one change
	// A stream: two changes waiting together, then one more while the
	// worker lingers after them.
	p2r := &recorder{blockID: blockerID, started: make(chan struct{}), gate: make(chan struct{})}
	p2 := NewPublisher(PublisherOptions{Publish: p2r.publish, Workers: 1, Linger: 300 * time.Millisecond})
	defer p2.Close(time.Minute)
	p2.Submit(change(blockerID))
	<-p2r.started
	p2.Submit(change(10))
	p2.Submit(change(11))
	close(p2r.gate) // the blocker's publish ends; 10 and 11 go out together
	for deadline := time.Now().Add(3 * time.Second); p2r.messages() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("10 and 11 not published")
		}
	}
	p2.Submit(change(12))
	time.Sleep(50 * time.Millisecond)
	p2.Submit(change(13)) // within the linger after 12
	p2.Close(time.Minute)
	p2r.mu.Lock()
	defer p2r.mu.Unlock()
	want := [][]int64{{10, 11}, {12, 13}}
	if !slices.EqualFunc(p2r.batches, want, slices.Equal) {
		t.Errorf("publishes = %v, want %v", p2r.batches, want)
	}
}

// A lone change goes out at once, alone.
func TestPublisherLoneChangeAlone(t *testing.T) {
	r := &recorder{}
	p := NewPublisher(PublisherOptions{Publish: r.publish})
	p.Submit(change(5))
	p.Close(time.Minute)
	if r.messages() != 1 || !slices.Equal(r.got(), []int64{5}) {
		t.Errorf("publishes = %v", r.batches)
	}
}

// A change that waited longer than the relay leaves to the publisher is left
// to the relay, so the two do not both send it.
func TestPublisherLeavesStaleChangesToTheRelay(t *testing.T) {
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	p, r, release := blocked(t, PublisherOptions{Workers: 1, Buffer: 8, Clock: clock})
	p.Submit(change(1))
	now.Add(int64(publishMaxWait + time.Millisecond))
	p.Submit(change(2))
	release()
	p.Close(time.Minute)
	if got := r.got(); !slices.Equal(got, []int64{2}) {
		t.Errorf("published %v, want only the fresh change", got)
	}
	if s := p.Stats(); s.Stale != 1 {
		t.Errorf("stats = %+v, want 1 stale", s)
	}
}

// Close publishes everything it holds, then refuses new changes.
func TestPublisherCloseDrains(t *testing.T) {
	p, r, release := blocked(t, PublisherOptions{Workers: 2, Buffer: 100})
	for id := range int64(50) {
		p.Submit(change(id + 1))
	}
	release()
	if left := p.Close(time.Minute); left != 0 {
		t.Errorf("left = %d", left)
	}
	if got := r.got(); !slices.Equal(got, idRange(1, 50)) {
		t.Errorf("published %d of 50 changes", len(got))
	}
	if p.Submit(change(51)) {
		t.Error("a change was taken after Close")
	}
}

// Close gives up at its deadline; what it had not started is not started
// later (the process is about to exit; the relay sends it).
func TestPublisherCloseGivesUpAtDeadline(t *testing.T) {
	p, r, release := blocked(t, PublisherOptions{Workers: 1, Buffer: 8})
	for id := range int64(3) {
		p.Submit(change(id + 1))
	}
	if left := p.Close(20 * time.Millisecond); left != 4 {
		t.Errorf("left = %d, want the running one and 3 waiting", left)
	}
	release()
	p.wg.Wait()
	if got := r.got(); len(got) != 0 {
		t.Errorf("published %v after Close gave up", got)
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
	p := NewPublisher(PublisherOptions{Publish: e.eng.Publish, Workers: 2, Buffer: 64})
	fo := failover.New(e.primary, e.fallback, failover.Options{OnChange: p.OnChange})
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
	drain(t, e.items, func(_ context.Context, m Message) error {
		for _, id := range m.Items() {
			seen[id]++
		}
		return nil
	})
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
	p := NewPublisher(PublisherOptions{Publish: eng.Publish, Workers: 2})
	fo := failover.New(e.primary, e.fallback, failover.Options{OnChange: p.OnChange})
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
// relay page) goes out in one relay run, in messages of up to MaxBatch
// items, each item once, all marked sent.
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
	seen := map[int64]int{}
	got := drain(t, e.items, func(_ context.Context, m Message) error {
		for _, id := range m.Items() {
			seen[id]++
		}
		return nil
	})
	// Batches form within each relay page: 500, then 100 items.
	if want := (relayPage+MaxBatch-1)/MaxBatch + (n-relayPage+MaxBatch-1)/MaxBatch; got != want || len(seen) != n {
		t.Errorf("%d messages for %d items, want %d for %d", got, len(seen), want, n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("item %d sent %d times", id, k)
		}
	}
}
