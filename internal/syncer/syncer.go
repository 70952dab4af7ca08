// Package syncer keeps the two databases in step: it merges one item (by
// version vector: copied when one side dominates, merged field by field
// when both changed), plans sync runs in pages of queue messages, assembles
// run status from Table Storage, publishes changes after commit and relays
// what the outbox still holds.
package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// Message asks SyncProduct to merge one item (ID), or several items of one
// entity (IDs, real-time only). Run is empty for real-time changes
// (published after commit or by the outbox relay). A run sends one message
// per item, so that its counts are per item; real-time changes that wait
// together are sent together (up to MaxBatch), because under a write burst
// one message per write makes the queue the bottleneck (docs/scale.md).
type Message struct {
	Entity domain.Entity `json:"entity"`
	ID     int64         `json:"id,omitempty"`
	IDs    []int64       `json:"ids,omitempty"`
	Run    string        `json:"run,omitempty"`
	// Resent marks an item a batch sent on alone after a failed attempt:
	// like a redelivery, that attempt may have written before it failed.
	Resent bool `json:"resent,omitempty"`
	// Retry is the retry round (retry.go) that sent a run's failed item
	// again; its outcome replaces the failed one.
	Retry int `json:"retry,omitempty"`
}

// MaxBatch is the most items one real-time message carries: the most one
// Table Storage transaction records (so a message's outcomes take one), and
// ids enough to keep a message (about 2 KB) far below the queue's 64 KiB
// and one invocation (a few statements per database) well within the
// function timeout.
const MaxBatch = 100

// Items returns the ids m asks to merge.
func (m Message) Items() []int64 {
	if len(m.IDs) > 0 {
		return m.IDs
	}
	return []int64{m.ID}
}

// itemMessage is the message for the items of one entity: the single form
// for one item, as every message had before batches.
func itemMessage(e domain.Entity, ids []int64) Message {
	if len(ids) == 1 {
		return Message{Entity: e, ID: ids[0]}
	}
	return Message{Entity: e, IDs: ids}
}

// PlanMessage asks PlanProductSync to enqueue the items of one page: ids
// greater than After, in both databases.
type PlanMessage struct {
	Run    string        `json:"run"`
	Entity domain.Entity `json:"entity"`
	After  int64         `json:"after"`
	// UpTo > 0 makes this a range message of a diff or verify run: compare
	// the items with ids in (After, UpTo] (diff.go).
	UpTo int64 `json:"upTo,omitempty"`
}

// Sender enqueues one message as JSON (internal/queue).
type Sender interface {
	Send(ctx context.Context, v any) error
}

// Recorder keeps runs and outcomes (internal/table).
type Recorder interface {
	CreateRun(ctx context.Context, r table.Run) error
	GetRun(ctx context.Context, id string) (table.Run, error)
	ListRuns(ctx context.Context, limit int) ([]table.Run, error)
	UpdateRun(ctx context.Context, r table.Run) error
	GetPlanPage(ctx context.Context, runID string, after int64) (table.PlanPage, bool, error)
	PutPlanPage(ctx context.Context, runID string, p table.PlanPage) error
	RecordRunResult(ctx context.Context, runID string, r table.Result) (bool, error)
	RecordRealtime(ctx context.Context, rs ...table.Result) error
	RecordAttemptError(ctx context.Context, partition string, e domain.Entity, id int64, reason string) error
	RecordIntent(ctx context.Context, partition string, r table.Result) error
	Intent(ctx context.Context, partition string, e domain.Entity, id int64) (table.Result, bool, error)
	AttemptError(ctx context.Context, partition string, e domain.Entity, id int64) (string, bool, error)
	RecordAttempt(ctx context.Context, partition string, e domain.Entity, id int64, a table.Attempt) error
	Attempts(ctx context.Context, partition string, e domain.Entity, id int64) (int, []table.Attempt, error)
	ReplaceFailed(ctx context.Context, runID string, r table.Result) (bool, error)
	StartRetry(ctx context.Context, runID string, round int, items int64, now time.Time) (table.Run, error)
	Retrying(ctx context.Context, runID string) (int64, error)
	Item(ctx context.Context, partition string, e domain.Entity, id int64) (table.Result, bool, error)
	ListRunsWhere(ctx context.Context, f table.RunFilter, limit int) ([]table.Run, error)
	Progress(ctx context.Context, runID string) (table.Progress, error)
	Results(ctx context.Context, partition, status string, limit int, token string) ([]table.Result, string, error)
	// Retention (retention.go).
	ExpiringRuns(ctx context.Context, before time.Time, after string, limit int) ([]table.ExpiringRun, error)
	MarkRunDeleting(ctx context.Context, id string, etag azcore.ETag, at time.Time) error
	DeleteRun(ctx context.Context, id string, parts int) (int64, error)
	DeleteRealtimeBefore(ctx context.Context, before time.Time) (int64, error)
	RecordRange(ctx context.Context, runID string, r table.RangeRecord) (bool, error)
	GetRange(ctx context.Context, runID string, after int64) (table.RangeRecord, bool, error)
	MarkRangeDone(ctx context.Context, runID string, after int64) error
}

