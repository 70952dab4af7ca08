package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// StatusWaiting is a real-time item whose message spent its retries while
// its change waits in an outbox for the relay (realtimePoisoned).
const StatusWaiting = table.StatusWaiting

// relayPage and relayMaxPages bound one relay invocation.
const (
	relayPage     = 500
	relayMaxPages = 40
)

// Publish sends committed API changes of one database and entity
// (Publisher groups them so) as one message, and marks the outbox entries
// each covers as sent. A change's Counter is its database's entry of the
// row's version vector after the write (store.Own); the entries up to it
// were committed before the message was sent, so the message covers them.
// It runs after commit, so a failure here loses nothing: the entries stay
// unsent and the relay sends them. It never fails an API request.
func (e *Engine) Publish(ctx context.Context, cs []Change) {
	if len(cs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.SendTimeout)
	defer cancel()
	db, ent := cs[0].DB, cs[0].Entity
	ids := make([]int64, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	if err := e.items.Send(ctx, itemMessage(ent, ids)); err != nil {
		e.o.Logger.Warn("could not enqueue changes; the outbox relay will send them", "entity", ent, "items", len(ids), "first_id", ids[0], "err", err)
		return
	}
	marks := make([]store.OutboxMark, len(cs))
	for i, c := range cs {
		marks[i] = store.OutboxMark{ID: c.ID, UpTo: c.Counter}
	}
	if err := db.MarkOutboxSent(ctx, ent, marks, e.now()); err != nil {
		// Harmless: the relay sends the entries again, and sync is idempotent.
		e.o.Logger.Warn("could not mark outbox entries sent", "entity", ent, "items", len(ids), "first_id", ids[0], "err", err)
	}
}

// Changed publishes one change at once, on the caller's goroutine: the
// synchronous form of OnChange, for callers that must see the message sent
// before they go on.
func (e *Engine) Changed(ctx context.Context, db store.DB, ent domain.Entity, id, counter int64) {
	e.Publish(ctx, []Change{{DB: db, Entity: ent, ID: id, Counter: counter}})
}

// Relay sends the outbox entries of both databases that were never sent
// (the after-commit publish failed or the process died) or were sent but not
// acknowledged within ResendAfter (the message failed for good, e.g. while
// the other database was down). An unreachable database is skipped; the
// next run catches up.
func (e *Engine) Relay(ctx context.Context) error {
	var errs []error
	for _, db := range []store.DB{e.primary, e.fallback} {
		n, err := e.relay(ctx, db)
		if n > 0 {
			e.o.Logger.Info("outbox relay sent changes", "database", db.Role(), "items", n)
		}
		e.relayBacklog(ctx, db, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay the %s outbox: %w", db.Role(), err))
			continue
		}
		e.outboxAge(ctx, db)
	}
	// The timer that relays also notices nightly runs ending (no one may
	// read their status before morning).
	e.watchNightly(ctx)
	// ... and resumes runs whose first planner message was lost (stalled.go).
	e.resumeStalled(ctx)
	return errors.Join(errs...)
}

func (e *Engine) relay(ctx context.Context, db store.DB) (int, error) {
	now := e.now()
	// Leave fresh entries to the after-commit publisher: it starts a publish
	// within publishMaxWait of the commit or not at all, and one publish
	// takes at most SendTimeout (a second more for the commit itself).
	notSentBefore := now.Add(-publishMaxWait - e.o.SendTimeout - time.Second)
	resendBefore := now.Add(-e.o.ResendAfter)
	// A message sent and still waiting in a backlog is not lost: sending it
	// again would only lengthen the backlog (each minute, every entry not
	// yet acknowledged, until sync could never catch up). So re-send only
	// entries sent before the oldest message still waiting, less a margin
	// for clocks.
	if p, ok := e.items.(oldestPeeker); ok {
		oldest, waiting, err := p.OldestInsertion(ctx)
		if err != nil {
			return 0, err
		}
		if waiting {
			resendBefore = minTime(resendBefore, oldest.Add(-resendClockMargin))
		}
	}
	sent := 0
	for range relayMaxPages {
		entries, err := db.PendingOutbox(ctx, notSentBefore, resendBefore, relayPage)
		if err != nil {
			return sent, err
		}
		// One message per item covers all its entries.
		byItem := map[relayItem]int64{} // the highest counter of each item's entries
		var order []relayItem
		for _, en := range entries {
			k := relayItem{en.Entity, en.ID}
			if _, ok := byItem[k]; !ok {
				order = append(order, k)
			}
			byItem[k] = max(byItem[k], en.Counter)
		}
		n, err := e.relaySend(ctx, db, order, byItem)
		sent += n
		if err != nil {
			return sent, err
		}
		if len(entries) < relayPage {
			return sent, nil
		}
	}
	return sent, nil
}

// oldestPeeker tells when the oldest message still waiting in a queue was
// enqueued (internal/queue).
type oldestPeeker interface {
	OldestInsertion(ctx context.Context) (time.Time, bool, error)
}

// resendClockMargin allows for the handler's clock and the queue's to differ.
const resendClockMargin = 2 * time.Second

type relayItem struct {
	e  domain.Entity
	id int64
}

// relaySend sends items in messages of up to MaxBatch items of one entity
// and marks each item's entries up to upTo sent, SendWorkers messages at a
// time: the relay carries whatever the publisher left (a queue outage, a
// burst beyond its buffer), and one at a time a backlog of thousands would
// take minutes. It stops at the first error.
func (e *Engine) relaySend(ctx context.Context, db store.DB, items []relayItem, upTo map[relayItem]int64) (int, error) {
	var batches [][]relayItem
	open := map[domain.Entity]int{} // entity -> index of its batch being filled
	for _, k := range items {
		i, ok := open[k.e]
		if !ok || len(batches[i]) == MaxBatch {
			i = len(batches)
			batches = append(batches, nil)
			open[k.e] = i
		}
		batches[i] = append(batches[i], k)
	}
	var sent atomic.Int64
	err := parallel(ctx, e.o.SendWorkers, batches, func(ctx context.Context, b []relayItem) error {
		ids, marks := make([]int64, len(b)), make([]store.OutboxMark, len(b))
		for i, k := range b {
			ids[i], marks[i] = k.id, store.OutboxMark{ID: k.id, UpTo: upTo[k]}
		}
		if err := e.items.Send(ctx, itemMessage(b[0].e, ids)); err != nil {
			return err
		}
		if err := db.MarkOutboxSent(ctx, b[0].e, marks, e.now()); err != nil {
			return err
		}
		sent.Add(int64(len(b)))
		return nil
	})
	return int(sent.Load()), err
}

// parallel runs fn on each item, at most workers at a time, and stops
// handing out items at the first error, which it returns (fn's context is
// cancelled then, so the others stop soon too).
func parallel[T any](ctx context.Context, workers int, items []T, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan T)
	var wg sync.WaitGroup
	for range min(workers, len(items)) {
		wg.Go(func() {
			for it := range work {
				if err := fn(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}
