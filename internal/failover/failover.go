// Package failover serves the API from the primary database behind a circuit
// breaker, falls over to the fallback when the primary is unavailable, and
// fails back only once the fallback's outbox has drained (so the primary holds
// every change made during the outage).
package failover

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
)

// Options tune the breaker; zero values take defaults (5s query timeout, 5s cooldown).
type Options struct {
	QueryTimeout time.Duration
	Cooldown     time.Duration
	Logger       *slog.Logger
	// OnChange, if set, is called after an API write commits, with the
	// database that took it and that database's entry of the row's version
	// vector after the write (store.Own; math.MaxInt64 for a delete, the
	// row's last API write); the sync engine publishes the change from there.
	OnChange func(ctx context.Context, db store.DB, e domain.Entity, id int64, counter int64)
}

// Breaker states.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerDraining = "draining"
)

// Failover routes API calls to the primary or the fallback.
type Failover struct {
	primary, fallback store.DB
	o                 Options

	mu        sync.Mutex
	state     string
	lastProbe time.Time
	probing   bool
	// Writes this process sends to the fallback while the breaker is not
	// closed: in flight now, and finished in total. The probe closes only
	// if none was in flight and none finished while it read the outbox
	// depth, so no write admitted during the probe is left unsynced.
	fbWrites, fbWritesDone int64
	// When this instance last opened the breaker and last closed it again
	// (zero: not since it started), for /api/health/details.
	openedAt, closedAt time.Time
}

// New wraps primary and fallback; the breaker starts closed.
func New(primary, fallback store.DB, o Options) *Failover {
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Second
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Failover{primary: primary, fallback: fallback, o: o, state: BreakerClosed}
}

// State returns the breaker state.
func (f *Failover) State() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *Failover) open(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == BreakerClosed {
		event.Log(context.Background(), f.o.Logger, slog.LevelWarn, event.BreakerOpened,
			"primary database unavailable; serving from the fallback",
			"database", store.RolePrimary, "driver", f.primary.Driver(), "reason", err.Error())
		f.state = BreakerOpen
		f.lastProbe = time.Now()
		f.openedAt = f.lastProbe
	}
}

// usePrimary reports whether calls should go to the primary, probing it when
// the breaker has been open for Cooldown. Only one caller probes at a time.
// A write routed to the fallback is counted (done must be called when it
// ends) so that the probe cannot close the breaker under it.
func (f *Failover) usePrimary(ctx context.Context, write bool) (primary bool, done func()) {
	noop := func() {}
	f.mu.Lock()
	if f.state == BreakerClosed {
		f.mu.Unlock()
		return true, noop
	}
	fallbackWrite := func() func() {
		if !write {
			return noop
		}
		f.fbWrites++
		return func() {
			f.mu.Lock()
			f.fbWrites--
			f.fbWritesDone++
			f.mu.Unlock()
		}
	}
	if f.probing || time.Since(f.lastProbe) < f.o.Cooldown {
		defer f.mu.Unlock()
		return false, fallbackWrite()
	}
	f.probing = true
	before := f.fbWritesDone
	f.mu.Unlock()

	next := f.probe(ctx)

	f.mu.Lock()
	defer f.mu.Unlock()
	if next == BreakerClosed && (f.fbWrites != 0 || f.fbWritesDone != before) {
		// A fallback write was in flight or committed after the depth was
		// read: its outbox entry may not have been counted.
		next = BreakerDraining
	}
	f.probing = false
	f.lastProbe = time.Now()
	if next != f.state {
		f.o.Logger.Info("breaker state changed", "from", f.state, "to", next)
		if next == BreakerClosed {
			f.closedAt = f.lastProbe
			event.Log(ctx, f.o.Logger, slog.LevelInfo, event.FailbackDone,
				"primary database serving again; the fallback's outbox has drained",
				"database", store.RolePrimary, "driver", f.primary.Driver(),
				"outageSeconds", int64(f.closedAt.Sub(f.openedAt).Seconds()))
		}
	}
	f.state = next
	if next == BreakerClosed {
		return true, noop
	}
	return false, fallbackWrite()
}

// probe decides the next state: closed only if the primary answers and the
// fallback has nothing left to sync.
func (f *Failover) probe(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.o.QueryTimeout)
	defer cancel()
	if err := f.primary.Ping(ctx); err != nil {
		return BreakerOpen
	}
	depth, err := f.fallback.OutboxDepth(ctx)
	if err != nil || depth != 0 {
		return BreakerDraining
	}
	return BreakerClosed
}