// Options configure an Engine; zero values take defaults.
type Options struct {
	Logger      *slog.Logger
	Clock       domain.Clock
	PageSize    int           // item messages per planner message (default 1000)
	SendWorkers int           // concurrent enqueues while planning (default 32)
	ResendAfter time.Duration // relay re-sends entries not acknowledged this long after sending (default 60s)
	SendTimeout time.Duration // bound on one after-commit publish (default 2s)
	// OutboxStaleAfter: an outbox entry waiting longer raises outbox_stale
	// (default 5m); RelayBacklogItems: a relay run sending at least this
	// many items raises relay_backlog (default 1000). See internal/event.
	OutboxStaleAfter  time.Duration
	RelayBacklogItems int
	// Retention (retention.go): runs and real-time outcomes older than
	// RunRetention are deleted (default DefaultRunRetention); tombstones
	// deleted longer than TombstoneRetention ago are purged (0: kept
	// forever); a pass stops starting work after RetentionBudget.
	RunRetention       time.Duration
	TombstoneRetention time.Duration
	RetentionBudget    time.Duration
	// Diff and verify runs (diff.go).
	NightlyMode   string // mode of the nightly runs (default diff)
	RangeSize     int    // ids of the union per compared range (default 4000)
	RangesPerPage int    // ranges per planner page (default 25)
	RangeWorkers  int    // ranges compared at once per instance (default 4)
	// CrashPoint, if set, is called at the named points of a range's
	// handling (fault-injection for tests; nil in production).
	CrashPoint func(point string, d Delivery)
}

// Engine is the sync engine. Primary and fallback are the raw databases,
// not the failover wrapper: sync must see both sides as they are.
type Engine struct {
	primary, fallback store.DB
	items, plans      Sender
	rec               Recorder
	o                 Options
	rangeSlots        chan struct{} // bounds concurrent range comparisons

	regMu       sync.Mutex
	clockLogged time.Time  // when a clock ahead was last logged
	watch       watchState // what the operator events have said already
	hist        []*history // each database's history, as recorded in the other (history.go)
}

// New returns an Engine that enqueues item messages on items (product-sync)
// and planner messages on plans (sync-plan).
func New(primary, fallback store.DB, items, plans Sender, rec Recorder, o Options) *Engine {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.SendWorkers <= 0 {
		o.SendWorkers = 32
	}
	if o.ResendAfter <= 0 {
		o.ResendAfter = 60 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 2 * time.Second
	}
	if o.OutboxStaleAfter <= 0 {
		o.OutboxStaleAfter = 5 * time.Minute
	}
	if o.RelayBacklogItems <= 0 {
		o.RelayBacklogItems = 1000
	}
	if o.RunRetention <= 0 {
		o.RunRetention = DefaultRunRetention
	}
	if o.RetentionBudget <= 0 {
		o.RetentionBudget = DefaultRetentionBudget
	}
	if o.NightlyMode == "" {
		o.NightlyMode = ModeDiff
	}
	if o.RangeSize <= 0 {
		o.RangeSize = defaultRangeSize
	}
	if o.RangesPerPage <= 0 {
		o.RangesPerPage = defaultRangesPerPage
	}
	if o.RangeWorkers <= 0 {
		o.RangeWorkers = defaultRangeWorkers
	}
	e := &Engine{primary: primary, fallback: fallback, items: items, plans: plans, rec: rec, o: o,
		rangeSlots: make(chan struct{}, o.RangeWorkers)}
	e.hist = []*history{newHistory(primary, fallback, regPrimary, e.regressionFound, e.now), newHistory(fallback, primary, regFallback, e.regressionFound, e.now)}
	return e
}

