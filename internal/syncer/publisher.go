package syncer

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// publishMaxWait is how long a change may wait in the publisher before a
// worker starts its publish; older ones are left to the relay, which in turn
// leaves alone entries younger than this plus SendTimeout. Together they
// keep the two from sending the same fresh change twice (which would be
// harmless, only wasted work) while a slow queue backs the publisher up.
const publishMaxWait = 2 * time.Second

// PublisherOptions configure a Publisher; Publish is required, zero values
// of the rest take defaults.
type PublisherOptions struct {
	Publish PublishFunc // sends changes of one database and entity (Engine.Publish)
	Workers int         // concurrent publishes (default 4)
	Buffer  int         // changes waiting for a worker; more are left to the relay (default 1024)
	Batch   int         // most changes one publish carries (default and at most MaxBatch)
	// Linger is how long a worker waits for more changes to fill a publish
	// while writes come in a stream (the previous publish carried more than
	// one change); a lone write never waits. Default 20ms; < 0: never.
	Linger time.Duration
	Logger *slog.Logger
	Clock  domain.Clock
}

// Change is one committed API write to publish.
type Change struct {
	DB      store.DB
	Entity  domain.Entity
	ID      int64
	Counter int64 // DB's entry of the row's version vector after the write (store.Own)
}

// PublishFunc publishes changes that share a database and an entity.
type PublishFunc func(ctx context.Context, cs []Change)

// PublisherStats counts what a Publisher did with the changes it was given.
type PublisherStats struct {
	Published int64 // changes published
	Batches   int64 // publishes run (one message each)
	Coalesced int64 // changes merged into one still waiting for the same item
	Full      int64 // refused because the buffer was full
	Stale     int64 // waited longer than publishMaxWait: left to the relay
	Abandoned int64 // still waiting or running when Close gave up
}

// Publisher runs after-commit publishes off the request path: Submit hands
// it a change and returns at once; a gatherer forms messages of every change
// waiting (up to Batch), a few workers publish them, those of one database
// and entity together, so a burst of writes costs a few messages, not one
// each, while a lone write still goes out alone at once. It never
// blocks or fails a caller. A change it cannot take (buffer full, closed) or
// does not get to (too old, process stopped) is still in the database's
// outbox, unsent, and the outbox relay sends it.
type Publisher struct {
	o       PublisherOptions
	ch      chan *pubJob
	handoff chan []*pubJob  // formed messages, to the workers
	ctx     context.Context // cancelled when Close gives up
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	waiting map[pubKey]*pubJob // by item, until a worker takes the job

	published, batches, coalesced, full, stale, abandoned atomic.Int64
	running                                               atomic.Int64 // changes being published
	lastFullWarn                                          atomic.Int64 // unix nanoseconds
	lastBatch                                             atomic.Int64 // changes the latest message gathered
	held                                                  atomic.Int64 // changes gathered, waiting for a worker
}

type pubJob struct {
	c  Change
	at time.Time // first submission: the oldest change the job covers
}

// pubKey names one item in one database: changes coalesce only within it.
type pubKey struct {
	role   store.Role
	entity domain.Entity
	id     int64
}

// group is what one publish may cover: one database, one entity.
type group struct {
	role   store.Role
	entity domain.Entity
}

// NewPublisher starts the workers; Close stops them.
func NewPublisher(o PublisherOptions) *Publisher {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.Batch <= 0 || o.Batch > MaxBatch {
		o.Batch = MaxBatch
	}
	if o.Linger == 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	p := &Publisher{o: o, ch: make(chan *pubJob, o.Buffer), waiting: map[pubKey]*pubJob{}}
	p.handoff = make(chan []*pubJob) // unbuffered: while workers are busy, changes pile up for the next message
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(p.gatherLoop)
	for range o.Workers {
		p.wg.Go(p.work)
	}
	return p
}

// OnChange submits an API write's change; it fits failover.Options.OnChange.
func (p *Publisher) OnChange(_ context.Context, db store.DB, e domain.Entity, id, counter int64) {
	p.Submit(Change{DB: db, Entity: e, ID: id, Counter: counter})
}

