package syncer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// The operator events the sync engine raises beyond single items: a run
// ending badly, a nightly run ending, an outbox that stops draining, a relay
// backlog (internal/event names them; infra/alerts.bicep alerts on them).

// Timing of the checks the relay timer makes.
const (
	// staleRepeat: while an outbox stays stale, one record a minute per
	// database is enough for an alert window and keeps telemetry small.
	staleRepeat = time.Minute
	// nightlyWatchEvery: how often the relay timer looks for nightly runs
	// that have ended (it runs every 10 s).
	nightlyWatchEvery = time.Minute
	// nightlyWatchRuns: the unfinished nightly runs one look reads.
	nightlyWatchRuns = 10
	// NightlyTrigger is the trigger of the runs the nightly timer starts.
	NightlyTrigger = "timer"
)

type watchState struct {
	mu          sync.Mutex
	staleLogged map[store.Role]time.Time
	nightlyAt   time.Time
	stalledAt   time.Time // last resumeStalled look (stalled.go)
}

// summaryItems is how many failed and conflict items a run's final record
// names: enough to start from, while the run's results list them all.
const summaryItems = 10

// summaryItem is one item a run's final record names.
type summaryItem struct {
	ID     int64  `json:"id"`
	Reason string `json:"reason,omitempty"`
}

// runEnded logs a run that has just become final: run_failed for a failed
// run, then one summary record, nightly_run_finished for a nightly run and
// run_finished for any other, with its counts and its first failed and
// conflict items, so that the console says how a run ended in one line.
func (e *Engine) runEnded(ctx context.Context, run table.Run, msg string) {
	if run.Status == RunFailed {
		event.Log(ctx, e.o.Logger, slog.LevelError, event.RunFailed, msg,
			"runId", run.ID, "entity", run.Entity, "trigger", run.Trigger, "reason", run.Reason)
	}
	counts := map[string]int64{}
	for _, s := range Statuses {
		counts[s] = run.Counts[s]
	}
	if n := run.Counts[StatusDiffers]; n > 0 || run.Mode == ModeVerify {
		counts[StatusDiffers] = n
	}
	level := slog.LevelInfo
	if run.Status != RunCompleted || counts[StatusFailed] > 0 || counts[StatusConflict] > 0 {
		level = slog.LevelWarn
	}
	name, text := event.RunFinished, "sync run finished"
	if run.Trigger == NightlyTrigger {
		name, text = event.NightlyRunFinished, "nightly sync run finished"
	}
	args := []any{"runId", run.ID, "entity", run.Entity, "trigger", run.Trigger, "mode", modeOf(run), "status", run.Status,
		"total", run.Total, "counts", counts, "reason", run.Reason, "durationSeconds", int64(run.LastUpdatedTime.Sub(run.CreatedTime).Seconds())}
	for _, k := range []struct{ status, key string }{{StatusFailed, "failedItems"}, {StatusConflict, "conflictItems"}} {
		if counts[k.status] == 0 {
			continue
		}
		items, more := e.firstItems(ctx, run.ID, k.status)
		args = append(args, k.key, items)
		if more {
			args = append(args, k.key+"More", true)
		}
	}
	event.Log(ctx, e.o.Logger, level, name, text, args...)
}

// firstItems reads the first summaryItems items of status in run (none if
// the read fails: the summary must not hold up the run's end).
func (e *Engine) firstItems(ctx context.Context, run, status string) ([]summaryItem, bool) {
	rs, next, err := e.rec.Results(ctx, run, status, summaryItems, "")
	if err != nil {
		e.o.Logger.Warn("could not read a finished run's items for its summary", "run", run, "status", status, "err", err)
		return nil, false
	}
	out := make([]summaryItem, len(rs))
	for i, r := range rs {
		out[i] = summaryItem{ID: r.ID, Reason: r.Reason}
	}
	return out, next != ""
}

// runsByTrigger is the table query the nightly watch and health use
// (internal/table); a Recorder without it has no nightly watch.
type runsByTrigger interface {
	RunsByTrigger(ctx context.Context, trigger string, unfinished bool, limit int) ([]table.Run, error)
}

