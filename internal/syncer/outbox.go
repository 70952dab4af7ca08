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
)

// relayPage and relayMaxPages bound one relay invocation.
const (
	relayPage     = 500
	relayMaxPages = 40
)

// Changed publishes a committed API change: it enqueues the item's message
// and marks the outbox entries it covers as sent. counter is db's entry of
// the row's version vector after the write (store.Own); the entries up to
// it were committed before the message was sent, so the message covers
// them. It is called after commit, so a failure here loses nothing: the
// entry stays unsent and the relay sends it. It never fails the API request.
func (e *Engine) Changed(ctx context.Context, db store.DB, ent domain.Entity, id int64, counter int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.SendTimeout)
	defer cancel()
	if err := e.items.Send(ctx, Message{Entity: ent, ID: id}); err != nil {
		e.o.Logger.Warn("could not enqueue a change; the outbox relay will send it", "entity", ent, "id", id, "err", err)
		return
	}
	if err := db.MarkOutboxSent(ctx, ent, id, counter, e.now()); err != nil {
		// Harmless: the relay sends the entry again, and sync is idempotent.
		e.o.Logger.Warn("could not mark an outbox entry sent", "entity", ent, "id", id, "err", err)
	}
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
		if err != nil {
			errs = append(errs, fmt.Errorf("relay the %s outbox: %w", db.Role(), err))
		}
	}
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

// relaySend sends one message per item and marks its entries up to upTo
// sent, SendWorkers at a time: the relay carries whatever the publisher
// left (a queue outage, a burst beyond its buffer), and one at a time a
// backlog of thousands would take minutes. It stops at the first error.
func (e *Engine) relaySend(ctx context.Context, db store.DB, items []relayItem, upTo map[relayItem]int64) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan relayItem)
	var (
		sent atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(e.o.SendWorkers, len(items)) {
		wg.Go(func() {
			for k := range work {
				if err := e.items.Send(ctx, Message{Entity: k.e, ID: k.id}); err != nil {
					cancel(err)
					continue
				}
				if err := db.MarkOutboxSent(ctx, k.e, k.id, upTo[k], e.now()); err != nil {
					cancel(err)
					continue
				}
				sent.Add(1)
			}
		})
	}
	for _, k := range items {
		if ctx.Err() != nil {
			break
		}
		work <- k
	}
	close(work)
	wg.Wait()
	return int(sent.Load()), context.Cause(ctx)
}