// Submit queues the publish of c. If a change of the same item in the same
// database is still waiting, c joins it: one publish covers both, as a
// message makes sync read the rows as they are when it runs. Submit never
// blocks; it reports whether the change was taken.
func (p *Publisher) Submit(c Change) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	k := pubKey{c.DB.Role(), c.Entity, c.ID}
	if j, ok := p.waiting[k]; ok {
		j.c.Counter = max(j.c.Counter, c.Counter)
		p.coalesced.Add(1)
		return true
	}
	j := &pubJob{c: c, at: p.o.Clock()}
	select {
	case p.ch <- j:
		p.waiting[k] = j
		return true
	default:
		p.full.Add(1)
		p.warnFull()
		return false
	}
}

// warnFull logs a full buffer at most once a minute: under a burst it would
// otherwise log once per write.
func (p *Publisher) warnFull() {
	now, last := time.Now().UnixNano(), p.lastFullWarn.Load()
	if now-last < int64(time.Minute) || !p.lastFullWarn.CompareAndSwap(last, now) {
		return
	}
	p.o.Logger.Warn("publisher buffer full; the outbox relay will send the changes it could not take",
		"buffer", p.o.Buffer, "refused_so_far", p.full.Load())
}

// gatherLoop forms messages from the changes waiting and hands each to a
// free worker: one gatherer, so that a stream of changes fills messages
// rather than being split among the workers.
func (p *Publisher) gatherLoop() {
	defer close(p.handoff)
	for j := range p.ch {
		jobs := p.gather(j)
		p.lastBatch.Store(int64(len(jobs)))
		p.held.Store(int64(len(jobs)))
		p.handoff <- jobs
		p.held.Store(0)
	}
}

func (p *Publisher) work() {
	for jobs := range p.handoff {
		var (
			order  []group
			groups = map[group][]Change{}
		)
		p.mu.Lock()
		now := p.o.Clock()
		for _, j := range jobs {
			k := pubKey{j.c.DB.Role(), j.c.Entity, j.c.ID}
			if p.waiting[k] == j {
				delete(p.waiting, k)
			}
			switch {
			case p.ctx.Err() != nil:
				p.abandoned.Add(1)
			case now.Sub(j.at) > publishMaxWait:
				p.stale.Add(1)
			default:
				g := group{k.role, k.entity}
				if _, ok := groups[g]; !ok {
					order = append(order, g)
				}
				groups[g] = append(groups[g], j.c)
			}
		}
		p.mu.Unlock()
		for _, g := range order {
			cs := groups[g]
			p.running.Add(int64(len(cs)))
			p.o.Publish(p.ctx, cs)
			p.running.Add(-int64(len(cs)))
			p.published.Add(int64(len(cs)))
			p.batches.Add(1)
		}
	}
}

// gather adds to first whatever else waits, up to Batch. While writes come
// in a stream (the previous message held more than one) it lingers for
// more: under a write burst, a message per few changes would make the queue
// and the table, not the databases, the limit of real-time sync.
func (p *Publisher) gather(first *pubJob) []*pubJob {
	jobs := []*pubJob{first}
	var deadline <-chan time.Time
	if p.o.Linger > 0 && p.lastBatch.Load() > 1 {
		t := time.NewTimer(p.o.Linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(jobs) < p.o.Batch {
		select {
		case j, ok := <-p.ch:
			if !ok {
				return jobs
			}
			jobs = append(jobs, j)
			continue
		default:
		}
		if deadline == nil {
			return jobs
		}
		select {
		case j, ok := <-p.ch:
			if !ok {
				return jobs
			}
			jobs = append(jobs, j)
		case <-deadline:
			return jobs
		}
	}
	return jobs
}

// Close stops taking changes and lets the workers publish what they hold,
// for at most timeout (the host stopping or scaling in gives little time).
// Whatever is left then stays unsent in the outbox for the relay. It returns
// how many changes were left.
func (p *Publisher) Close(timeout time.Duration) int {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.ch)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	left := 0
	select {
	case <-done:
	case <-t.C:
		// Workers skip what is still queued; a publish already running
		// finishes or times out on its own (its send has its own bound).
		p.cancel()
		left = len(p.ch) + int(p.held.Load()) + int(p.running.Load())
	}
	p.cancel()
	s := p.Stats()
	p.o.Logger.Info("publisher stopped", "published", s.Published, "messages", s.Batches, "coalesced", s.Coalesced,
		"refused_full", s.Full, "left_stale", s.Stale, "left_at_stop", left)
	return left
}

// Stats returns the counters so far.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Published: p.published.Load(), Batches: p.batches.Load(), Coalesced: p.coalesced.Load(), Full: p.full.Load(),
		Stale: p.stale.Load(), Abandoned: p.abandoned.Load(),
	}
}
