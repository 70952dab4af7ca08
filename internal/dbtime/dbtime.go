// Package dbtime times every call to a database (store.DB) and logs the
// ones slower than a threshold as event db_call_slow: the database
// performance an operator watches in Azure. It wraps the adapters, below
// both the failover wrapper and the sync engine, so API and sync calls are
// timed alike. The cost of a call that is not slow is two clock reads.
package dbtime

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
)

// Options configure the wrapper; zero values take defaults.
type Options struct {
	Threshold time.Duration // a call taking longer is slow (default 1s)
	// Every is the least time between two records of one operation on one
	// database (default 10s): a slow database makes every call slow, and one
	// record with a count says as much as thousands.
	Every  time.Duration
	Logger *slog.Logger
	Clock  func() time.Time // for tests; default time.Now
}

// DB is a store.DB whose calls are timed. Methods it does not time (added
// to store.DB later, Migrate, Seed, Role, Driver, Close) pass through the
// embedded DB unchanged.
type DB struct {
	store.DB
	o Options

	mu   sync.Mutex
	slow map[string]*opState
}

type opState struct {
	logged time.Time
	calls  int64 // slow calls since the last record
	worst  time.Duration
}

// Wrap returns db with its calls timed.
func Wrap(db store.DB, o Options) *DB {
	if o.Threshold <= 0 {
		o.Threshold = time.Second
	}
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &DB{DB: db, o: o, slow: map[string]*opState{}}
}

// Unwrap returns the database the wrapper times.
func (w *DB) Unwrap() store.DB { return w.DB }

// done is deferred with the call's start (time.Since reads the monotonic
// clock) and its error. A call that never reached the database (store.
// ErrUnreached: no connection) is an outage, which the breaker reports, not
// a slow database; a call that timed out is slow and counts.
func (w *DB) done(ctx context.Context, op string, start time.Time, err *error) {
	if d := time.Since(start); d >= w.o.Threshold && !errors.Is(*err, store.ErrUnreached) {
		w.record(ctx, op, d)
	}
}

func (w *DB) record(ctx context.Context, op string, d time.Duration) {
	now := w.o.Clock()
	w.mu.Lock()
	st := w.slow[op]
	if st == nil {
		st = &opState{}
		w.slow[op] = st
	}
	st.calls++
	st.worst = max(st.worst, d)
	if !st.logged.IsZero() && now.Sub(st.logged) < w.o.Every {
		w.mu.Unlock()
		return
	}
	calls, worst := st.calls, st.worst
	st.logged, st.calls, st.worst = now, 0, 0
	w.mu.Unlock()
	event.Log(context.WithoutCancel(ctx), w.o.Logger, slog.LevelWarn, event.DBCallSlow, "slow database call",
		"database", w.Role(), "driver", w.Driver(), "op", op,
		"durationMs", d.Milliseconds(), "worstMs", worst.Milliseconds(), "thresholdMs", w.o.Threshold.Milliseconds(),
		"slowCalls", calls)
}

func (w *DB) ListProducts(ctx context.Context, p store.Page) (r0 []domain.Product, err error) {
	defer w.done(ctx, "ListProducts", time.Now(), &err)
	return w.DB.ListProducts(ctx, p)
}

func (w *DB) GetProduct(ctx context.Context, id int64) (r0 domain.Product, err error) {
	defer w.done(ctx, "GetProduct", time.Now(), &err)
	return w.DB.GetProduct(ctx, id)
}

func (w *DB) CreateProduct(ctx context.Context, c domain.ProductChange) (r0 domain.Product, err error) {
	defer w.done(ctx, "CreateProduct", time.Now(), &err)
	return w.DB.CreateProduct(ctx, c)
}

