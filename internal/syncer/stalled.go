package syncer

import (
	"context"
	"fmt"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// A run stays Pending until the planner enqueues its first page. One that
// is still Pending, with no page, well after it started has lost its first
// planner message (Start's enqueue failed and so did undoing the run, or
// the process died in between) or waits for a message a queue lease holds
// (a dequeue whose answer was lost hides its messages for the lease). The
// outbox relay's timer finds such runs and re-sends the message: a
// duplicate is harmless, since only the message that records a plan page
// goes on with it. A run that still has no page long after is failed with
// its reason, so that no run is left Pending forever.
const (
	// pendingResendAfter: a Pending run without a plan page this old gets
	// its first planner message again (once per check).
	pendingResendAfter = time.Minute
	// pendingFailAfter: a Pending run without a plan page this old is
	// failed; two of the host's 10-minute leases and then some.
	pendingFailAfter = 25 * time.Minute
	// stalledCheckEvery: how often the relay timer looks (it runs every 10 s).
	stalledCheckEvery = time.Minute
	// stalledRuns: the Pending runs one look reads.
	stalledRuns = 20
	// waitingAfter: a run that has not moved this long says why in its
	// customStatus.waiting.
	waitingAfter = 30 * time.Second
)

// pendingLister is the table query resumeStalled uses (internal/table); a
// Recorder without it has no such check.
type pendingLister interface {
	PendingRuns(ctx context.Context, limit int) ([]table.Run, error)
}

// resumeStalled re-sends the first planner message of runs left Pending
// without a plan page, and fails those left so too long; at most once per
// stalledCheckEvery.
func (e *Engine) resumeStalled(ctx context.Context) {
	q, ok := e.rec.(pendingLister)
	if !ok {
		return
	}
	now := e.o.Clock()
	e.watch.mu.Lock()
	due := now.Sub(e.watch.stalledAt) >= stalledCheckEvery
	if due {
		e.watch.stalledAt = now
	}
	e.watch.mu.Unlock()
	if !due {
		return
	}
	runs, err := q.PendingRuns(ctx, stalledRuns)
	if err != nil {
		e.o.Logger.Warn("could not look for stalled runs", "err", err)
		return
	}
	for _, run := range runs {
		if err := e.resumePending(ctx, run, now); err != nil {
			e.o.Logger.Warn("could not resume a stalled run", "run", run.ID, "err", err)
		}
	}
}

// resumePending handles one run listed Pending (see resumeStalled).
func (e *Engine) resumePending(ctx context.Context, run table.Run, now time.Time) error {
	age := now.Sub(run.CreatedTime)
	if age < pendingResendAfter {
		return nil
	}
	prog, err := e.rec.Progress(ctx, run.ID)
	if err != nil {
		return err
	}
	if len(prog.Pages) > 0 || prog.Done > 0 {
		return nil // planning has begun; the page's own message goes on with it
	}
	if age >= pendingFailAfter {
		run.Status, run.LastUpdatedTime = RunFailed, e.now()
		run.Reason = fmt.Sprintf("the run's first planner message was not handled in %s (lost when the run started, re-sent every minute since): nothing was synced; start a new run",
			pendingFailAfter)
		if err := e.rec.UpdateRun(ctx, run); err != nil {
			return err
		}
		e.runEnded(ctx, run, "sync run failed")
		return nil
	}
	e.o.Logger.Warn("re-sending the first planner message of a stalled run", "run", run.ID, "ageSeconds", int64(age.Seconds()))
	return e.plans.Send(ctx, PlanMessage{Run: run.ID, Entity: run.Entity})
}

// waiting says why a run that has not moved since `since` waits, or "".
func (e *Engine) waiting(run table.Run, prog table.Progress, since time.Time) string {
	now := e.o.Clock()
	if now.Sub(since) < waitingAfter {
		return ""
	}
	at := domain.FormatTime(since)
	if len(prog.Pages) == 0 && prog.Done == 0 {
		return fmt.Sprintf("waiting: the first planner message has not been handled since %s; the outbox relay re-sends it after %s and fails the run after %s",
			at, pendingResendAfter, pendingFailAfter)
	}
	return fmt.Sprintf("waiting: no outcome since %s; the remaining items' queue messages are invisible, held by a queue lease (up to 10 minutes after a lost answer) or waiting for their next attempt",
		at)
}