func (e *Engine) now() time.Time { return domain.Millis(e.o.Clock()) }

// partition is where an item's outcome is recorded: its run, or the day's
// real-time partition.
func (e *Engine) partition(m Message) string {
	if m.Run != "" {
		return m.Run
	}
	return RealtimePartition(e.now())
}

// RealtimePartition names the results partition of real-time outcomes on
// the day of t (UTC).
func RealtimePartition(t time.Time) string { return "realtime-" + t.UTC().Format("20060102") }

func validMessage(m Message) error {
	if !m.Entity.Valid() {
		return domain.Errorf(domain.KindInvalid, "sync message needs entity product or user, got %q", m.Entity)
	}
	if m.Retry < 0 || m.Retry > 0 && (m.Run == "" || len(m.IDs) > 0) {
		return domain.Errorf(domain.KindInvalid, "a retry round (%d) is sent for one item of a run", m.Retry)
	}
	if len(m.IDs) == 0 {
		if m.ID <= 0 {
			return domain.Errorf(domain.KindInvalid, "sync message needs a positive id, got %d", m.ID)
		}
		return nil
	}
	switch {
	case m.ID != 0:
		return domain.Errorf(domain.KindInvalid, "sync message has both id and ids")
	case m.Run != "":
		return domain.Errorf(domain.KindInvalid, "a run's sync message carries one id")
	case len(m.IDs) > MaxBatch:
		return domain.Errorf(domain.KindInvalid, "sync message carries %d ids, at most %d", len(m.IDs), MaxBatch)
	}
	for _, id := range m.IDs {
		if id <= 0 {
			return domain.Errorf(domain.KindInvalid, "sync message needs positive ids, got %d", id)
		}
	}
	return nil
}

// SyncItem merges the message's items and records their outcomes, as on a
// message's first delivery (SyncDelivered).
func (e *Engine) SyncItem(ctx context.Context, m Message) error {
	return e.SyncDelivered(ctx, m, Delivery{DequeueCount: 1})
}

// SyncDelivered merges the message's items and records their outcomes. It
// returns an error only for transient failures, so that the queue
// redelivers the message; a message that can never succeed is dropped with
// a log line. On a redelivery, an item found already in step takes the
// outcome its earlier attempt announced (an intent) if that attempt wrote
// the rows both databases hold: its record was lost, not its work. A run's
// item does so on any delivery (its message may be a duplicate).
func (e *Engine) SyncDelivered(ctx context.Context, m Message, d Delivery) error {
	if err := validMessage(m); err != nil {
		e.o.Logger.Warn("dropping invalid sync message", "err", err)
		return nil
	}
	again := d.DequeueCount > 1 || m.Resent
	if len(m.IDs) > 0 {
		return e.syncBatch(ctx, m, again)
	}
	// A run's item may have been attempted before, or be attempted at the
	// same time, by a duplicate of its message (an enqueue retried after a
	// lost answer, a planner page redelivered), which comes as a first
	// delivery: every run item reads the intent another attempt may have
	// left, once: before it writes its own, or after finding nothing to
	// write (a duplicate's intent precedes the duplicate's writes).
	in := &intentOnce{read: func() (table.Result, bool, error) {
		return e.rec.Intent(ctx, e.partition(m), m.Entity, m.ID)
	}}
	if m.Run == "" {
		in = nil
	}
	r, err := e.mergeItem(ctx, m, m.ID, in)
	if err != nil {
		return err
	}
	var prior *table.Result
	if in != nil && r.Status != StatusConflict {
		if r.Status == StatusUnchanged && in.wrote {
			// This attempt announced a write, then found the item in
			// step: another sync (a duplicate) wrote it, and the intent
			// now recorded is the trace of that write.
			in.done = false
		}
		if prior, err = in.get(); err != nil {
			return fmt.Errorf("sync %s %d: read the intent of an earlier attempt: %w", m.Entity, m.ID, err)
		}
	}
	if again || prior != nil {
		if r, err = e.recall(ctx, m, r, prior); err != nil {
			return err
		}
	}
	return e.record(ctx, m, r)
}