func (w *DB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (r0 domain.Product, err error) {
	defer w.done(ctx, "UpdateProduct", time.Now(), &err)
	return w.DB.UpdateProduct(ctx, id, c)
}

func (w *DB) DeleteProduct(ctx context.Context, id int64) (err error) {
	defer w.done(ctx, "DeleteProduct", time.Now(), &err)
	return w.DB.DeleteProduct(ctx, id)
}

func (w *DB) ListUsers(ctx context.Context, p store.Page) (r0 []domain.User, err error) {
	defer w.done(ctx, "ListUsers", time.Now(), &err)
	return w.DB.ListUsers(ctx, p)
}

func (w *DB) GetUser(ctx context.Context, id int64) (r0 domain.User, err error) {
	defer w.done(ctx, "GetUser", time.Now(), &err)
	return w.DB.GetUser(ctx, id)
}

func (w *DB) CreateUser(ctx context.Context, c domain.UserChange) (r0 domain.User, err error) {
	defer w.done(ctx, "CreateUser", time.Now(), &err)
	return w.DB.CreateUser(ctx, c)
}

func (w *DB) UpdateUser(ctx context.Context, id int64, c domain.UserChange) (r0 domain.User, err error) {
	defer w.done(ctx, "UpdateUser", time.Now(), &err)
	return w.DB.UpdateUser(ctx, id, c)
}

func (w *DB) DeleteUser(ctx context.Context, id int64) (err error) {
	defer w.done(ctx, "DeleteUser", time.Now(), &err)
	return w.DB.DeleteUser(ctx, id)
}

func (w *DB) LoadProduct(ctx context.Context, id int64) (r0 domain.Product, r1 bool, err error) {
	defer w.done(ctx, "LoadProduct", time.Now(), &err)
	return w.DB.LoadProduct(ctx, id)
}

func (w *DB) PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (r0 store.PutResult, err error) {
	defer w.done(ctx, "PutProduct", time.Now(), &err)
	return w.DB.PutProduct(ctx, p, expect)
}

func (w *DB) LoadProducts(ctx context.Context, ids []int64) (r0 map[int64]domain.Product, err error) {
	defer w.done(ctx, "LoadProducts", time.Now(), &err)
	return w.DB.LoadProducts(ctx, ids)
}

func (w *DB) PutProducts(ctx context.Context, puts []store.ProductPut) (r0 []store.PutResult, err error) {
	defer w.done(ctx, "PutProducts", time.Now(), &err)
	return w.DB.PutProducts(ctx, puts)
}

func (w *DB) LoadUser(ctx context.Context, id int64) (r0 domain.User, r1 bool, err error) {
	defer w.done(ctx, "LoadUser", time.Now(), &err)
	return w.DB.LoadUser(ctx, id)
}

func (w *DB) PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (r0 store.PutResult, err error) {
	defer w.done(ctx, "PutUser", time.Now(), &err)
	return w.DB.PutUser(ctx, u, expect)
}

func (w *DB) PutUsers(ctx context.Context, puts []store.UserPut) (r0 []store.PutResult, err error) {
	defer w.done(ctx, "PutUsers", time.Now(), &err)
	return w.DB.PutUsers(ctx, puts)
}

func (w *DB) UserByEmail(ctx context.Context, email string) (r0 domain.User, r1 bool, err error) {
	defer w.done(ctx, "UserByEmail", time.Now(), &err)
	return w.DB.UserByEmail(ctx, email)
}

func (w *DB) IDs(ctx context.Context, e domain.Entity, after int64, limit int) (r0 []int64, err error) {
	defer w.done(ctx, "IDs", time.Now(), &err)
	return w.DB.IDs(ctx, e, after, limit)
}

func (w *DB) PendingOutbox(ctx context.Context, notSentBefore, resendBefore time.Time, limit int) (r0 []store.OutboxEntry, err error) {
	defer w.done(ctx, "PendingOutbox", time.Now(), &err)
	return w.DB.PendingOutbox(ctx, notSentBefore, resendBefore, limit)
}

func (w *DB) MarkOutboxSent(ctx context.Context, e domain.Entity, marks []store.OutboxMark, at time.Time) (err error) {
	defer w.done(ctx, "MarkOutboxSent", time.Now(), &err)
	return w.DB.MarkOutboxSent(ctx, e, marks, at)
}

func (w *DB) AckOutbox(ctx context.Context, e domain.Entity, marks []store.OutboxMark) (err error) {
	defer w.done(ctx, "AckOutbox", time.Now(), &err)
	return w.DB.AckOutbox(ctx, e, marks)
}

func (w *DB) OutboxDepth(ctx context.Context) (r0 int64, err error) {
	defer w.done(ctx, "OutboxDepth", time.Now(), &err)
	return w.DB.OutboxDepth(ctx)
}

func (w *DB) Ping(ctx context.Context) (err error) {
	defer w.done(ctx, "Ping", time.Now(), &err)
	return w.DB.Ping(ctx)
}