// call runs op on the database the breaker picks, failing over on an
// unavailable primary: reads always, writes only when the primary certainly
// changed nothing. It returns the database that answered.
func call[T any](ctx context.Context, f *Failover, write bool, op func(context.Context, store.DB) (T, error)) (T, store.DB, error) {
	run := func(db store.DB) (T, store.DB, error) {
		c, cancel := context.WithTimeout(ctx, f.o.QueryTimeout)
		defer cancel()
		v, err := op(c, db)
		return v, db, err
	}
	// retryable reports whether the other database may take the call.
	retryable := func(err error) bool {
		return err != nil && domain.IsKind(err, domain.KindUnavailable) && ctx.Err() == nil &&
			(!write || errors.Is(err, store.ErrUnreached))
	}
	usePrimary, done := f.usePrimary(ctx, write)
	if !usePrimary {
		v, db, err := run(f.fallback)
		done()
		if !retryable(err) {
			return v, db, err
		}
		// The fallback failed while the breaker is open or draining: the
		// primary may be back. Serving from it beats serving nothing; writes
		// made on the fallback that have not synced yet stay invisible
		// until they do, but none is lost.
		return run(f.primary)
	}
	v, db, err := run(f.primary)
	if err == nil || !domain.IsKind(err, domain.KindUnavailable) || ctx.Err() != nil {
		return v, db, err
	}
	if errors.Is(err, context.DeadlineExceeded) && f.answers(ctx) {
		// The primary is up but the call outlasted QueryTimeout (a lock
		// wait, a slow statement): not an outage, so the breaker stays
		// closed. A write answers 503 (redoing it on the fallback would
		// split writes between the databases for nothing); a read may
		// still be served by the fallback.
		if write {
			return v, db, err
		}
		return run(f.fallback)
	}
	// A busy primary (at its connection or request limit) is up: this call
	// may go to the fallback, but the breaker stays closed, or load alone
	// would send every call there until the fallback's outbox drained.
	if !errors.Is(err, store.ErrBusy) {
		f.open(err)
	}
	if !retryable(err) {
		return v, db, err
	}
	return run(f.fallback)
}

// answers reports whether the primary answers a trivial query now.
func (f *Failover) answers(ctx context.Context) bool {
	c, cancel := context.WithTimeout(ctx, min(f.o.QueryTimeout, time.Second))
	defer cancel()
	return f.primary.Ping(c) == nil
}

func read[T any](ctx context.Context, f *Failover, op func(context.Context, store.DB) (T, error)) (T, error) {
	v, _, err := call(ctx, f, false, op)
	return v, err
}

// write runs a write and, once it has committed, reports the change.
func write[T any](ctx context.Context, f *Failover, e domain.Entity, id func(T) int64, ver func(T) domain.Vector, op func(context.Context, store.DB) (T, error)) (T, error) {
	v, db, err := call(ctx, f, true, op)
	if err == nil && f.o.OnChange != nil {
		counter := int64(math.MaxInt64)
		if ver != nil {
			counter = store.Own(db.Role(), ver(v))
		}
		f.o.OnChange(ctx, db, e, id(v), counter)
	}
	return v, err
}

func productID(p domain.Product) int64              { return p.ID }
func productVersion(p domain.Product) domain.Vector { return p.Ver }
func userID(u domain.User) int64                    { return u.ID }
func userVersion(u domain.User) domain.Vector       { return u.Ver }

// remove runs a delete. Its vector is not returned; a delete is the row's
// last API write on that database (a tombstone cannot be edited), so the
// change covers every entry of the item there.
func remove(ctx context.Context, f *Failover, e domain.Entity, id int64, op func(context.Context, store.DB) error) error {
	_, err := write(ctx, f, e, func(struct{}) int64 { return id }, nil,
		func(c context.Context, db store.DB) (struct{}, error) { return struct{}{}, op(c, db) })
	return err
}

func (f *Failover) ListProducts(ctx context.Context, p store.Page) ([]domain.Product, error) {
	return read(ctx, f, func(c context.Context, db store.DB) ([]domain.Product, error) { return db.ListProducts(c, p) })
}

func (f *Failover) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	return read(ctx, f, func(c context.Context, db store.DB) (domain.Product, error) { return db.GetProduct(c, id) })
}

func (f *Failover) CreateProduct(ctx context.Context, ch domain.ProductChange) (domain.Product, error) {
	return write(ctx, f, domain.EntityProduct, productID, productVersion,
		func(c context.Context, db store.DB) (domain.Product, error) { return db.CreateProduct(c, ch) })
}

func (f *Failover) UpdateProduct(ctx context.Context, id int64, ch domain.ProductChange) (domain.Product, error) {
	return write(ctx, f, domain.EntityProduct, productID, productVersion,
		func(c context.Context, db store.DB) (domain.Product, error) { return db.UpdateProduct(c, id, ch) })
}

func (f *Failover) DeleteProduct(ctx context.Context, id int64) error {
	return remove(ctx, f, domain.EntityProduct, id, func(c context.Context, db store.DB) error { return db.DeleteProduct(c, id) })
}

func (f *Failover) ListUsers(ctx context.Context, p store.Page) ([]domain.User, error) {
	return read(ctx, f, func(c context.Context, db store.DB) ([]domain.User, error) { return db.ListUsers(c, p) })
}

func (f *Failover) GetUser(ctx context.Context, id int64) (domain.User, error) {
	return read(ctx, f, func(c context.Context, db store.DB) (domain.User, error) { return db.GetUser(c, id) })
}