// mergeItem merges item id of m's entity. Before it writes, it records
// the outcome it is about to write as the item's intent: every outcome of a
// run item (a run's counts must be exact), the conflicts of real-time ones.
// On failure it records the attempt's error (best effort: the poison
// handler reports the last reason).
func (e *Engine) mergeItem(ctx context.Context, m Message, id int64, in *intentOnce) (table.Result, error) {
	var (
		res merged
		err error
	)
	before := func(r merged) error {
		if m.Run == "" && r.status != StatusConflict {
			return nil
		}
		if in != nil {
			prior, err := in.get()
			if err != nil {
				return err
			}
			if prior != nil && prior.Status == StatusConflict && r.status != StatusConflict {
				return nil // another attempt merged a conflict: its intent stays (recall)
			}
		}
		if err := e.rec.RecordIntent(ctx, e.partition(m), outcome(m.Entity, id, r)); err != nil {
			return err
		}
		if in != nil {
			in.wrote = true
		}
		return nil
	}
	switch m.Entity {
	case domain.EntityProduct:
		res, err = merge(ctx, productKind, e.primary, e.fallback, e, id, m.Entity, before)
	case domain.EntityUser:
		res, err = merge(ctx, userKind, e.primary, e.fallback, e, id, m.Entity, before)
	}
	if err != nil {
		a := table.Attempt{At: e.now(), Reason: reasonOf(err), Retry: m.Retry}
		if rerr := e.rec.RecordAttempt(ctx, e.partition(m), m.Entity, id, a); rerr != nil {
			e.o.Logger.Warn("could not record the attempt's error", "err", rerr)
		}
		return table.Result{}, fmt.Errorf("sync %s %d: %w", m.Entity, id, err)
	}
	e.logRegression(ctx, m, id, res.reg)
	e.checkClock(ctx, m, id, res.version)
	return outcome(m.Entity, id, res), nil
}

// intentOnce reads a run item's intent at most once per delivery: the one
// another attempt left, read before this attempt records its own.
type intentOnce struct {
	read  func() (table.Result, bool, error)
	done  bool
	found *table.Result
	wrote bool // this attempt recorded an intent of its own
}

func (o *intentOnce) get() (*table.Result, error) {
	if o.done {
		return o.found, nil
	}
	r, ok, err := o.read()
	if err != nil {
		return nil, err
	}
	o.done = true
	if ok {
		o.found = &r
	}
	return o.found, nil
}

// ClockSkewWarn is how far ahead of this instance's clock a row's change
// time may be before it is logged: field times come from the writing
// instance's clock, so a fast clock makes its writes win field merges
// against writes acknowledged after them (docs/merge.md).
const ClockSkewWarn = time.Minute

// checkClock logs, once an hour, a row changed at a time ahead of this
// instance's clock by more than ClockSkewWarn.
func (e *Engine) checkClock(ctx context.Context, m Message, id int64, changed time.Time) {
	now := e.now()
	if changed.Sub(now) <= ClockSkewWarn {
		return
	}
	e.regMu.Lock()
	due := now.Sub(e.clockLogged) >= time.Hour
	if due {
		e.clockLogged = now
	}
	e.regMu.Unlock()
	if due {
		event.Log(ctx, e.o.Logger, slog.LevelWarn, event.ClockAhead,
			"a row's change time is ahead of this instance's clock: some instance's clock runs fast, and its writes win field merges against later ones",
			"entity", m.Entity, "id", id, "changedAt", domain.FormatTime(changed), "ahead", changed.Sub(now).Round(time.Millisecond).String())
	}
}

func outcome(ent domain.Entity, id int64, r merged) table.Result {
	return table.Result{Entity: ent, ID: id, Status: r.status, Reason: r.reason, Detail: r.detail, Version: r.version, Ver: r.agreed}
}

