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

// PublisherOptions configure a Publisher; zero values take defaults.
type PublisherOptions struct {
	Workers int // concurrent publishes (default 4)
	Buffer  int // changes waiting for a worker; more are left to the relay (default 1024)
	Logger  *slog.Logger
	Clock   domain.Clock
}

// PublisherStats counts what a Publisher did with the changes it was given.
type PublisherStats struct {
	Published int64 // publishes run
	Coalesced int64 // changes merged into one still waiting for the same item
	Full      int64 // refused because the buffer was full
	Stale     int64 // waited longer than publishMaxWait: left to the relay
	Abandoned int64 // still waiting or running when Close gave up
}

// Publisher runs after-commit publishes off the request path: Submit hands
// it a change and returns at once, a few workers run the publishes. It never
// blocks or fails a caller. A change it cannot take (buffer full, closed) or
// does not get to (too old, process stopped) is still in the database's
// outbox, unsent, and the outbox relay sends it.
type Publisher struct {
	o      PublisherOptions
	ch     chan *pubJob
	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	waiting map[any]*pubJob // by key, until a worker takes the job

	published, coalesced, full, stale, abandoned atomic.Int64
	running                                      atomic.Int64 // publishes in progress
	lastFullWarn                                 atomic.Int64 // unix nanoseconds
}

type pubJob struct {
	key any
	fn  func(context.Context)
	at  time.Time // first submission: the oldest change the job covers
}

// NewPublisher starts the workers; Close stops them.
func NewPublisher(o PublisherOptions) *Publisher {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	p := &Publisher{o: o, ch: make(chan *pubJob, o.Buffer), waiting: map[any]*pubJob{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for range o.Workers {
		p.wg.Go(p.work)
	}
	return p
}

// Submit queues fn, the publish of one item's change, under key (a
// comparable value naming the item). If a change of the same key is still
// waiting, fn replaces it: one publish covers both, as a message makes sync
// read the rows as they are when it runs. Submit never blocks; it reports
// whether the change was taken.
func (p *Publisher) Submit(key any, fn func(context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if j, ok := p.waiting[key]; ok {
		j.fn = fn
		p.coalesced.Add(1)
		return true
	}
	j := &pubJob{key: key, fn: fn, at: p.o.Clock()}
	select {
	case p.ch <- j:
		p.waiting[key] = j
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

func (p *Publisher) work() {
	for j := range p.ch {
		p.mu.Lock()
		if p.waiting[j.key] == j {
			delete(p.waiting, j.key)
		}
		fn, at := j.fn, j.at
		p.mu.Unlock()
		switch {
		case p.ctx.Err() != nil:
			p.abandoned.Add(1)
		case p.o.Clock().Sub(at) > publishMaxWait:
			p.stale.Add(1)
		default:
			p.running.Add(1)
			fn(p.ctx)
			p.running.Add(-1)
			p.published.Add(1)
		}
	}
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
		left = len(p.ch) + int(p.running.Load())
	}
	p.cancel()
	s := p.Stats()
	p.o.Logger.Info("publisher stopped", "published", s.Published, "coalesced", s.Coalesced,
		"refused_full", s.Full, "left_stale", s.Stale, "left_at_stop", left)
	return left
}

// Stats returns the counters so far.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Published: p.published.Load(), Coalesced: p.coalesced.Load(), Full: p.full.Load(),
		Stale: p.stale.Load(), Abandoned: p.abandoned.Load(),
	}
}

// pubKey names one item in one database: changes coalesce only within it.
type pubKey struct {
	role   store.Role
	entity domain.Entity
	id     int64
}

// PublishAsync wraps publish (Engine.Changed) so that it runs on p: the
// result fits failover.Options.OnChange.
func PublishAsync(p *Publisher, publish func(context.Context, store.DB, domain.Entity, int64, int64)) func(context.Context, store.DB, domain.Entity, int64, int64) {
	return func(_ context.Context, db store.DB, e domain.Entity, id, counter int64) {
		p.Submit(pubKey{db.Role(), e, id}, func(ctx context.Context) { publish(ctx, db, e, id, counter) })
	}
}