func (f *Failover) CreateUser(ctx context.Context, ch domain.UserChange) (domain.User, error) {
	return write(ctx, f, domain.EntityUser, userID, userVersion,
		func(c context.Context, db store.DB) (domain.User, error) { return db.CreateUser(c, ch) })
}

func (f *Failover) UpdateUser(ctx context.Context, id int64, ch domain.UserChange) (domain.User, error) {
	return write(ctx, f, domain.EntityUser, userID, userVersion,
		func(c context.Context, db store.DB) (domain.User, error) { return db.UpdateUser(c, id, ch) })
}

func (f *Failover) DeleteUser(ctx context.Context, id int64) error {
	return remove(ctx, f, domain.EntityUser, id, func(c context.Context, db store.DB) error { return db.DeleteUser(c, id) })
}

// DBHealth is one database's state.
type DBHealth struct {
	Driver    string `json:"driver"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// OutboxDepth is null when it could not be read (an unreachable
	// database): unknown, which "0" would misstate as "nothing waiting".
	OutboxDepth *int64 `json:"outboxDepth"`
	// OutboxOldestAgeSeconds is how long the oldest entry not yet
	// acknowledged has waited (0: the outbox is empty, or unknown when the
	// database is unreachable).
	OutboxOldestAgeSeconds int64 `json:"outboxOldestAgeSeconds"`
}

// Health is the JSON body of /api/health/details (/api/health shows only Status).
type Health struct {
	Status    string              `json:"status"`  // ok, degraded, down
	Serving   string              `json:"serving"` // primary, fallback
	Breaker   string              `json:"breaker"` // closed, open, draining
	Databases map[string]DBHealth `json:"databases"`
	// LastFailover and LastFailback: when this instance last opened the
	// breaker and last closed it (UTC); empty if it has not since it started.
	LastFailover string `json:"lastFailover,omitempty"`
	LastFailback string `json:"lastFailback,omitempty"`
}

// Probe probes the primary if the breaker is not closed and its cooldown
// has passed (as a request would), so that failback does not wait for an
// API request to come along.
func (f *Failover) Probe(ctx context.Context) {
	if f.State() == BreakerClosed {
		return
	}
	_, done := f.usePrimary(ctx, false)
	done()
}

// Watch probes an open breaker every Cooldown until ctx ends: with no API
// traffic (the dashboard only reads health), nothing else would fail back.
func (f *Failover) Watch(ctx context.Context) {
	t := time.NewTicker(f.o.Cooldown)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.Probe(ctx)
		}
	}
}

// Health pings both databases (concurrently) and reports the breaker state,
// probing an open breaker first so that the state it reports is current.
func (f *Failover) Health(ctx context.Context) Health {
	f.Probe(ctx)
	ctx, cancel := context.WithTimeout(ctx, f.o.QueryTimeout)
	defer cancel()
	check := func(db store.DB) DBHealth {
		h := DBHealth{Driver: db.Driver()}
		if err := db.Ping(ctx); err != nil {
			h.Error = domain.ErrorKind(err).String() + ": database did not answer"
			var de *domain.Error
			if errors.As(err, &de) {
				h.Error = de.Message
			}
			return h
		}
		h.Reachable = true
		if d, err := db.OutboxDepth(ctx); err == nil {
			h.OutboxDepth = &d
		}
		if h.OutboxDepth != nil && *h.OutboxDepth > 0 {
			now := time.Now()
			// Every entry is pending with both bounds ahead: the first by seq is the oldest.
			if es, err := db.PendingOutbox(ctx, now.Add(24*time.Hour), now.Add(24*time.Hour), 1); err == nil && len(es) > 0 {
				h.OutboxOldestAgeSeconds = max(0, int64(now.Sub(es[0].CreatedAt).Seconds()))
			}
		}
		return h
	}
	var p, fb DBHealth
	var wg sync.WaitGroup
	wg.Go(func() { p = check(f.primary) })
	wg.Go(func() { fb = check(f.fallback) })
	wg.Wait()
	if !p.Reachable {
		// Open the breaker now rather than on the next failed request.
		f.open(errors.New("health check: " + p.Error))
	}

	h := Health{Breaker: f.State(), Databases: map[string]DBHealth{"primary": p, "fallback": fb}}
	f.mu.Lock()
	if !f.openedAt.IsZero() {
		h.LastFailover = domain.FormatTime(f.openedAt)
	}
	if !f.closedAt.IsZero() {
		h.LastFailback = domain.FormatTime(f.closedAt)
	}
	f.mu.Unlock()
	h.Serving = "primary"
	if h.Breaker != BreakerClosed {
		h.Serving = "fallback"
	}
	switch {
	case !p.Reachable && !fb.Reachable:
		h.Status = "down"
	case p.Reachable && fb.Reachable && h.Breaker == BreakerClosed:
		h.Status = "ok"
	default:
		h.Status = "degraded"
	}
	return h
}