// recall replaces the outcome of a redelivered item (or a run's item an
// earlier attempt left an intent for: prior) that is not a conflict with
// the intent the earlier attempt recorded, when that intent says more than
// "unchanged" and both databases now hold its vector or, for a run's item,
// a descendant of it (a later write may have been synced in real time
// before the redelivery; the item may be in neither database since).
// A real-time intent needs the same vector: the day's partition holds the
// item's intents of other messages.
func (e *Engine) recall(ctx context.Context, m Message, r table.Result, prior *table.Result) (table.Result, error) {
	if r.Status == StatusConflict {
		return r, nil
	}
	in, ok := table.Result{}, prior != nil
	if prior != nil {
		in = *prior
	} else if m.Run == "" {
		var err error
		if in, ok, err = e.rec.Intent(ctx, e.partition(m), r.Entity, r.ID); err != nil {
			return r, fmt.Errorf("sync %s %d: read the intent of an earlier attempt: %w", r.Entity, r.ID, err)
		}
	}
	if !ok || in.Status == "" || in.Status == StatusUnchanged || in.Status == r.Status {
		return r, nil
	}
	descends := r.Ver != (domain.Vector{}) && in.Ver == r.Ver
	if m.Run != "" {
		// In neither database now: gone since the earlier attempt wrote it
		// (a tombstone purged, both databases rebuilt).
		gone := r.Ver == (domain.Vector{}) && r.Reason == reasonNeither
		descends = r.Ver != (domain.Vector{}) && r.Ver.Dominates(in.Ver) || gone
	}
	if !descends {
		return r, nil
	}
	e.o.Logger.Info("an item takes the outcome an earlier attempt wrote", "entity", r.Entity, "id", r.ID, "run", m.Run, "status", in.Status)
	return in, nil
}

// logRegression records that a database went back in time, found by a
// row (the second line of detection, behind the marks of history.go): the
// database's rows stop dominating, and, unless it was known already, the
// regression is logged with the row that showed it and repair runs start.
func (e *Engine) logRegression(ctx context.Context, m Message, id int64, reg regression) {
	for _, h := range e.hist {
		if reg&h.bit == 0 {
			continue
		}
		at, newly, err := h.flag(ctx)
		if err != nil {
			e.o.Logger.Warn("could not record that a database went back in time; the next check will", "database", h.own.Role(), "err", err)
		}
		if !newly {
			continue
		}
		event.Log(ctx, e.o.Logger, slog.LevelError, event.DatabaseRegressed,
			"a database went back in time (restored or rebuilt): it lacks writes of its own that the other had synced; "+
				"its rows are merged field by field until a repair run has compared every row",
			"database", string(h.own.Role()), "entity", m.Entity, "id", id, "runId", m.Run)
		e.repairAll(ctx, at)
	}
}

// syncBatch merges the items of a real-time batch (products with a few
// statements for all, see mergeProducts; users one by one) and records
// their outcomes together. Items that fail are sent on as messages of
// their own, so that each gets the queue's retries and, when those are
// spent, its own poison outcome, exactly as if it had never shared a
// message. Only when every item failed (a database or the table down) does
// the whole message fail and come back later.
func (e *Engine) syncBatch(ctx context.Context, m Message, again bool) error {
	m.IDs = distinct(m.IDs) // a hand-made message may name an item twice
	done, rest := map[int64]table.Result{}, m.IDs
	if m.Entity == domain.EntityProduct {
		var err error
		if done, rest, err = e.mergeProducts(ctx, m.IDs); err != nil {
			return err
		}
	}
	var (
		failed []int64
		errs   []error
	)
	for _, id := range rest {
		r, err := e.mergeItem(ctx, m, id, nil)
		if err != nil {
			failed, errs = append(failed, id), append(errs, err)
			continue
		}
		done[id] = r
	}
	if len(failed) == len(m.IDs) {
		return errors.Join(errs...)
	}
	results := make([]table.Result, 0, len(done))
	for _, id := range m.IDs {
		if r, ok := done[id]; ok {
			if again {
				var err error
				if r, err = e.recall(ctx, m, r, nil); err != nil {
					return err
				}
			}
			results = append(results, r)
		}
	}
	if err := e.recordRealtime(ctx, m, results); err != nil {
		return err
	}
	for _, id := range failed {
		// A failed send fails the batch: its redelivery finds the merged
		// items unchanged and sends the failed ones again.
		if err := e.items.Send(ctx, Message{Entity: m.Entity, ID: id, Resent: true}); err != nil {
			return fmt.Errorf("send %s %d on alone: %w", m.Entity, id, err)
		}
	}
	if len(failed) > 0 {
		e.o.Logger.Info("batch items sent on alone after a failed attempt", "entity", m.Entity, "items", len(failed), "err", errors.Join(errs...))
	}
	return nil
}