// watchNightly completes (and so logs) nightly runs whose last item is in,
// at most once a minute: a run is found complete when its status is read,
// and nobody may read a nightly run's status until morning.
func (e *Engine) watchNightly(ctx context.Context) {
	q, ok := e.rec.(runsByTrigger)
	if !ok {
		return
	}
	e.watch.mu.Lock()
	now := e.o.Clock()
	due := now.Sub(e.watch.nightlyAt) >= nightlyWatchEvery
	if due {
		e.watch.nightlyAt = now
	}
	e.watch.mu.Unlock()
	if !due {
		return
	}
	runs, err := q.RunsByTrigger(ctx, NightlyTrigger, true, nightlyWatchRuns)
	if err != nil {
		e.o.Logger.Warn("could not look for finished nightly runs", "err", err)
		return
	}
	for _, r := range runs {
		if _, err := e.status(ctx, r, false); err != nil {
			e.o.Logger.Warn("could not read a nightly run's status", "run", r.ID, "err", err)
		}
	}
}

// NightlyRun is the last nightly run as /api/health/details shows it.
type NightlyRun struct {
	ID           string           `json:"id"`
	Entity       domain.Entity    `json:"entity"`
	Status       string           `json:"status"`
	CreatedTime  string           `json:"createdTime"`
	FinishedTime string           `json:"finishedTime,omitempty"` // set once Completed or Failed
	Total        int64            `json:"total"`
	Counts       map[string]int64 `json:"counts"`
	Reason       string           `json:"reason,omitempty"`
}

// LastNightly returns the newest run the nightly timer started (ok false if
// none), with its status read as the status endpoint reads it.
func (e *Engine) LastNightly(ctx context.Context) (NightlyRun, bool, error) {
	q, ok := e.rec.(runsByTrigger)
	if !ok {
		return NightlyRun{}, false, nil
	}
	runs, err := q.RunsByTrigger(ctx, NightlyTrigger, false, 1)
	if err != nil || len(runs) == 0 {
		return NightlyRun{}, false, err
	}
	st, err := e.status(ctx, runs[0], false)
	if err != nil {
		return NightlyRun{}, false, err
	}
	n := NightlyRun{ID: st.InstanceID, Entity: st.CustomStatus.Entity, Status: st.RuntimeStatus, CreatedTime: st.CreatedTime,
		Total: st.CustomStatus.Total, Counts: st.CustomStatus.Counts, Reason: st.CustomStatus.Reason}
	if st.Final() {
		n.FinishedTime = st.LastUpdatedTime
	}
	return n, true, nil
}

// OutboxOldest returns when db's oldest entry not yet acknowledged was
// written (ok false if its outbox is empty). PendingOutbox with both bounds
// in the future selects every entry, oldest first: one indexed row.
func OutboxOldest(ctx context.Context, db store.DB, now time.Time) (time.Time, bool, error) {
	future := now.Add(24 * time.Hour)
	es, err := db.PendingOutbox(ctx, future, future, 1)
	if err != nil || len(es) == 0 {
		return time.Time{}, false, err
	}
	return es[0].CreatedAt, true, nil
}

// outboxAge raises outbox_stale while db's oldest waiting entry is older
// than OutboxStaleAfter, once a minute per database.
func (e *Engine) outboxAge(ctx context.Context, db store.DB) {
	now := e.o.Clock()
	oldest, ok, err := OutboxOldest(ctx, db, now)
	if err != nil || !ok {
		return
	}
	age := now.Sub(oldest)
	if age < e.o.OutboxStaleAfter {
		return
	}
	e.watch.mu.Lock()
	if e.watch.staleLogged == nil {
		e.watch.staleLogged = map[store.Role]time.Time{}
	}
	last, logged := e.watch.staleLogged[db.Role()]
	if logged && now.Sub(last) < staleRepeat {
		e.watch.mu.Unlock()
		return
	}
	e.watch.staleLogged[db.Role()] = now
	e.watch.mu.Unlock()
	depth, _ := db.OutboxDepth(ctx)
	event.Log(ctx, e.o.Logger, slog.LevelWarn, event.OutboxStale, "outbox entries are waiting too long",
		"database", db.Role(), "ageSeconds", int64(age.Seconds()), "thresholdSeconds", int64(e.o.OutboxStaleAfter.Seconds()),
		"depth", depth, "oldest", domain.FormatTime(oldest))
}

// relayBacklog raises relay_backlog when one relay run (re)sent at least
// RelayBacklogItems items of db's outbox: the after-commit publisher is
// failing or sync is not acknowledging.
func (e *Engine) relayBacklog(ctx context.Context, db store.DB, sent int) {
	if sent < e.o.RelayBacklogItems {
		return
	}
	event.Log(ctx, e.o.Logger, slog.LevelWarn, event.RelayBacklog, "outbox relay is carrying a backlog",
		"database", db.Role(), "items", sent, "threshold", e.o.RelayBacklogItems, "more", sent >= relayPage*relayMaxPages)
}
