// Package event names the situations an operator must act on. Each is
// logged once, as one structured record whose attribute "event" holds one of
// the names below and whose other attributes are what the operator needs to
// act (entity, id, runId, database, reason, counts, durations), never a
// secret. The alert rules in infra/alerts.bicep select records by these
// names, so a name is a contract: renaming one breaks an alert (a test in
// infra checks that every alert names a constant here, emitted by the code).
package event

import (
	"context"
	"log/slog"
)

// Key is the attribute that carries the event name.
const Key = "event"

// Event names (stable snake_case).
const (
	// ItemFailed: an item's sync message spent the queue's retries; its
	// outcome is recorded failed (entity, id, runId, reason).
	ItemFailed = "item_failed"
	// ConflictRecorded: both databases changed an item concurrently (or a
	// user's email is held by another user on the other side); the merge is
	// recorded for a person to review (entity, id, runId, reason).
	ConflictRecorded = "conflict_recorded"
	// DatabaseRegressed: a database went back in time (restored from a
	// backup, rebuilt): it lacks a point of its history (a mark) the other
	// had seen, or a row lacks writes of its own the other had synced.
	// Logged once per finding (database; entity, id and runId when a row
	// found it); repair runs follow, and database_repaired when they end.
	DatabaseRegressed = "database_regressed"
	// DatabaseRepaired: the repair runs that followed a database_regressed
	// completed: every row was compared (database, regressedAt, the runs
	// and their counts).
	DatabaseRepaired = "database_repaired"
	// BreakerOpened: the primary stopped answering; the API serves from the
	// fallback (database, reason).
	BreakerOpened = "breaker_opened"
	// FailbackDone: the primary answers and the fallback's outbox drained;
	// the API serves from the primary again (database, outageSeconds).
	FailbackDone = "failback_done"
	// RunFailed: a sync run ended Failed (runId, entity, trigger, reason).
	RunFailed = "run_failed"
	// RunPlannedOneSide: a run planned a page from one database only, the
	// other being unavailable: items only the other holds are not in it
	// (runId, entity, database = the unavailable one).
	RunPlannedOneSide = "run_planned_one_side"
	// RunFinished: a run other than a nightly one completed or failed, its
	// summary in one record (runId, entity, trigger, mode, status, total,
	// counts, durationSeconds, failedItems and conflictItems: the first
	// summaryItems of each, with reasons; more when there are others).
	RunFinished = "run_finished"
	// NightlyRunFinished: a nightly run completed or failed (runId, entity,
	// status, total, counts, durationSeconds, and the summary of RunFinished).
	NightlyRunFinished = "nightly_run_finished"
	// OutboxStale: a database's oldest outbox entry has waited longer than
	// OUTBOX_STALE_AFTER: changes are not reaching the other database
	// (database, ageSeconds, thresholdSeconds, depth).
	OutboxStale = "outbox_stale"
	// RelayBacklog: one OutboxRelay run found at least RELAY_BACKLOG_ITEMS
	// items to (re)send: the after-commit publisher or sync is falling
	// behind (database, items, more).
	RelayBacklog = "relay_backlog"
	// DBCallSlow: a database call took longer than DB_SLOW_CALL (database,
	// driver, op, durationMs, thresholdMs, slowCalls since the last record).
	DBCallSlow = "db_call_slow"
	// ClockAhead: a row's change time is more than a minute ahead of the
	// syncing instance's clock: some instance's clock runs fast, and its
	// writes win field merges against later ones (entity, id, changedAt,
	// ahead).
	ClockAhead = "clock_ahead"
)

// All lists every event name, for tests and documentation.
func All() []string {
	return []string{ItemFailed, ConflictRecorded, DatabaseRegressed, DatabaseRepaired, BreakerOpened, FailbackDone,
		RunFailed, RunFinished, RunPlannedOneSide, NightlyRunFinished, OutboxStale, RelayBacklog, DBCallSlow, ClockAhead}
}

// Log writes the one record of event name at level; args are slog
// key-value pairs or attributes.
func Log(ctx context.Context, l *slog.Logger, level slog.Level, name, msg string, args ...any) {
	if l == nil {
		return
	}
	l.Log(ctx, level, msg, append([]any{slog.String(Key, name)}, args...)...)
}