// distinct returns ids without repeats, in their first order.
func distinct(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	return slices.DeleteFunc(slices.Clone(ids), func(id int64) bool {
		dup := seen[id]
		seen[id] = true
		return dup
	})
}

// ItemPoisoned records an item whose message exhausted its retries as
// failed, with the last attempt's error, so that its run still completes.
// A user whose email stayed taken by another user on the other side is
// recorded as a conflict instead, with both rows in the detail, and its
// outbox entries are acknowledged: the clash needs a person, and must not
// hold failback forever (the two databases keep their own rows until then).
func (e *Engine) ItemPoisoned(ctx context.Context, m Message) error {
	if err := validMessage(m); err != nil {
		e.o.Logger.Warn("dropping invalid poison message", "err", err)
		return nil
	}
	if len(m.IDs) > 0 {
		// A batch fails as a whole only while its items cannot be merged
		// at all (an outage). Each item gets retries of its own now; none
		// is recorded failed for a fault it may never meet again.
		for _, id := range m.IDs {
			if err := e.items.Send(ctx, Message{Entity: m.Entity, ID: id}); err != nil {
				return fmt.Errorf("send %s %d on alone: %w", m.Entity, id, err)
			}
		}
		e.o.Logger.Warn("a real-time batch spent its retries; its items were sent on alone", "entity", m.Entity, "items", len(m.IDs))
		return nil
	}
	reason := "gave up after the queue's retries"
	var last string
	n, hist, err := e.rec.Attempts(ctx, e.partition(m), m.Entity, m.ID)
	if err == nil && n > 0 {
		last = hist[len(hist)-1].Reason
		reason = giveUpReason(n, last, m.Retry, hist)
	}
	if m.Entity == domain.EntityUser && strings.HasPrefix(last, domain.KindConflict.String()+":") {
		r, agreed, err := e.emailClash(ctx, m.ID)
		if err != nil {
			return err // transient: the poison message is retried
		}
		// The clash's vector orders it among the item's real-time
		// outcomes: without it any recorded outcome would supersede it.
		r.Reason, r.Ver = reason, agreed
		e.o.Logger.Warn("user email clash recorded as a conflict", "id", m.ID, "run", m.Run, "reason", reason)
		// Record before acknowledging: an empty outbox must mean the
		// outcome can be read. A failure in between retries the poison
		// message, which records the same outcome again.
		if err := e.record(ctx, m, r); err != nil {
			return err
		}
		return ack(ctx, e.primary, e.fallback, domain.EntityUser, m.ID, agreed)
	}
	if m.Run != "" {
		// An earlier attempt that merged a conflict and then failed (its
		// acknowledgement, a database gone): the conflict is the outcome.
		in, ok, err := e.rec.Intent(ctx, e.partition(m), m.Entity, m.ID)
		if err != nil {
			return err // transient: the poison message is retried
		}
		if ok && in.Status == StatusConflict {
			written, err := e.holdsDescendants(ctx, m.Entity, m.ID, in.Ver)
			if err != nil {
				return err
			}
			if written {
				in.Reason += "; the attempts that followed failed: " + reason
				return e.record(ctx, m, in)
			}
		}
	}
	// Only an outage heals by itself: a value a database refuses needs a
	// person now, even though the relay keeps sending it.
	if m.Run == "" && strings.HasPrefix(last, domain.KindUnavailable.String()+":") {
		return e.realtimePoisoned(ctx, m, reason, attemptsOf(n, m.Retry, hist))
	}
	event.Log(ctx, e.o.Logger, slog.LevelError, event.ItemFailed, "sync item failed for good",
		"entity", m.Entity, "id", m.ID, "runId", m.Run, "reason", reason)
	return e.record(ctx, m, table.Result{Status: StatusFailed, Reason: reason, Attempts: attemptsOf(n, m.Retry, hist)})
}

// holdsDescendants reports whether both databases hold the item at v or a
// descendant of it: a merge announced at v was written.
func (e *Engine) holdsDescendants(ctx context.Context, ent domain.Entity, id int64, v domain.Vector) (bool, error) {
	for _, db := range []store.DB{e.primary, e.fallback} {
		var (
			ver domain.Vector
			ok  bool
			err error
		)
		if ent == domain.EntityUser {
			var u domain.User
			u, ok, err = db.LoadUser(ctx, id)
			ver = u.Ver
		} else {
			var p domain.Product
			p, ok, err = db.LoadProduct(ctx, id)
			ver = p.Ver
		}
		if err != nil {
			return false, err
		}
		if !ok || !ver.Dominates(v) {
			return false, nil
		}
	}
	return true, nil
}

// waitDetail is the detail of a real-time item waiting for the relay.
type waitDetail struct {
	WaitingSince string `json:"waitingSince"`
	NextTryBy    string `json:"nextTryBy"`
	FailsAfter   string `json:"failsAfter"` // when the wait ends as failed if no try succeeds
}

// realtimePoisoned records a real-time item whose message spent the
// queue's retries on an unavailable database. Its change still waits in an outbox (a real-time message
// is only ever sent for outbox entries, and only a successful sync
// acknowledges them), so the relay sends it again within ResendAfter: a
// short outage heals by itself. It is recorded "waiting" (no alert, not
// counted failed) until it has waited OutboxStaleAfter, the age at which
// outbox_stale calls a person anyway; only then is it failed, logged
// item_failed once. Either record is replaced by the next success.
func (e *Engine) realtimePoisoned(ctx context.Context, m Message, reason string, attempts int) error {
	now := e.now()
	since := now
	prev, ok, err := e.rec.Item(ctx, e.partition(m), m.Entity, m.ID)
	if err != nil {
		return err // transient: the poison message is retried
	}
	var wd waitDetail
	if ok && prev.Status == StatusWaiting && json.Unmarshal([]byte(prev.Detail), &wd) == nil {
		if t, err := time.Parse(time.RFC3339Nano, wd.WaitingSince); err == nil && t.Before(now) {
			since = t
		}
	}
	failed := ok && prev.Status == StatusFailed // alerted already: stays failed until a success
	args := []any{"entity", m.Entity, "id", m.ID, "runId", m.Run, "attempts", attempts}
	if !failed && now.Sub(since) < e.o.OutboxStaleAfter {
		next := now.Add(e.o.ResendAfter)
		b, err := json.Marshal(waitDetail{WaitingSince: domain.FormatTime(since), NextTryBy: domain.FormatTime(next),
			FailsAfter: domain.FormatTime(since.Add(e.o.OutboxStaleAfter))})
		if err != nil {
			return err
		}
		reason = "waiting for the relay (next try by " + domain.FormatTime(next) + "): " + reason
		e.o.Logger.Warn("sync item waiting for the outbox relay",
			append(args, "waitingSince", domain.FormatTime(since), "nextTryBy", domain.FormatTime(next), "reason", reason)...)
		return e.record(ctx, m, table.Result{Status: StatusWaiting, Reason: reason, Detail: string(b), Attempts: attempts})
	}
	if failed {
		// Alerted already: the relay keeps trying; each try says so once,
		// without a second alert.
		reason = "still failing, the relay keeps trying: " + reason
		e.o.Logger.Warn("sync item still failing", append(args, "reason", reason)...)
	} else {
		reason = fmt.Sprintf("still failing after the relay tried for %s: %s", now.Sub(since).Round(time.Second), reason)
		event.Log(ctx, e.o.Logger, slog.LevelError, event.ItemFailed, "sync item failed for good", append(args, "reason", reason)...)
	}
	return e.record(ctx, m, table.Result{Status: StatusFailed, Reason: reason, Attempts: attempts})
}

// emailClash reads both rows of a user whose email clashes and describes
// the clash; agreed is the vector up to which its outbox entries are to be
// acknowledged on both sides once the outcome is recorded.
func (e *Engine) emailClash(ctx context.Context, id int64) (r table.Result, agreed domain.Vector, err error) {
	p, pok, err := e.primary.LoadUser(ctx, id)
	if err != nil {
		return table.Result{}, agreed, err
	}
	f, fok, err := e.fallback.LoadUser(ctx, id)
	if err != nil {
		return table.Result{}, agreed, err
	}
	var pd, fd any
	if pok {
		pd = userDetail(p)
	}
	if fok {
		fd = userDetail(f)
	}
	// The other users holding this user's email, on the side each was to
	// be copied to.
	holders := map[string]any{}
	for _, c := range []struct {
		ok     bool
		u      domain.User
		target store.DB
	}{{pok, p, e.fallback}, {fok, f, e.primary}} {
		if !c.ok || c.u.Deleted() {
			continue
		}
		h, ok, err := c.target.UserByEmail(ctx, c.u.Email)
		if err != nil {
			return table.Result{}, agreed, err
		}
		if ok && h.ID != id {
			holders[string(c.target.Role())] = userDetail(h)
		}
	}
	b, err := json.Marshal(map[string]any{"primary": pd, "fallback": fd, "emailHeldBy": holders})
	if err != nil {
		return table.Result{}, agreed, err
	}
	return table.Result{Status: StatusConflict, Detail: string(b), Version: maxTime(p.UpdatedAt, f.UpdatedAt)}, p.Ver.Max(f.Ver), nil
}

func (e *Engine) record(ctx context.Context, m Message, r table.Result) error {
	r.Entity, r.ID = m.Entity, m.ID
	if m.Run == "" {
		return e.recordRealtime(ctx, m, []table.Result{r})
	}
	r.At = e.now()
	if m.Retry > 0 {
		// A retried item's outcome replaces its failed one, once per round.
		r.Retry = m.Retry
		replaced, err := e.rec.ReplaceFailed(ctx, m.Run, r)
		if err == nil && replaced {
			e.logConflict(ctx, m, r)
		}
		return err
	}
	// Only the first outcome of an item counts in its run: a redelivered
	// message finds its result recorded and changes nothing (and logs
	// nothing again).
	recorded, err := e.rec.RecordRunResult(ctx, m.Run, r)
	if err == nil && recorded {
		e.logConflict(ctx, m, r)
	}
	return err
}

// recordRealtime records real-time outcomes, all in one call. An unchanged
// item is not recorded: the real-time partition keeps one outcome per item
// and day, and a duplicate message finding nothing to do must not overwrite
// what the item's previous message did (e.g. a conflict).
func (e *Engine) recordRealtime(ctx context.Context, m Message, rs []table.Result) error {
	keep := rs[:0:0]
	for _, r := range rs {
		if r.Status == StatusUnchanged {
			continue
		}
		r.At = e.now()
		keep = append(keep, r)
	}
	if len(keep) == 0 {
		return nil
	}
	if err := e.rec.RecordRealtime(ctx, keep...); err != nil {
		return err
	}
	for _, r := range keep {
		e.logConflict(ctx, m, r)
	}
	return nil
}

// logConflict logs a recorded conflict once (event conflict_recorded). The
// rows themselves (names, emails) stay in the recorded outcome, which the
// results endpoint and the dashboard show: telemetry gets the keys only.
func (e *Engine) logConflict(ctx context.Context, m Message, r table.Result) {
	if r.Status == StatusConflict {
		event.Log(ctx, e.o.Logger, slog.LevelWarn, event.ConflictRecorded, "sync conflict",
			"entity", r.Entity, "id", r.ID, "runId", m.Run, "reason", r.Reason)
	}
}

// reasonOf is the client-safe message of err: its kind and the message of
// its first domain error. Driver details are logged, never recorded.
func reasonOf(err error) string {
	var de *domain.Error
	if errors.As(err, &de) && de.Message != "" {
		return de.Kind.String() + ": " + de.Message
	}
	return domain.ErrorKind(err).String()
}
